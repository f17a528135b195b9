"""The module of the flows that talks to DVC: bring one stage of a project up to date, and push the
project's outputs to the DVC remote.

Whether a stage is out of date, and why, comes from ``dvc status --json <stage>@<project>``; only a
stage it lists is handed to ``dvc repro --single-item``, which runs the stage's command (``python -m
pipelines <stage> <project>``) or restores its outputs from DVC's run cache. Everything goes through
DVC's command line, so a flow run leaves the checkout exactly as a user's ``dvc repro`` would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from flows.commands import run_logged, stage_env
from flows.errors import FlowError, StageFailed
from pipelines.stages import STAGES

# What became of a stage in a flow run, as the run's summary and the stage task's state show it.
RAN = "ran"  # DVC ran the stage's command
SKIPPED = "skipped"  # `dvc status` found the stage up to date; nothing ran
CACHED = "cached"  # out of date, and DVC restored its outputs from the run cache instead of running it


@dataclass
class StageOutcome:
    """One stage of a flow run: ``<stage>@<project>``, ``ran`` | ``skipped`` | ``cached``, the
    seconds it took, and the last lines DVC printed for it (none when it was skipped)."""

    target: str
    status: str
    seconds: float
    stdout_tail: list[str] = field(default_factory=list)


def stage_changes(root: Path, target: str, env: dict[str, str] | None = None) -> list:
    """DVC's reasons why ``target`` is out of date (``dvc status --json``): empty when it is up to
    date; else entries such as ``"always changed"``, ``"changed command"``, ``{"changed deps":
    {path: "modified", "params.yaml": {key: "modified"}}}`` or ``{"changed outs": {path: "deleted"}}``."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json", target], cwd=root,
                          env=env or stage_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise StageFailed(target, proc.returncode, proc.stderr.strip() or proc.stdout.strip())
    try:
        status = json.loads(proc.stdout)
    except ValueError:
        raise FlowError(f"`dvc status --json {target}` printed no JSON:\n{proc.stdout.strip()[-2000:]}") from None
    return status.get(target, [])


def describe_changes(changes: list) -> str:
    """``stage_changes`` in one line of words for the flow's log."""
    parts = []
    for entry in changes:
        if isinstance(entry, dict):
            for kind, paths in entry.items():
                items = [f"{path} ({', '.join(f'{k} {v}' for k, v in state.items())})" if isinstance(state, dict)
                         else f"{path} ({state})" for path, state in (paths or {}).items()]
                parts.append(f"{kind}: {', '.join(items)}" if items else kind)
        else:
            parts.append(str(entry))
    return "; ".join(parts)


def _restored_from_run_cache(target: str, stdout: list[str]) -> bool:
    # DVC has no machine-readable answer to "did the stage's command run?": Repo.reproduce returns the
    # stage whether it ran or its outputs came from the run cache, and `dvc status` is clean after
    # both. Only the line StageCache.restore logs (dvc/stage/cache.py) tells them apart.
    return any(line.startswith(f"Stage '{target}' is cached - skipping run") for line in stdout)


def _command_exit_code(stderr: list[str], dvc_exit_code: int) -> int:
    # `dvc repro` exits 255 for any failure; the exit code of the stage's command, which says whether
    # a retry may help, reaches the caller only in the text of DVC's StageCmdFailedError ("failed to
    # run: <cmd>, exited with N"; dvc/stage/exceptions.py keeps no attribute for it).
    found = re.findall(r"exited with (-?\d+)", "\n".join(stderr))
    return int(found[-1]) if found else dvc_exit_code


def repro_stage(root: Path, stage: str, project: str, log: Callable[[str], None],
                env: dict[str, str] | None = None, pull: bool = False) -> StageOutcome:
    """Bring ``<stage>@<project>`` up to date: nothing when ``dvc status`` finds it up to date, else
    ``dvc repro --single-item`` with every output line sent to ``log``. With ``pull``, DVC first
    fetches the remote's run cache and restores outputs another checkout made from the same inputs
    (``dvc repro --pull``) instead of running the stage again."""
    if stage not in STAGES:
        raise FlowError(f"unknown stage {stage!r}; stages are: {', '.join(STAGES)}")
    target = f"{stage}@{project}"
    t0 = time.perf_counter()
    changes = stage_changes(root, target, env)
    if not changes:
        log(f"{target} is up to date (dvc status): nothing to run")
        return StageOutcome(target, SKIPPED, time.perf_counter() - t0)
    log(f"{target} is out of date: {describe_changes(changes)}")
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", target] + (["--pull"] if pull else [])
    rc, out, err = run_logged(cmd, root, log, env)
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise StageFailed(target, _command_exit_code(err, rc), "\n".join(line for line in err if line.strip()))
    return StageOutcome(target, CACHED if _restored_from_run_cache(target, out) else RAN, seconds, out)


def dvc_remote(root: Path) -> str | None:
    """The default DVC remote of the checkout, or None when none is configured."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "remote", "default"], cwd=root, env=stage_env(),
                          capture_output=True, text=True)
    name = proc.stdout.strip()
    return name if proc.returncode == 0 and name else None


def push(root: Path, project: str, log: Callable[[str], None]) -> str:
    """``dvc push`` of the project's outputs and of the run cache to the default remote, so other
    workers and users can ``dvc pull`` what this run made, and a stage another checkout runs with the
    same inputs is restored (``dvc repro --pull``) instead of trained again; returns what happened,
    in words."""
    remote = dvc_remote(root)
    if remote is None:
        return "no DVC remote configured; nothing pushed"
    rc, out, err = run_logged([sys.executable, "-m", "dvc", "push", "--run-cache", "--with-deps",
                               f"export@{project}"], root, log)
    if rc != 0:
        raise FlowError(f"dvc push to remote {remote!r} failed (exit code {rc}):\n" + "\n".join(err))
    return f"pushed to DVC remote {remote!r}: " + (next((line for line in reversed(out) if line.strip()), "done"))
