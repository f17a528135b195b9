"""What a flow does in the worker's checkout of the repository, without Prefect: apply and validate
params overrides, run one DVC stage, hold the checkout lock, read the reports the stages wrote.

Everything goes through DVC's and the pipeline's own command lines (``dvc repro``, ``python -m
pipelines check``), so a flow run leaves the checkout exactly as a user's ``dvc repro`` would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from pipelines.__main__ import STAGES

logger = logging.getLogger(__name__)

# Blocks an override may touch besides the project's own: the shared ones every project reads.
SHARED_BLOCKS = ("common", "runtime", "tracking")
# Exit codes of `python -m pipelines` that a retry cannot fix (pipelines/errors.py): a bad
# params.yaml (2), bad input data (3), or a trained model that fails a check params ask for (5: the
# retry resumes from the same checkpoints and fails the same check). Anything else (a lost tracking
# server, a killed process, CUDA out of memory on a shared GPU) may pass on a second try.
PERMANENT_EXIT_CODES = (2, 3, 5)
LOCK_FILE = Path(".dvc") / "tmp" / "flow.lock"
STDERR_TAIL_LINES = 30


class FlowError(Exception):
    """A problem the flow reports as its failure message (no traceback needed to act on it)."""


class OverrideError(FlowError):
    """An override is malformed, or params.yaml with it applied does not validate."""


class StageFailed(FlowError):
    """A DVC stage exited non-zero; the message carries the tail of its stderr."""

    def __init__(self, target: str, exit_code: int, tail: str):
        self.target, self.exit_code, self.tail = target, exit_code, tail
        super().__init__(f"{target} failed (exit code {exit_code}):\n{tail}")

    @property
    def transient(self) -> bool:
        return self.exit_code not in PERMANENT_EXIT_CODES


@dataclass
class StageOutcome:
    target: str
    status: str  # ran | skipped (DVC found it up to date) | cached (restored from DVC's run cache)
    seconds: float
    stdout_tail: list[str] = field(default_factory=list)


def stage_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment stages run in: the worker's own (MLFLOW_TRACKING_URI, PIPELINES_DEVICE, CUDA
    variables pass through untouched), quiet and without progress bars, which a log view cannot redraw."""
    from pipelines import settings

    env = settings.apply_environment_defaults(dict(os.environ), PIPELINES_PROGRESS="0")
    env.update(extra or {})
    return env


def project_names(root: Path) -> list[str]:
    """The projects the checkout's params.yaml declares (under ``projects:``)."""
    try:
        raw = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []  # `check` names what is wrong with the file
    projects = raw.get("projects") if isinstance(raw, dict) else None
    return [str(name) for name in projects] if isinstance(projects, dict) else []


def check_project(root: Path, project: str) -> None:
    missing = [name for name in ("dvc.yaml", "params.yaml", ".dvc") if not (root / name).exists()]
    if missing:
        raise FlowError(f"{root} is not a checkout of this repository (missing {', '.join(missing)}); "
                        "give the folder that holds dvc.yaml and params.yaml")
    names = project_names(root)
    if names and project not in names:
        raise FlowError(f"unknown project {project!r}; {root / 'params.yaml'} declares: {', '.join(names)}")


# --------------------------------------------------------------------------- params overrides
def parse_overrides(items: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """``["projects.classification.finetune.epochs=2", ...]`` (as ``dvc exp run -S`` takes them) to a dict;
    values are read as YAML scalars, so ``2`` is an int and ``true`` a bool."""
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    bad = [item for item in items if "=" not in item or not item.split("=", 1)[0].strip()]
    if bad:
        raise OverrideError(f"override(s) {bad} are not of the form key=value, e.g. "
                            "projects.classification.finetune.learning_rate=0.001")
    for item in items:
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _set_dotted(doc: Any, key: str, value: Any) -> None:
    node = doc
    *parents, last = key.split(".")
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise OverrideError(f"override {key}: {part!r} holds a value, not a block of keys")
        node = child
    node[last] = value


def apply_overrides(root: Path, project: str, overrides: dict[str, Any]) -> list[str]:
    """Write ``overrides`` into the checkout's params.yaml (comments kept), after checking that the
    result validates with ``python -m pipelines check``; params.yaml is untouched when it does not.

    Like ``dvc exp run -S``, the values stay in params.yaml afterwards, so the checkout always says
    which settings its outputs were made with. Returns the keys that changed value.
    """
    own = f"projects.{project}."
    outside = [k for k in overrides
               if not (k.startswith(own) and len(k) > len(own)) and (k.split(".", 1)[0] not in SHARED_BLOCKS or "." not in k)]
    if outside:
        raise OverrideError(
            f"override key(s) {outside} are outside this run's blocks; give full dotted keys under "
            f"{own} or {', '.join(b + '.' for b in SHARED_BLOCKS)} (e.g. {own}finetune.epochs=2)")
    from ruamel.yaml import YAML  # DVC's own YAML library: a round trip keeps the file's comments

    params_file = root / "params.yaml"
    rt = YAML()
    rt.preserve_quotes = True
    doc = rt.load(params_file.read_text(encoding="utf-8"))
    plain = yaml.safe_load(params_file.read_text(encoding="utf-8")) or {}
    changed = []
    for key, value in overrides.items():
        node: Any = plain
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != value:
            changed.append(key)
        _set_dotted(doc, key, value)
    candidate = root / f".params.flow-{os.getpid()}.yaml"
    try:
        with open(candidate, "w", encoding="utf-8") as fh:
            rt.dump(doc, fh)
        validate_params(root, project, candidate)
        if changed:
            os.replace(candidate, params_file)
    finally:
        candidate.unlink(missing_ok=True)
    return changed


def validate_params(root: Path, project: str, params_file: Path | None = None) -> None:
    """``python -m pipelines check <project>`` in the checkout; every problem in one error."""
    cmd = [sys.executable, "-m", "pipelines", "check", project]
    if params_file is not None:
        cmd += ["--params", str(params_file)]
    proc = subprocess.run(cmd, cwd=root, env=stage_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip()
        # the CLI logs the error and then prints it as "error: ..."; keep the printed copy
        message = message[message.rfind("error: "):].removeprefix("error: ") if "error: " in message else message
        if params_file is not None:
            message = message.replace(str(params_file), "params.yaml with the overrides")
        raise OverrideError(message)


# --------------------------------------------------------------------------- DVC
def _pump(stream, sink: Callable[[str], None], keep: deque) -> None:
    for line in iter(stream.readline, ""):
        line = line.rstrip("\n")
        keep.append(line)
        if line.strip():
            sink(line)
    stream.close()


def run_logged(cmd: list[str], root: Path, log: Callable[[str], None], env: dict[str, str] | None = None,
               keep: int = STDERR_TAIL_LINES) -> tuple[int, list[str], list[str]]:
    """Run ``cmd`` in ``root``, sending every output line to ``log`` as it comes; returns the exit
    code and the last ``keep`` lines of stdout and of stderr."""
    proc = subprocess.Popen(cmd, cwd=root, env=env or stage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, bufsize=1, errors="replace")
    out: deque = deque(maxlen=keep)
    err: deque = deque(maxlen=keep)
    threads = [threading.Thread(target=_pump, args=(proc.stdout, log, out), daemon=True),
               threading.Thread(target=_pump, args=(proc.stderr, log, err), daemon=True)]
    for t in threads:
        t.start()
    try:
        rc = proc.wait()
    except BaseException:  # cancelled or interrupted: do not leave DVC running in the checkout
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    for t in threads:
        t.join()
    return rc, list(out), list(err)


def repro_stage(root: Path, stage: str, project: str, log: Callable[[str], None],
                env: dict[str, str] | None = None) -> StageOutcome:
    """``dvc repro --single-item <stage>@<project>``: runs the stage if DVC finds it out of date."""
    if stage not in STAGES:
        raise FlowError(f"unknown stage {stage!r}; stages are: {', '.join(STAGES)}")
    target = f"{stage}@{project}"
    t0 = time.perf_counter()
    rc, out, err = run_logged([sys.executable, "-m", "dvc", "repro", "--single-item", target], root, log, env)
    seconds = time.perf_counter() - t0
    if rc != 0:
        # DVC ends with "ERROR: failed to reproduce '...': failed to run: ..., exited with N"
        found = re.findall(r"exited with (-?\d+)", "\n".join(err))
        raise StageFailed(target, int(found[-1]) if found else rc, "\n".join(line for line in err if line.strip()))
    text = "\n".join(out)
    if f"Stage '{target}' didn't change, skipping" in text:
        status = "skipped"
    elif f"Stage '{target}' is cached - skipping run" in text:
        status = "cached"
    else:
        status = "ran"
    return StageOutcome(target, status, seconds, out)


def dvc_remote(root: Path) -> str | None:
    """The default DVC remote of the checkout, or None when none is configured."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "remote", "default"], cwd=root, env=stage_env(),
                          capture_output=True, text=True)
    name = proc.stdout.strip()
    return name if proc.returncode == 0 and name else None


def push(root: Path, project: str, log: Callable[[str], None]) -> str:
    """``dvc push`` of the project's outputs to the default remote, so other workers and users can
    ``dvc pull`` what this run made; returns what happened, in words."""
    remote = dvc_remote(root)
    if remote is None:
        return "no DVC remote configured; nothing pushed"
    rc, out, err = run_logged([sys.executable, "-m", "dvc", "push", "--with-deps", f"export@{project}"], root, log)
    if rc != 0:
        raise FlowError(f"dvc push to remote {remote!r} failed (exit code {rc}):\n" + "\n".join(err))
    return f"pushed to DVC remote {remote!r}: " + (next((line for line in reversed(out) if line.strip()), "done"))


# --------------------------------------------------------------------------- lock
@contextlib.contextmanager
def checkout_lock(root: Path, timeout: float, owner: str = "",
                  on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``.dvc/tmp/flow.lock`` for a whole flow run: two flow runs never run DVC (or rewrite
    params.yaml) in the same checkout at once. A second run waits up to ``timeout`` seconds; who
    holds the lock is written beside it (``flow.lock.owner``) for the waiting run's messages."""
    from filelock import FileLock, Timeout

    path = root / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    holder_file = path.with_name(path.name + ".owner")
    lock = FileLock(str(path))

    def holder() -> str:
        try:
            return holder_file.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            return "another process"

    deadline = time.monotonic() + timeout
    waited = False
    while True:
        try:
            lock.acquire(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            break
        except Timeout:
            if not waited and on_wait is not None:
                on_wait(holder())
            waited = True
            if time.monotonic() >= deadline:
                raise FlowError(f"{path} is still held by {holder()} after {timeout:.0f} s; another flow run is "
                                "using this checkout") from None
    try:
        holder_file.write_text(f"pid {os.getpid()} on {socket.gethostname()} {owner}".strip() + "\n", encoding="utf-8")
        yield
    finally:
        holder_file.unlink(missing_ok=True)
        lock.release()


# --------------------------------------------------------------------------- reports
def read_report(root: Path, project: str, stage: str) -> dict | None:
    path = root / "reports" / project / f"{stage}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


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
    exported = any(o.target == f"export@{project}" and o.status == "ran" for o in outcomes)
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
                    else f"stayed at version {summary['champion_version']}")
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
