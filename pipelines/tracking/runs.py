"""The one module that talks to MLflow about runs: the store, runs, metrics and artifacts (the
registry's champion rule is in registry.py).

By default runs go to a SQLite store in the project folder (``mlflow.db``); set
``MLFLOW_TRACKING_URI`` to use an ``mlflow server`` instead.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from pipelines.training import distributed
from pipelines.core.errors import TrackingError
from pipelines.core.paths import repo_root

logger = logging.getLogger(__name__)

# MLflow's own HTTP settings (read on every request), unless the user set them. MLflow's defaults
# (120 s per attempt, 7 retries with doubling back-off) hold a stage about 9 minutes when the server
# has gone; with these a server that refuses connections fails a call within about 10 s, and a hung
# one within about a minute. Failing fast loses nothing: checkpoints are kept and the re-run resumes.
HTTP_DEFAULTS = {
    # Seconds per attempt: a server writing a large model artifact to its store answers well within it.
    # A server that is gone refuses the connection at once; one that hangs costs three attempts.
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # waits of about 0 and 2 s between the attempts
}
# The pre-flight check asks once: a server that is up answers /health at once.
HEALTH_TIMEOUT_SECONDS = 10
# The experiment tag the MLflow UI reads to choose its view: model training, not GenAI traces.
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s?#]*)@")
_SECRET_QUERY = re.compile(r"(?P<key>[?&;][^=&#\s]*(?:token|secret|passw|pwd|key|sig|auth|credential)[^=&#\s]*=)"
                           r"[^&#\s]+", re.IGNORECASE)


def tracking_uri() -> str:
    """The store runs go to: MLFLOW_TRACKING_URI, else mlflow.db in the project. It may hold a
    password: show it only through :func:`display_uri` or :func:`redact`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def redact(text: Any) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``: the password of
    ``user:password@`` (a bare ``token@`` entirely) and secret-looking query parameters."""
    def userinfo(m: re.Match) -> str:
        user, sep, _ = m["userinfo"].partition(":")
        return f"{m['scheme']}{user}:***@" if sep else f"{m['scheme']}***@"

    return _SECRET_QUERY.sub(r"\g<key>***", _USERINFO.sub(userinfo, str(text)))


def display_uri() -> str:
    """The tracking URI, fit for messages and logs."""
    return redact(tracking_uri())


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _mlflow_errors() -> tuple[type[BaseException], ...]:
    """What a failed MLflow call raises: MlflowException, or requests' own errors from artifact uploads."""
    import requests
    from mlflow.exceptions import MlflowException

    return MlflowException, requests.exceptions.RequestException


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during (MLflow wraps requests' errors)."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not e for e in chain):
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def _unreachable(exc: BaseException) -> bool:
    """True when the server could not be reached, did not answer in time, or kept answering with an
    error MLflow retries (such as 503 from a proxy whose MLflow is down); not when it refused a call."""
    import requests

    gone = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.RetryError)
    return any(isinstance(e, gone) for e in _causes(exc))


def _reason(exc: BaseException) -> str:
    """A short cause of a failed MLflow call, without credentials."""
    import requests

    chain = _causes(exc)
    if _unreachable(exc):
        if any(isinstance(e, requests.exceptions.Timeout) for e in chain):
            return f"no answer within MLFLOW_HTTP_REQUEST_TIMEOUT={os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT')} s"
        for e in reversed(chain):  # the socket's own error: "connection refused", a DNS failure
            if isinstance(e, OSError) and e.strerror:
                return e.strerror.lower()
        for e in chain:  # urllib3's MaxRetryError keeps the last failure: "too many 503 error responses"
            if isinstance(getattr(e, "reason", None), Exception) and str(e.reason):
                return redact(e.reason)[:300]
    message = getattr(exc, "message", None) or str(exc)
    lines = [line for line in redact(message).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def tracking_failure(what: str, exc: BaseException) -> TrackingError:
    """A TrackingError for a failed MLflow call while doing ``what``: names the store (without
    credentials), the cause and the fix."""
    uri = display_uri()
    reason = _reason(exc)
    code = getattr(exc, "error_code", None)
    if code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return TrackingError(
            f"MLflow at {uri} refused {what} ({reason}). Check the credentials: user:password in "
            "MLFLOW_TRACKING_URI, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    if is_server(tracking_uri()) and _unreachable(exc):
        retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
        return TrackingError(
            f"MLflow tracking server {uri} does not answer ({reason}; MLflow gave up after "
            f"MLFLOW_HTTP_REQUEST_MAX_RETRIES={retries} retries) while {what}. Start it again or fix "
            "MLFLOW_TRACKING_URI, then re-run the stage: finished work is kept")
    return TrackingError(f"MLflow at {uri} failed while {what}: {reason}")


@contextlib.contextmanager
def reporting(what: str) -> Iterator[None]:
    """Turn a failed MLflow call in the block into a :func:`tracking_failure` (exit code 4)."""
    try:
        yield
    except _mlflow_errors() as exc:
        raise tracking_failure(what, exc) from None


def _check_server(uri: str) -> None:
    """Ask the server's /health once, the way MLflow itself connects (credentials from the URI or
    MLFLOW_TRACKING_USERNAME / PASSWORD, TLS settings), so a URI MLflow can use passes."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    try:
        resp = http_request(get_default_host_creds(uri), "/health", "GET", max_retries=0, backoff_factor=0,
                            backoff_jitter=0, timeout=HEALTH_TIMEOUT_SECONDS, raise_on_status=False)
    except _mlflow_errors() as exc:
        problem = _reason(exc)
    else:
        if resp.status_code == 200:
            return
        problem = f"HTTP {resp.status_code} from /health"
        if resp.status_code in (401, 403):
            problem += ("; check the credentials (user:password in the URI, or MLFLOW_TRACKING_USERNAME and "
                        "MLFLOW_TRACKING_PASSWORD)")
    raise TrackingError(
        f"MLflow tracking server {redact(uri)} does not answer ({problem}). Start it (mlflow server --host "
        "127.0.0.1 --port PORT), fix MLFLOW_TRACKING_URI, or unset it to use the local SQLite store.")


def configure() -> str:
    """Point MLflow at the store, with bounded HTTP timeouts, checking first that a server URI answers."""
    for var, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(var, value)
    uri = tracking_uri()
    if redact(uri) != uri:
        # MLflow prints "View run ... at: <tracking URI>/#/..." after each run: password included.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    import mlflow

    if is_server(uri):
        _check_server(uri)
    elif uri == f"sqlite:///{repo_root() / 'mlflow.db'}":  # the project's own store
        relocate(repo_root() / "mlflow.db")
    mlflow.set_tracking_uri(uri)
    return uri


# Where MLflow's SQLite schema records artifact locations (as absolute paths or file: URIs).
LOCATION_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("logged_models", "artifact_location"), ("model_versions", "storage_location"),
                    ("model_versions", "source"))


def relocate(db: Path) -> list[str]:
    """Make the project's own store follow the project when it is copied or moved.

    MLflow turns every local artifact location into an absolute path, so a copy of the project
    would read its models from, and log new runs into, the original's ``mlruns/``. The project's
    store keeps its artifacts in ``mlruns/`` beside ``mlflow.db``; any recorded location in an
    ``mlruns/`` folder elsewhere is pointed at the one beside the database now. Returns the
    folders it moved away from (none when the store is where it was made)."""
    import sqlite3

    if not db.is_file():
        return []
    here = str(db.resolve().parent / "mlruns")
    con = sqlite3.connect(db, timeout=60)
    try:
        try:
            locations = [row[0] for row in con.execute("SELECT artifact_location FROM experiments")]
        except sqlite3.DatabaseError:  # not (yet) an MLflow store
            return []
        old = set()
        for loc in locations:
            path = (loc or "").removeprefix("file://")
            cut = (path + "/").find("/mlruns/")
            if path.startswith("/") and cut >= 0 and path[:cut] + "/mlruns" != here:
                old.add(path[:cut] + "/mlruns")
        with con:
            for prefix in sorted(old):
                for was, now in ((f"file://{prefix}", f"file://{here}"), (prefix, here)):
                    for table, column in LOCATION_COLUMNS:
                        con.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608
                                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                                    (now, len(was) + 1, was, len(was) + 1, was + "/"))
    finally:
        con.close()
    for prefix in sorted(old):
        logger.info("the project's MLflow store was made in %s; its artifact locations now point at %s",
                    prefix, here)
    return sorted(old)


def experiment_name(params, project: str) -> str:
    return f"{params.tracking.experiment_prefix}-{project}"


def registered_name(params, project: str) -> str:
    return f"{params.tracking.registered_model_prefix}{project}"


def git_commit() -> dict[str, str]:
    """The commit the code came from, and whether the work tree had changes."""
    root = repo_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"git.commit": "unknown"}
    if sha.returncode != 0:
        return {"git.commit": "unknown"}
    return {"git.commit": sha.stdout.strip(), "git.dirty": str(bool(dirty.stdout.strip())).lower()}


@contextlib.contextmanager
def run(params, project: str, *, run_id: str | None = None, run_name: str | None = None,
        tags: dict[str, str] | None = None, superseded_run_id: str | None = None) -> Iterator[str]:
    """Start (or continue, given ``run_id``) the project's run; yields its id.

    The run ends FINISHED, FAILED when the block raises, KILLED when it is interrupted. When MLflow
    cannot be told (the server has gone) it stays RUNNING until the re-run continues it (the stages
    keep its id with their checkpoints). ``superseded_run_id``: the run of checkpoints that were
    discarded; if it was left RUNNING it is closed as KILLED, since nothing will continue it.

    Of a multi-process training only the main process has the run; the others yield ``run_id``
    unchanged and log nothing (see :func:`main_process_only`).
    """
    if not distributed.is_main_process():
        yield run_id
        return
    import mlflow

    configure()
    with reporting("starting the run"):
        _set_experiment(experiment_name(params, project))
        if superseded_run_id and superseded_run_id != run_id:
            _close_superseded(superseded_run_id)
        if run_id and not _resumable(run_id):
            run_id = None
        if run_name and not run_id:
            # Say when: a project trains many times, and every run of a stage would share its name.
            run_name = f"{run_name} {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        active = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name)
    logger.info("MLflow run %s at %s", active.info.run_id, display_uri())
    try:
        if tags:
            set_tags(tags)
        yield active.info.run_id
    except BaseException as exc:
        _end_run("KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else getattr(exc, "run_status", "FAILED"),
                 server_gone=any(_unreachable(e) for e in _causes(exc)))
        if isinstance(exc, _mlflow_errors()):
            raise tracking_failure("logging to the run", exc) from None
        raise
    with reporting("finishing the run"):
        mlflow.end_run()


def _set_experiment(name: str) -> None:
    """Make ``name`` the active experiment. A new experiment of a SQLite store keeps its artifacts in
    ``mlruns/`` beside the database, not in the working directory, so a store in another folder
    (a test's, a second project's) holds its own files."""
    import mlflow
    from mlflow.exceptions import MlflowException

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and mlflow.get_experiment_by_name(name) is None:
        folder = Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns" / name
        try:
            mlflow.create_experiment(name, artifact_location=folder.as_uri())
        except MlflowException as exc:  # created by a stage running at the same moment
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    experiment = mlflow.set_experiment(name)
    if (experiment.tags or {}).get(EXPERIMENT_KIND) is None:
        # Without a kind the UI opens the experiment on the GenAI traces view, which is empty here.
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, MODEL_DEVELOPMENT)


def _lookup_run(run_id: str):
    """The run, or None when the store does not have it; a store that cannot answer raises."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.get_run(run_id)
    except MlflowException as exc:
        if _unreachable(exc) or getattr(exc, "error_code", None) in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            raise
        return None


def _resumable(run_id: str) -> bool:
    found = _lookup_run(run_id)
    if found is None or found.info.lifecycle_stage == "deleted":
        logger.warning("MLflow run %s %s at %s; starting a new run", run_id,
                       "not found" if found is None else "was deleted", display_uri())
        return False
    return True


def _close_superseded(run_id: str) -> None:
    from mlflow import MlflowClient

    found = _lookup_run(run_id)
    if found is not None and found.info.status == "RUNNING":
        client = MlflowClient()
        client.set_tag(run_id, "ended_because", "its checkpoints were discarded: inputs or settings changed")
        client.set_terminated(run_id, "KILLED")
        logger.info("closed MLflow run %s as KILLED: it was interrupted and its checkpoints are discarded", run_id)


def _end_run(status: str, server_gone: bool = False) -> None:
    """End the active run as ``status``; when MLflow cannot be told, log that rather than raise over the
    error that ended the run. When the server has just failed to answer, it is asked once, briefly,
    instead of with the full timeout and retries again."""
    import mlflow

    active = mlflow.active_run()
    brief = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"} if server_gone else {}
    saved = {k: os.environ.get(k) for k in brief}
    os.environ.update(brief)
    try:
        mlflow.end_run(status)
    except _mlflow_errors() as exc:
        # mlflow.end_run has already dropped the run from its stack, so nothing retries at exit.
        logger.warning("could not mark MLflow run %s as %s at %s (%s); it shows as RUNNING until the stage is "
                       "re-run", active.info.run_id if active else "?", status, display_uri(), _reason(exc))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main_process_only(log):
    """A logging function that does nothing on the other processes of a multi-process training: a
    training is one MLflow run, the main process's, which they do not have."""
    @functools.wraps(log)
    def on_main_process(*args, **kwargs):
        return log(*args, **kwargs) if distributed.is_main_process() else None

    return on_main_process


@main_process_only
def log_params(values: dict[str, Any]) -> dict[str, tuple]:
    """Log params; a param that differs from the value already in the run (a resumed run) is tagged.

    Returns the changed params as {key: (old, new)}.
    """
    import mlflow

    with reporting("logging params"):
        active = mlflow.active_run()
        existing = mlflow.get_run(active.info.run_id).data.params if active else {}
    fresh, changed = {}, {}
    for k, v in values.items():
        v = "" if v is None else str(v)[:6000]
        if k in existing:
            if existing[k] != v:
                changed[k] = (existing[k], v)
        else:
            fresh[k] = v
    keys = list(fresh)
    with reporting("logging params"):
        for i in range(0, len(keys), 100):
            mlflow.log_params({k: fresh[k] for k in keys[i:i + 100]})
        for k, (old, new) in changed.items():
            mlflow.set_tag(f"param_changed.{k}", f"{old} -> {new}")
    if changed:
        logger.warning("params changed since this run started (tagged param_changed.*): %s", sorted(changed))
    return changed


# The MLflow UI groups a run's charts by the part of a metric's name before "/". The groups, in the
# order a person looks for them: train/, validation/, test/ (the served model's full precision),
# per_class/, variant/<name>. (each compressed variant), pretrain/, data_change/, sweep/.
def trainer_key(key: str, group: str | None = None) -> str:
    """The name a Trainer log entry is charted under: ``group/key``, or for fine-tuning
    validation/<metric> for its eval_<metric> entries and train/<key> for the rest."""
    if group:
        return f"{group}/{key}"
    if key.startswith("eval_"):
        return f"validation/{key.removeprefix('eval_')}"
    return f"train/{key.removeprefix('train_')}"


@main_process_only
def log_metrics(values: dict[str, Any], step: int | None = None, prefix: str = "") -> None:
    import mlflow

    clean = {f"{prefix}{k}": float(v) for k, v in values.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}
    if clean:
        with reporting("logging metrics" if step is None else f"logging metrics of step {step}"):
            mlflow.log_metrics(clean, step=step)


@main_process_only
def set_tags(tags: dict[str, Any]) -> None:
    import mlflow

    with reporting("setting tags"):
        mlflow.set_tags({k: str(v) for k, v in tags.items()})


@main_process_only
def log_dict(data: dict, name: str) -> None:
    import mlflow

    mlflow.log_dict(data, name)


@main_process_only
def log_table(rows: list[dict], name: str) -> None:
    """A table of sample predictions, browsable in the MLflow UI's artifact view."""
    import mlflow

    if rows:
        mlflow.log_table(data={k: [r.get(k) for r in rows] for k in rows[0]}, artifact_file=name)


@main_process_only
def log_figure(fig, name: str) -> None:
    import mlflow

    mlflow.log_figure(fig, name)


def trainer_callback(group: str | None = None):
    """A transformers TrainerCallback that sends the Trainer's logs to the active MLflow run, named
    by :func:`trainer_key`.

    When MLflow stops answering during training, the Trainer first saves a checkpoint of this step
    and then stops with the TrackingError, so the re-run resumes here and continues the same run.
    """
    from transformers import TrainerCallback

    class MlflowLogs(TrainerCallback):
        def __init__(self):
            self.training = False
            self.failure: TrackingError | None = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.training, self.failure = True, None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or not state.is_world_process_zero or self.failure:
                return
            try:
                log_metrics({trainer_key(k, group): v for k, v in logs.items()}, step=state.global_step)
            except TrackingError as exc:
                if not self.training:
                    raise
                self.failure = exc
                control.should_save = True  # the Trainer saves right after the log of a step

        def _stop(self, args, state):
            import mlflow

            active = mlflow.active_run()
            run = f" and continues MLflow run {active.info.run_id}" if active else ""
            raise TrackingError(f"{self.failure}. Training stopped at step {state.global_step}, saved in "
                                f"{args.output_dir}; the re-run resumes from there{run}") from None

        def on_save(self, args, state, control, **kwargs):
            if self.failure:
                self._stop(args, state)

        def on_train_end(self, args, state, control, **kwargs):
            self.training = False
            if self.failure:  # failed on the final log, after the last checkpoint
                self._stop(args, state)

    return MlflowLogs()


def load_pyfunc(uri: str):
    """A registered or logged model (``models:/<name>@champion``, ``runs:/<id>/model``) as a pyfunc."""
    import mlflow

    configure()
    try:
        return mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        raise TrackingError(f"cannot load model {uri!r} from {display_uri()}: {_reason(exc)}. "
                            "Check the name and alias in the MLflow UI, or set MLFLOW_TRACKING_URI") from None
