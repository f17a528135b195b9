"""The suite's preloaded `python` (devsupport/preload.py) behaves as the real interpreter would for
what the pipeline starts: arguments, folder, environment, standard streams, exit codes, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.tiny import pipeline_env


@pytest.fixture
def env(preloaded_python, tmp_path):
    if preloaded_python is None:
        pytest.skip("PIPELINES_TEST_PRELOAD=0: stage processes start from scratch")
    preloaded_python.wait_ready()
    return pipeline_env(tmp_path)


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_a_pipelines_command_runs_in_a_fork_of_the_server_with_the_callers_streams(env, tmp_path, preloaded_python):
    (tmp_path / "params.yaml").write_text("projects: {}\n")
    command = "python -m pipelines --version; python -m pipelines check"
    preloaded = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=120)
    real = subprocess.run(command.replace("python", sys.executable), shell=True, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    # the same output, message and exit code (2: projects is empty) as the real interpreter's
    assert preloaded.stdout == real.stdout and preloaded.returncode == real.returncode == 2
    assert "projects is empty" in preloaded.stderr and preloaded.stderr.count("projects is empty") == \
        real.stderr.count("projects is empty")
    bad = subprocess.run("python -m pipelines nosuchstage", shell=True, cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'nosuchstage'" in bad.stderr


def test_anything_else_runs_the_real_interpreter(env, tmp_path):
    proc = subprocess.run("echo hello | python -c 'import sys; print(sys.stdin.read().strip(), sys.argv[1:])' x",
                          shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "hello ['x']"


def test_killing_the_command_kills_its_forked_child(env, tmp_path, preloaded_python):
    """SIGKILL of the caller's process group (an interrupted `dvc repro`) ends the command too. The
    command's code is the caller's folder's `pipelines` package, as for `python -m`: the server
    preloads libraries, never the project's code."""
    server = preloaded_python.proc.pid
    code = "import time; open('started', 'w').close(); time.sleep(600)"
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "__main__.py").write_text(code)
    proc = subprocess.Popen("python -m pipelines", shell=True, cwd=tmp_path, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    assert _children_of(server), "the command did not run in a fork of the server"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while _children_of(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _children_of(server)


def test_a_signal_to_the_command_reaches_it_and_its_exit_status_comes_back(env, tmp_path):
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "__main__.py").write_text(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
        "open('started', 'w').close(); time.sleep(600)\n")
    proc = subprocess.Popen("exec python -m pipelines", shell=True, cwd=tmp_path, env=env)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 7
