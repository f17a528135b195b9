"""A preloaded interpreter for the test suite's stage processes: torch, transformers and MLflow
imported once, each `python -m pipelines ...` a fork of that process.

Every stage that `dvc repro` runs is a new `python -m pipelines <stage> <project>` that spends about
ten seconds of CPU importing torch, transformers, datasets and MLflow before its own work, which in a
tiny test project takes a few seconds more. The suite starts several hundred of them. Here a server
process imports those libraries once; a `python` first on the PATH of the pipeline's environment
sends each `python -m pipelines ...` to it, and the server forks a child that runs the command with
the caller's arguments, working folder, environment and standard streams, and reports its exit status.

What stays real: DVC starts every stage as a process of its own and reads its exit code; the
project's code is imported fresh in every child (only third-party libraries are preloaded), from the
caller's folder and PYTHONPATH as `python -m` would; a signal sent to the command reaches the child,
and a command killed outright (SIGKILL of its process group) takes its child with it. Anything that
is not `python -m pipelines ...`, or any failure to reach the server, runs the real interpreter.

Tests only: benchmarks time stages as users run them and never use it.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SOCKET_VAR = "DEVSUPPORT_PRELOAD_SOCKET"
BIN_VAR = "DEVSUPPORT_PRELOAD_BIN"

# The third-party modules that the stages import: the expensive part of every stage process.
PRELOAD = ("torch", "transformers", "transformers.modeling_utils", "transformers.trainer",
           "transformers.models.bert.modeling_bert", "transformers.models.bart.modeling_bart",
           "datasets", "evaluate", "sacrebleu", "rouge_score.rouge_scorer", "sklearn.metrics", "pandas",
           "tokenizers", "mlflow", "mlflow.pyfunc", "mlflow.store.tracking.sqlalchemy_store",
           "mlflow.store.model_registry.sqlalchemy_store", "onnxruntime", "onnx", "pydantic", "yaml")

SHIM = """#!{python} -SE
# `python` for the test suite's pipeline processes: `-m pipelines ...` goes to the preloaded server.
import sys
sys.path.insert(0, {devsupport!r})
import preload_client
preload_client.main({python!r}, {socket!r})
"""


class Preloader:
    """The server process and the folder whose `python` talks to it; `env()` gives what a pipeline
    environment needs to use them."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.socket = self.workdir / "preload.sock"
        self.bin = self.workdir / "bin"
        self.proc: subprocess.Popen | None = None

    def start(self, env: dict) -> None:
        """Start the server and return at once: until its socket appears (after its imports), the
        `python` here runs the real interpreter, so nothing waits for it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bin.mkdir(exist_ok=True)
        self.socket.unlink(missing_ok=True)
        shim = self.bin / "python"
        shim.write_text(SHIM.format(python=sys.executable, devsupport=str(Path(__file__).parent / "_preload"),
                                    socket=str(self.socket)))
        shim.chmod(0o755)
        with open(self.workdir / "preload.log", "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "devsupport.preload", str(self.socket)],
                                         env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True, cwd=Path(__file__).resolve().parents[1])

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the preload server did not start; see {self.workdir / 'preload.log'}")
            time.sleep(0.2)

    def env(self) -> dict:
        return {SOCKET_VAR: str(self.socket), BIN_VAR: str(self.bin)}

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.socket.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the server
def serve(path: str) -> None:
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional library: its stage imports it itself
            pass
    # The project's own code is imported by each child from its own checkout, never from here.
    for name in [m for m in sys.modules if m.split(".")[0] in ("pipelines", "flows", "devsupport")]:
        if name != __name__:
            del sys.modules[name]
    # What `python -m` adds for the server's own folder and PYTHONPATH; each child adds its caller's.
    own = {"", os.getcwd(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)}
    base_path = [p for p in sys.path if p not in own]
    # Children are reaped by the kernel: the server only accepts and forks.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.rename(path + ".tmp", path)
    listener.listen(64)
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        conn, _ = listener.accept()
        if os.fork() == 0:
            listener.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                _supervise(conn, base_path)
            finally:
                os._exit(0)
        conn.close()


def _supervise(conn: socket.socket, base_path: list[str]) -> None:
    """Run one command in a child and report how it ended; kill it if the caller goes away."""
    head, fds, _, _ = socket.recv_fds(conn, 8, 3)
    size, body = int.from_bytes(head, "big"), b""
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            return
        body += chunk
    request = json.loads(body.decode())
    child = os.fork()
    if child == 0:
        conn.close()
        _run_command(request, fds, base_path)  # never returns
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": child}).encode() + b"\n")
    pidfd = os.pidfd_open(child)
    while True:
        ready, _, _ = select.select([conn, pidfd], [], [])
        if pidfd in ready:
            _, status = os.waitpid(child, 0)
            code = os.waitstatus_to_exitcode(status)
            conn.sendall(json.dumps({"exit": code}).encode() + b"\n")
            return
        if not conn.recv(1):  # the caller is gone (killed): so is its command
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            return


def _run_command(request: dict, fds: list[int], base_path: list[str]) -> None:
    """In the forked child: become `python <argv>` in the caller's folder and environment."""
    import runpy
    import threading
    import traceback
    import warnings

    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[:] = [request["cwd"], *extra, *base_path]
        # Warnings shown once per place in the server would otherwise be silent in every child.
        for module in list(sys.modules.values()):
            registry = getattr(module, "__warningregistry__", None)
            if isinstance(registry, dict):
                registry.clear()
        warnings.onceregistry.clear()
        argv = request["argv"]  # ["-m", module, *arguments]
        sys.argv = [argv[0], *argv[2:]]
        try:
            runpy._run_module_as_main(argv[1])  # what `python -m module` runs: argv[0] becomes its path
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        threading._shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    serve(sys.argv[1])
