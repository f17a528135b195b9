"""The summary of a flow run, from the reports its stages wrote (test metrics, MLflow run, registry
version, champion, data change), and the same as the markdown of the run's Prefect artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.dvc_runner import RAN, StageOutcome
from pipelines.core.io import read_json_if_present
from pipelines.core.paths import ProjectPaths


def read_report(root: Path, project: str, stage: str) -> dict | None:
    """``reports/<project>/<stage>.json`` of the checkout, or None when the stage has not written it."""
    return read_json_if_present(ProjectPaths.of(project, root).report(stage))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


def run_summary(root: Path, project: str, outcomes: list[StageOutcome], pushed: str | None = None,
                flow_run_id: str | None = None) -> dict:
    """What a run produced, from the reports its stages wrote: test metrics, MLflow run, registry."""
    evaluation = read_report(root, project, "evaluate") or {}
    export = read_report(root, project, "export") or {}
    finetune = read_report(root, project, "finetune") or {}
    exported = any(o.target == f"export@{project}" and o.status == RAN for o in outcomes)
    primary = evaluation.get("primary_metric")
    # evaluate.json holds one block of metrics per model variant (full, int8, ...) besides scalars
    variants = {name: {k: v for k, v in block.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                for name, block in evaluation.items() if isinstance(block, dict) and (primary is None or primary in block)}
    variants = dict(sorted(variants.items(), key=lambda kv: kv[0] != "full"))
    return {
        "project": project,
        "flow_run_id": flow_run_id,
        "stages": {o.target.split("@")[0]: o.status for o in outcomes},
        "stage_seconds": {o.target.split("@")[0]: round(o.seconds, 2) for o in outcomes},
        "test_examples": evaluation.get("examples"),
        "test_metrics": variants,
        "primary_metric": primary,
        "exported_variant": export.get("variant", "full" if export else None),
        "mlflow_run_id": finetune.get("mlflow_run_id"),
        "new_version": bool(exported and export.get("registered", False)),
        "registered_model": export.get("registered_model"),
        "version": export.get("version"),
        "champion_moved": bool(exported and export.get("champion_moved")),
        "champion_version": export.get("champion_version"),
        "champion_reason": export.get("reason") or export.get("registry_error"),
        "champion_scored": export.get("champion_scored"),
        "previous_champion": export.get("previous_champion"),
        "previous_champion_score": export.get("previous_champion_score"),
        "data_change": (read_report(root, project, "data_change") or None) if exported else None,
        "dvc_push": pushed,
    }


def summary_markdown(summary: dict) -> str:
    """The run's summary as the markdown of a Prefect artifact."""
    project = summary["project"]
    lines = [f"# {project}: pipeline run", "", "| stage | result | seconds |", "| --- | --- | --- |"]
    for stage, status in summary["stages"].items():
        lines.append(f"| {stage} | {status} | {summary['stage_seconds'][stage]:.1f} |")
    metrics = summary["test_metrics"]
    lines += ["", f"## Test metrics (`reports/{project}/evaluate.json`, {summary['test_examples']} examples)", ""]
    if metrics:
        variants = list(metrics)
        keys = list(dict.fromkeys(k for v in variants for k in metrics[v]))
        primary = summary.get("primary_metric")
        exported = summary.get("exported_variant")
        lines += ["| metric | " + " | ".join(f"{v} (exported)" if v == exported else v for v in variants) + " |",
                  "| --- |" + " --- |" * len(variants)]
        for key in keys:
            name = f"**{key}**" if key == primary else key
            lines.append(f"| {name} | " + " | ".join(_fmt(metrics[v].get(key)) for v in variants) + " |")
    else:
        lines.append("No test metrics: the evaluate stage has not written them.")
    if summary["new_version"]:
        registry = (f"version **{summary['version']}** of `{summary['registered_model']}` registered (alias "
                    f"`candidate`), variant `{summary['exported_variant']}`")
        champion = (f"moved to version {summary['champion_version']}" if summary["champion_moved"]
                    else f"stayed at version {summary['champion_version']}" if summary["champion_version"] is not None
                    else "was not given to this version, and no version holds it")
        champion += f" ({summary['champion_reason']})" if summary["champion_reason"] else ""
    elif summary["version"] is not None:
        registry = (f"no new version: export was up to date (latest export: version {summary['version']} of "
                    f"`{summary['registered_model']}`)")
        champion = f"did not move (version {summary['champion_version']})"
    else:
        registry = "no version registered (`tracking.register_model` is false, or export did not run)"
        champion = "did not move"
    lines += ["", "## Registry", "", "| | |", "| --- | --- |",
              f"| MLflow run | `{summary['mlflow_run_id']}` |", f"| registry | {registry} |",
              f"| `champion` | {champion} |"]
    if summary.get("dvc_push"):
        lines.append(f"| DVC | {summary['dvc_push']} |")
    if summary.get("champion_scored") == "rescored":
        lines += ["", f"The champion (version {summary['previous_champion']}) was scored on other test data; on this "
                      f"run's test split it scores {_fmt(summary['previous_champion_score'])}."]
    lines += data_change_markdown(summary.get("data_change"))
    return "\n".join(lines) + "\n"


def data_change_markdown(change: dict | None) -> list[str]:
    """The data-change report of export (reports/<project>/data_change.json) as markdown lines."""
    if not change:
        return []
    lines = ["", "## What changed in the data since the champion", ""]
    if "rows" not in change:
        return lines + [change.get("note", "not compared")]
    rows = change["rows"]
    lines += [f"Against champion version {change['champion_version']}: {rows['added']} rows added, "
              f"{rows['removed']} removed ({rows['champion']} -> {rows['now']} rows, "
              f"{rows['changed_share']:.0%} changed).", "", "| what | champion | now | shift |", "| --- | --- | --- | --- |"]
    if "labels" in change:
        labels = change["labels"]
        lines.append(f"| labels | {_counts(labels['champion'])} | {_counts(labels['now'])} | {labels['shift']:.3f} |")
    for name, stats in change.get("lengths", {}).items():
        lines.append(f"| median length of {name} | {_fmt(stats['champion_median'])} | {_fmt(stats['now_median'])} | "
                     f"{stats['shift']:.3f} |")
    tok = change.get("tokenizer", {})
    lines += ["", (f"The champion's tokenizer splits {tok['share']:.2%} of the new text's {tok['pieces']} pieces into "
                   "unknown or byte pieces." if "share" in tok else f"Tokenizer check skipped: {tok.get('skipped')}.")]
    flags = change.get("flags") or []
    lines += ["", "**Flagged:**" if flags else "Nothing above the thresholds of `export.data_change`."]
    lines += [f"- {flag}" for flag in flags]
    return lines


def _counts(counts: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())
