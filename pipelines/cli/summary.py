"""One line per project from the reports its stages wrote: what `make run` prints at the end.

    python -m pipelines summary
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core.io import read_json_if_present
from pipelines.core.paths import ProjectPaths

NEXT = ("Next: `make ui` (MLflow runs and registry), `make demo` (try every model in a web page), "
        "`dvc plots show` (curves, confusion matrices, metric against latency; opens offline).")


def figure(value: float) -> str:
    """A score as the summary prints it: four decimals for a share (0.8408), four digits otherwise (49.46)."""
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}"


def project_line(project: str, root: Path | None = None, champion_now: int | None = None) -> str:
    """``project``: its test metric, the int8 and best compressed variant (metric and batch-1
    speed-up), the registered version and what champion did; or the stage to run first."""
    paths = ProjectPaths.of(project, root)
    variants = read_json_if_present(paths.report("variants"))
    if variants is None:
        return f"{project}: not evaluated yet (dvc repro evaluate@{project})"
    metric, table = variants["primary_metric"], variants["variants"]
    sign = 1 if variants.get("greater_is_better", True) else -1  # scores compared in the metric's direction
    full = table["full"][metric]
    ci = table["full"].get(f"{metric}_ci95")
    examples = variants.get("examples")
    sure = f" (95 % CI {figure(ci[0])}–{figure(ci[1])}, {examples} examples)" if ci else ""
    parts = [f"{project}: test {metric} {figure(full)}{sure}"]

    def variant(name: str) -> str:
        row = table[name]
        speed = f" at {row['speedup_batch1']:.1f}x speed" if row.get("speedup_batch1") else ""
        if row.get("speedup_measurable") is False:  # the interval of the speed-up holds 1x
            speed = " at no measurable change of speed"
        noise = " (no significant change)" if row.get("metric_change_verdict") == "no significant difference" else ""
        return f"{name} {figure(row[metric])}{noise}{speed}"

    if "int8" in table:
        parts.append(variant("int8"))
    compressed = {n: r for n, r in table.items() if n not in ("full", "int8")}
    if compressed:
        # The fastest variant that keeps within a point of the full model, else the best scoring one.
        close = {n: r for n, r in compressed.items() if sign * (r[metric] - full) >= -0.01 * max(abs(full), 1.0)}
        pool = close or compressed
        def measured_speedup(n: str) -> float:  # a speed-up within noise counts as none
            return 1.0 if pool[n].get("speedup_measurable") is False else pool[n].get("speedup_batch1") or 0.0

        best = max(pool, key=measured_speedup if close else
                   (lambda n: sign * pool[n][metric]))
        parts.append(f"best compressed: {variant(best)}")
    export = read_json_if_present(paths.report("export"))
    if export is None:
        parts.append(f"not exported (dvc repro export@{project})")
    elif not export.get("registered"):
        parts.append(f"exported {export.get('variant')}, not registered")
    else:
        champion = export.get("champion_version")
        moved = "champion moved to it" if export.get("champion_moved") else \
            f"champion stays v{champion}" if champion is not None else "no champion yet"
        baseline = (read_json_if_present(paths.report("evaluate")) or {}).get("baseline")
        if export.get("baseline_gate") and baseline:  # said in words: the model does not beat doing nothing
            versus = baseline["comparisons"][export["variant"]]
            moved += (f": not significantly better than the trivial baseline, {baseline['name']} "
                      f"({metric} {figure(versus['b'])}, p = {versus['p_value']:.2g})")
        parts.append(f"registered v{export.get('version')} ({export.get('variant')}), {moved}")
        held = export.get("version") if export.get("champion_moved") else champion
        if champion_now is not None and champion_now != held:  # moved since, by hand or by a later export
            parts.append(f"the registry's champion is now v{champion_now}")
    return "; ".join(parts)


def champions(params, root: Path | None = None) -> dict[str, int | None]:
    """Each registered project's champion version as the registry holds it now (None where no version
    holds it or the registry cannot be read): the one truth the summary's lines are checked against."""
    found: dict[str, int | None] = {}
    if not params.tracking.register_model:
        return found
    try:
        from pipelines.tracking import registry, runs as tracking

        for project in params.projects:
            if (read_json_if_present(ProjectPaths.of(project, root).report("export")) or {}).get("registered"):
                info = registry.version_info(tracking.registered_name(params, project), registry.CHAMPION)
                found[project] = info["version"] if info else None
    except Exception:  # a registry that cannot be reached: the lines say what the exports recorded
        return {}
    return found


def length_warnings(project: str, root: Path | None = None) -> list[str]:
    """What the project's sequence lengths cut (reports/<project>/tokenize.json), beyond a small share."""
    from pipelines.data import lengths

    record = (read_json_if_present(ProjectPaths.of(project, root).report("tokenize")) or {}).get("lengths")
    return [f"  {project}: {problem}" for problem in lengths.warnings(record or {}, project)]


def summary(params, root: Path | None = None) -> str:
    now = champions(params, root)
    lines = [project_line(project, root, now.get(project)) for project in params.projects]
    # One line per project first; what the sequence lengths cut follows, indented under them.
    lines += [warning for project in params.projects for warning in length_warnings(project, root)]
    return "\n".join(lines + ["", NEXT])
