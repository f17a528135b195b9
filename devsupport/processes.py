"""Servers for a test or a benchmark: a free port, waiting until one answers, stopping it with
everything it started, and the demo page of a copy made by `workspace.make_repo_copy`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .workspace import pipeline_env


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, timeout: float, log=lambda: "") -> None:
    """Poll ``url`` until it answers 200; fail with the server's own log if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up (exit code {proc.poll()}):\n{log()[-3000:]}")
        time.sleep(0.5)


def stop_group(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM to the process group ``proc`` leads (started with start_new_session), SIGKILL if it
    is still there after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=10)


@contextlib.contextmanager
def demo_server(root: Path, timeout: float = 300):
    """`python -m pipelines demo` of the copy ``root`` on a free port of 127.0.0.1; yields its URL."""
    port, log = free_port(), root / "demo.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "pipelines", "demo", "--port", str(port)], cwd=root,
                                env=pipeline_env(root), stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url, proc, timeout, log=log.read_text)
        yield url
    finally:
        stop_group(proc)
