"""MLflow faults a user meets: the tracking server dies in the middle of fine-tuning (the stage fails
fast with exit code 4, keeps a checkpoint, and the re-run resumes and finishes the same run), and a
tracking URI with credentials (used as MLflow uses it, and never printed).

The server tests run a real ``mlflow server`` on 127.0.0.1, in its own process group, stopped by
its process id; it is shared by the tests of this module and they run in file order.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import pytest

from pipelines.tracking import runs as tracking
from pipelines.config import parse_params
from pipelines.core.errors import TrackingError
from tests.tiny import TINY_TRAIN, free_port, make_repo_copy, pipeline_env, tiny_params

PROJECT = "classification"
PARAMS = parse_params({"projects": {PROJECT: {"task": "classification"}}})
# A stage whose server is gone must give up within this (a bound on a hang, not a speed target:
# MLflow's own retry defaults keep a stage waiting for about 9 minutes).
FAIL_FAST_SECONDS = 120


# --------------------------------------------------------------------------- helpers
def stage(root: Path, name: str, uri: str, *, hook: str = "", timeout: float = 600,
          **env: str) -> subprocess.CompletedProcess:
    """`python -m pipelines <name> classification` in the copy, as DVC runs it; ``hook`` is code run first."""
    code = f"import sys\n{hook}\nfrom pipelines.__main__ import main\nsys.exit(main([{name!r}, {PROJECT!r}]))\n"
    return subprocess.run([sys.executable, "-c", code], cwd=root,
                          env=pipeline_env(root, MLFLOW_TRACKING_URI=uri, **env), capture_output=True, text=True,
                          timeout=timeout)


# Kills the server process group named by KILL_PGID right after the first metric the Trainer logs,
# and notes when: the next log finds no server, as when a server dies in the middle of training.
KILL_AFTER_FIRST_LOG = """
import os, signal, time
from pipelines.tracking import runs as tracking
_real = tracking.trainer_callback
def _hooked(prefix=""):
    cb = _real(prefix)
    log = cb.on_log
    def on_log(args, state, control, logs=None, **kwargs):
        log(args, state, control, logs=logs, **kwargs)
        if not os.path.exists(os.environ["KILLED_AT"]):
            os.killpg(int(os.environ["KILL_PGID"]), signal.SIGKILL)
            with open(os.environ["KILLED_AT"], "w") as fh:
                fh.write(f"{time.time()} {state.global_step}")
    cb.on_log = on_log
    return cb
tracking.trainer_callback = _hooked
"""


@pytest.fixture(scope="module")
def server(mlflow_server):
    return mlflow_server


@pytest.fixture(scope="module")
def project(tmp_path_factory, server) -> Path:
    """A tiny classification copy with everything up to pretrain done, tracked on the server."""
    root = make_repo_copy(tmp_path_factory.mktemp("faults"), tiny_params([PROJECT]))
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", f"pretrain@{PROJECT}"], cwd=root,
                          env=pipeline_env(root, MLFLOW_TRACKING_URI=server.url), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.fixture
def mlflow_env():
    """Undo what configure() sets in this process: the environment and MLflow's tracking URI."""
    import mlflow

    with mock.patch.dict(os.environ):
        for var in (*tracking.HTTP_DEFAULTS, "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"):
            os.environ.pop(var, None)
        try:
            yield os.environ
        finally:
            if mlflow.active_run():
                mlflow.end_run()
            mlflow.set_tracking_uri(None)


class Recorder(http.server.ThreadingHTTPServer):
    """A stand-in for an MLflow server behind basic auth: /health answers anyone, the API only
    ``user:secret``; every request's credentials are recorded."""

    def __init__(self):
        self.seen: list[tuple[str, str | None]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                auth = self.headers.get("Authorization")
                outer.seen.append((self.path, base64.b64decode(auth.split()[1]).decode() if auth else None))
                if self.path == "/health":
                    status, body = 200, b"OK"
                elif outer.seen[-1][1] == "user:secret":
                    status, body = 404, json.dumps({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no"}).encode()
                else:
                    status, body = 401, json.dumps({"error_code": "UNAUTHENTICATED", "message": "log in"}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def recorder():
    srv = Recorder()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)


# --------------------------------------------------------------------------- no server needed
def test_credentials_are_redacted_from_every_uri_in_a_text():
    text = ("API request to http://user:secret@127.0.0.1:5000/api/2.0/mlflow/runs/get failed; "
            "see https://s3cr3t-token@mlflow.example.com/#/ and https://h/x?a=1&access_token=s3cr3t&b=2")
    out = tracking.redact(text)
    assert "secret" not in out and "s3cr3t" not in out
    assert "http://user:***@127.0.0.1:5000/api/2.0/mlflow/runs/get" in out
    assert "https://***@mlflow.example.com/#/" in out and "a=1&access_token=***&b=2" in out
    assert tracking.redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_configure_bounds_mlflow_http_calls_unless_the_user_chose(mlflow_env, tmp_path):
    mlflow_env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "5"
    tracking.configure()
    assert mlflow_env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert mlflow_env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == tracking.HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]
    assert mlflow_env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == tracking.HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"]
    # and MLflow itself reads them (per request) as numbers it accepts
    from mlflow.environment_variables import (MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, MLFLOW_HTTP_REQUEST_MAX_RETRIES,
                                              MLFLOW_HTTP_REQUEST_TIMEOUT)

    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 5
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() * (MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() + 1) < 10 * 60
    assert MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() <= 2


def test_uri_credentials_reach_the_server_as_mlflow_sends_them(mlflow_env, recorder):
    mlflow_env["MLFLOW_TRACKING_URI"] = f"http://user:secret@{recorder.url}"
    tracking.configure()  # the pre-flight check passes, sending the URI's credentials like MLflow does
    assert recorder.seen == [("/health", "user:secret")]
    assert mlflow_env["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"  # MLflow's "View run at <URI>" line

    mlflow_env["MLFLOW_TRACKING_URI"] = f"http://{recorder.url}"
    mlflow_env["MLFLOW_TRACKING_USERNAME"], mlflow_env["MLFLOW_TRACKING_PASSWORD"] = "envuser", "envsecret"
    with pytest.raises(TrackingError) as err:
        with tracking.run(PARAMS, PROJECT, run_name="t"):
            pass
    assert recorder.seen[1] == ("/health", "envuser:envsecret")
    assert all(auth == "envuser:envsecret" for _, auth in recorder.seen[1:])
    message = str(err.value)
    assert "refused" in message and "Check the credentials" in message and recorder.url in message
    assert "secret" not in message


def test_lost_server_with_credentials_is_reported_without_them(mlflow_env):
    import mlflow

    port = free_port()
    mlflow_env["MLFLOW_TRACKING_URI"] = f"http://user:secret@127.0.0.1:{port}"
    mlflow_env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    mlflow.set_tracking_uri(mlflow_env["MLFLOW_TRACKING_URI"])  # as configure() left it before the server went
    with pytest.raises(TrackingError) as err:
        with tracking.reporting("logging metrics"):
            mlflow.MlflowClient().get_run("0123456789abcdef")
    message = str(err.value)
    assert "secret" not in message
    assert f"MLflow tracking server http://user:***@127.0.0.1:{port} does not answer (connection refused" in message
    assert "while logging metrics" in message and "re-run" in message


def test_run_left_running_is_closed_when_its_checkpoints_are_discarded(mlflow_env, tmp_path):
    """A run interrupted while MLflow was down stays RUNNING; when the re-run has other inputs its
    checkpoints are discarded, so nothing would continue that run: it is closed as KILLED."""
    import mlflow

    from pipelines.training.harness import prepare_checkpoint_dir, save_resume_state

    mlflow_env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(KeyboardInterrupt):
        with tracking.run(PARAMS, PROJECT, run_name="interrupted") as first:
            raise KeyboardInterrupt
    assert mlflow.get_run(first).info.status == "KILLED"  # what the stage sees when MLflow answers
    mlflow.MlflowClient().update_run(first, status="RUNNING")  # what it leaves when MLflow does not

    ckpt = tmp_path / "checkpoints"
    save_resume_state(ckpt, {"fingerprint": "old inputs", "run_id": first})
    assert prepare_checkpoint_dir(ckpt, "old inputs")["run_id"] == first  # same inputs: resumed
    state = prepare_checkpoint_dir(ckpt, "new inputs")
    assert state == {"superseded_run_id": first} and not any(ckpt.iterdir())
    with tracking.run(PARAMS, PROJECT, run_id=state.get("run_id"), run_name="again",
                      superseded_run_id=state["superseded_run_id"]) as second:
        pass
    assert second != first
    assert mlflow.get_run(first).info.status == "KILLED" and mlflow.get_run(second).info.status == "FINISHED"


# --------------------------------------------------------------------------- against a real server
def test_server_lost_mid_finetune_fails_fast_and_the_rerun_resumes_the_same_run(server, project, tmp_path):
    killed_at = tmp_path / "killed-at"
    failed = stage(project, "finetune", server.url, hook=KILL_AFTER_FIRST_LOG, timeout=FAIL_FAST_SECONDS + 300,
                   KILL_PGID=str(server.proc.pid), KILLED_AT=str(killed_at))
    ended = time.time()
    server.proc.wait(timeout=30)  # reap the killed server
    server.proc = None
    assert killed_at.exists(), f"the server was never killed:\n{failed.stderr[-3000:]}"
    kill_time, kill_step = killed_at.read_text().split()
    assert failed.returncode == 4, failed.stderr[-3000:]
    assert ended - float(kill_time) < FAIL_FAST_SECONDS
    assert "Traceback" not in failed.stderr
    error = failed.stderr[failed.stderr.rindex("error: "):]
    assert f"MLflow tracking server {server.url} does not answer" in error
    failed_step = int(kill_step) + TINY_TRAIN["logging_steps"]  # the first log after the kill
    assert f"Training stopped at step {failed_step}" in error

    # the step that could not be logged was checkpointed before the stage stopped
    ckpt = project / "models" / PROJECT / "checkpoints"
    assert (ckpt / f"checkpoint-{failed_step}" / "trainer_state.json").exists()
    run_id = json.loads((ckpt / "resume.json").read_text())["run_id"]
    assert run_id in error
    assert not (project / "models" / PROJECT / "finetuned").exists()

    server.start()  # the same store: the interrupted run is there, still RUNNING
    assert server.client().get_run(run_id).info.status == "RUNNING"
    again = stage(project, "finetune", server.url)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads((project / "reports" / PROJECT / "finetune.json").read_text())
    assert report["resumed_from"] == f"checkpoint-{failed_step}" and report["mlflow_run_id"] == run_id

    client = server.client()
    assert client.get_run(run_id).info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run_id, "train/loss")]
    assert min(steps) < failed_step < max(steps)  # logged before the loss of the server and after
    experiment = client.get_run(run_id).info.experiment_id
    assert not client.search_runs([experiment], "attributes.status = 'RUNNING'")


def test_server_uri_with_credentials_works_and_is_never_printed(server, project):
    uri = f"http://user:secret@127.0.0.1:{server.port}"
    proc = stage(project, "pretrain", uri)  # resumes its finished run: params, metrics, end of run
    assert proc.returncode == 0, tracking.redact(proc.stderr[-3000:])
    assert "secret" not in proc.stdout + proc.stderr
    run_id = json.loads((project / "reports" / PROJECT / "pretrain.json").read_text())["mlflow_run_id"]
    assert server.client().get_run(run_id).info.status == "FINISHED"


def test_unreachable_server_with_credentials_exits_4_without_printing_them(project):
    port = free_port()
    proc = stage(project, "pretrain", f"http://user:secret@127.0.0.1:{port}", timeout=300)
    assert proc.returncode == 4, tracking.redact(proc.stderr[-3000:])
    assert "secret" not in proc.stdout + proc.stderr
    assert f"MLflow tracking server http://user:***@127.0.0.1:{port} does not answer" in proc.stderr
