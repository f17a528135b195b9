"""Running a command in the worker's checkout: the environment stages get, and every output line
sent to the flow's log as it comes."""

from __future__ import annotations

import os
import subprocess
import threading
from collections import deque
from pathlib import Path
from typing import Callable

# How many of the last lines of a command's stdout and stderr a failure message or a result keeps.
TAIL_LINES = 30


def stage_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment stages run in: the worker's own (MLFLOW_TRACKING_URI, PIPELINES_DEVICE, CUDA
    variables pass through untouched), quiet and without progress bars, which a log view cannot redraw."""
    from pipelines.core import settings

    env = settings.apply_environment_defaults(dict(os.environ), PIPELINES_PROGRESS="0")
    env.update(extra or {})
    return env


def _pump(stream, sink: Callable[[str], None], keep: deque) -> None:
    for line in iter(stream.readline, ""):
        line = line.rstrip("\n")
        keep.append(line)
        if line.strip():
            sink(line)
    stream.close()


def run_logged(cmd: list[str], root: Path, log: Callable[[str], None], env: dict[str, str] | None = None,
               keep: int = TAIL_LINES) -> tuple[int, list[str], list[str]]:
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
