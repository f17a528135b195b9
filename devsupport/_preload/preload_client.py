"""The `python` of the test suite's pipeline environment (see devsupport/preload.py): `python -m
pipelines ...` runs in a fork of the preloaded server; anything else, or a server that cannot be
reached, runs the real interpreter. Standard library only: it starts in milliseconds."""

import json
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def main(python: str, path: str) -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["-m", "pipelines"] and os.environ.get("DEVSUPPORT_PRELOAD_SOCKET") == path:
        try:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(path)
            body = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
            socket.send_fds(conn, [len(body).to_bytes(8, "big")], [0, 1, 2])
            conn.sendall(body)
        except OSError:
            conn = None
        if conn is not None:
            _proxy(conn)
    os.execv(python, [python, *argv])


def _proxy(conn: socket.socket) -> None:
    reader = conn.makefile("r")
    started = reader.readline()
    if not started:
        sys.exit("preload: the server closed the connection before starting the command")
    pid = json.loads(started)["pid"]
    for sig in FORWARDED:
        signal.signal(sig, lambda signum, _frame: os.kill(pid, signum))
    line = reader.readline()
    if not line:
        sys.exit("preload: the server closed the connection before the command ended")
    code = json.loads(line)["exit"]
    if code < 0:  # ended by a signal: end the same way, so the caller sees what it would have seen
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)
