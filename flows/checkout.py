"""The worker's checkout of the repository that a flow runs in: entering it (the deployments' pull
step), bringing it up to date with its origin, is the folder one, which projects its params.yaml
declares, and the lock that keeps two flow runs out of it at the same time."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import yaml

from flows.errors import FlowError

LOCK_FILE = Path(".dvc") / "tmp" / "flow.lock"


def enter_checkout(directory: str) -> dict[str, str]:
    """The deployments' pull step: work in this worker's checkout (``PIPELINES_CHECKOUT``, which
    ``python -m flows worker`` sets), else in ``directory``, the checkout the deployment was created
    from. Each worker of a pool thus runs its flow runs in its own clone, wherever it lies."""
    from pipelines.core import settings

    own = settings.get("PIPELINES_CHECKOUT").strip()
    root = Path(own or directory).expanduser().resolve()
    if not (root / "dvc.yaml").is_file():
        where = "PIPELINES_CHECKOUT" if own else "the deployment"
        raise FlowError(f"{root} (from {where}) is not a checkout of this repository (no dvc.yaml): start the "
                        "worker with `python -m flows worker --checkout DIR` or set PIPELINES_CHECKOUT to its clone")
    os.chdir(root)
    return {"directory": str(root)}


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def pull_from_origin(root: Path) -> str:
    """``git pull --ff-only`` when the checkout's branch tracks a remote branch, so every worker runs
    the code and params.yaml the team pushed; returns what happened, in words. A checkout whose
    changes would be overwritten, or whose branch has diverged, is an error naming the fix."""
    upstream = _git(root, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}")
    if upstream.returncode != 0:
        return "the checkout's branch tracks no remote branch; not pulled"
    before = _git(root, "rev-parse", "HEAD").stdout.strip()
    proc = _git(root, "pull", "--ff-only", "--quiet")
    if proc.returncode != 0:
        raise FlowError(f"git pull --ff-only in {root} failed: {(proc.stderr or proc.stdout).strip()[-1500:]}\n"
                        "A worker's checkout only follows its origin: commit or discard local changes there "
                        "(git status), or run with pull=false to use the checkout as it is")
    after = _git(root, "rev-parse", "HEAD").stdout.strip()
    name = upstream.stdout.strip()
    return f"up to date with {name} at {after[:12]}" if before == after else \
        f"pulled {name}: {before[:12]} -> {after[:12]}"


def project_names(root: Path) -> list[str]:
    """The projects the checkout's params.yaml declares (under ``projects:``)."""
    try:
        raw = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []  # `check` names what is wrong with the file
    projects = raw.get("projects") if isinstance(raw, dict) else None
    return [str(name) for name in projects] if isinstance(projects, dict) else []


def check_project(root: Path, project: str | None = None) -> None:
    """Fail early, naming the fix, when ``root`` is not a checkout or does not declare ``project``
    (None: any checkout will do)."""
    missing = [name for name in ("dvc.yaml", "params.yaml", ".dvc") if not (root / name).exists()]
    if missing:
        raise FlowError(f"{root} is not a checkout of this repository (missing {', '.join(missing)}); "
                        "give the folder that holds dvc.yaml and params.yaml")
    names = project_names(root)
    if project is not None and names and project not in names:
        raise FlowError(f"unknown project {project!r}; {root / 'params.yaml'} declares: {', '.join(names)}")


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
