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

from pipelines.core import settings

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


def start_group(cmd: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    """A long-lived process in its own process group, its output in ``log`` (a Prefect worker
    started otherwise ignores SIGTERM, and `stop_group` stops what it started too)."""
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


@contextlib.contextmanager
def prefect_server(home: Path, timeout: float = 120):
    """`prefect server start` on a free port of 127.0.0.1 with ``home`` as its PREFECT_HOME; yields
    the environment its clients need (PREFECT_API_URL, PREFECT_HOME) and stops it at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    proc = start_group([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                        str(port)], env, home / "server.log", home)
    try:
        wait_for_http(f"{url}/health", proc, timeout, log=lambda: (home / "server.log").read_text())
        yield {"PREFECT_API_URL": url, "PREFECT_HOME": str(home)}
    finally:
        stop_group(proc)


class MlflowServer:
    """`mlflow server` on a fixed port and store, which a test can kill and start again."""

    def __init__(self, store: Path):
        self.store, self.port = store, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = store / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{self.store / 'mlflow.db'}",
               "--default-artifact-root", str(self.store / "artifacts")]
        env = settings.apply_environment_defaults(dict(os.environ))
        env.pop("MLFLOW_TRACKING_URI", None)
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.store, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_for_http(f"{self.url}/health", self.proc, 120, log=self.log.read_text)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, to the server's own process group (its id is the server's pid)."""
        if self.proc is None:
            return
        stop_group(self.proc)
        self.proc = None

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.url)
