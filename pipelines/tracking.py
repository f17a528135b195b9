"""The one module that talks to MLflow: runs, metrics, artifacts, and the model registry.

By default runs go to a SQLite store in the project folder (``mlflow.db``); set
``MLFLOW_TRACKING_URI`` to use an ``mlflow server`` instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import TrackingError
from .paths import repo_root

logger = logging.getLogger(__name__)

CANDIDATE = "candidate"
CHAMPION = "champion"


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


def _is_server(uri: str) -> bool:
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
    if _is_server(tracking_uri()) and _unreachable(exc):
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

    if _is_server(uri):
        _check_server(uri)
    mlflow.set_tracking_uri(uri)
    return uri


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
    """
    import mlflow

    configure()
    with reporting("starting the run"):
        mlflow.set_experiment(experiment_name(params, project))
        if superseded_run_id and superseded_run_id != run_id:
            _close_superseded(superseded_run_id)
        if run_id and not _resumable(run_id):
            run_id = None
        active = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name)
    logger.info("MLflow run %s at %s", active.info.run_id, display_uri())
    try:
        if tags:
            set_tags(tags)
        yield active.info.run_id
    except BaseException as exc:
        _end_run("KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "FAILED",
                 server_gone=any(_unreachable(e) for e in _causes(exc)))
        if isinstance(exc, _mlflow_errors()):
            raise tracking_failure("logging to the run", exc) from None
        raise
    with reporting("finishing the run"):
        mlflow.end_run()


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


def log_metrics(values: dict[str, Any], step: int | None = None, prefix: str = "") -> None:
    import mlflow

    clean = {f"{prefix}{k}": float(v) for k, v in values.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}
    if clean:
        with reporting("logging metrics" if step is None else f"logging metrics of step {step}"):
            mlflow.log_metrics(clean, step=step)


def set_tags(tags: dict[str, Any]) -> None:
    import mlflow

    with reporting("setting tags"):
        mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_artifact(path: Path, artifact_path: str | None = None) -> None:
    import mlflow

    path = Path(path)
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    else:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_dict(data: dict, name: str) -> None:
    import mlflow

    mlflow.log_dict(data, name)


def log_table(rows: list[dict], name: str) -> None:
    """A table of sample predictions, browsable in the MLflow UI's artifact view."""
    import mlflow

    if rows:
        mlflow.log_table(data={k: [r.get(k) for r in rows] for k in rows[0]}, artifact_file=name)


def log_figure(fig, name: str) -> None:
    import mlflow

    mlflow.log_figure(fig, name)


def trainer_callback(prefix: str = ""):
    """A transformers TrainerCallback that sends the Trainer's logs to the active MLflow run.

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
                log_metrics(logs, step=state.global_step, prefix=prefix)
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


# --------------------------------------------------------------------------- registry
def lock_dir() -> Path:
    """A folder for lock files that only this user can write: a lock file in a shared folder such as
    /tmp could be planted as a link to another file, which opening it would then follow."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and _private(Path(runtime)):
        base = Path(runtime)
    else:  # unset, or not this user's (after su): a folder of our own under the temporary folder
        base = Path(tempfile.gettempdir()) / f"nlp-pipelines-{os.getuid()}"
        _make_private(base)
    folder = base / "nlp-pipelines-locks"
    _make_private(folder)
    return folder


def _private(path: Path) -> bool:
    info = os.lstat(path)
    return not stat.S_ISLNK(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _make_private(folder: Path) -> None:
    """Create ``folder`` as 0700 (whatever the umask), or check that an existing one is ours alone."""
    try:
        folder.mkdir(mode=0o700)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    except FileExistsError:
        pass
    if not _private(folder):
        raise TrackingError(f"lock folder {folder} is a link, not owned by this user, or writable by others; "
                            "remove it (it holds only lock files) and re-run")


@contextlib.contextmanager
def _registry_lock(name: str) -> Iterator[None]:
    """Serialise champion decisions of exports on this machine (two at once must not both win)."""
    path = lock_dir() / f"{name}.lock"
    # No O_TRUNC (the file's content is never touched) and no following a link put in its place.
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise TrackingError(f"cannot open the registry lock {path} ({exc.strerror}); if it is a link, remove it "
                            "and re-run") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


EXPORT_STATUS = "export_status"
ABANDONED_NOTE = ("[abandoned: the export that registered this version was stopped before its champion "
                  "decision; it was never compared with the champion. Delete it, or re-run the export.]")


def _mark_abandoned_versions(client, name: str, current: str) -> None:
    """Versions an earlier export left behind: created (tagged ``export_status: incomplete``) but
    never completed, because the export was killed before its champion decision.

    They are tagged ``export_status: abandoned`` with a note in front of their description, so no
    one mistakes them for vetted models; the champion is only ever moved to a completed version.
    Called under the registry lock: an export still running on this machine waits for the lock
    before it completes its version (and then sets it complete again), so the tag is re-read just
    before it is written."""
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except Exception:  # a registry without the model yet
        return
    for v in versions:
        if v.version == current or (v.tags or {}).get(EXPORT_STATUS) != "incomplete":
            continue
        fresh = client.get_model_version(name, v.version)
        if (fresh.tags or {}).get(EXPORT_STATUS) != "incomplete":
            continue
        client.set_model_version_tag(name, v.version, EXPORT_STATUS, "abandoned")
        client.update_model_version(name, v.version, description=f"{ABANDONED_NOTE} {fresh.description or ''}".strip())
        logger.warning("registered model %s version %s was left by an export that did not finish; marked "
                       "export_status=abandoned (delete it in the MLflow UI if you like)", name, v.version)


def log_and_register(params, project: str, run_id: str, *, python_model, artifacts: dict[str, str],
                     code_paths: list[str], pip_requirements: list[str], metric_name: str, metric_value: float,
                     test_data_hash: str, description: str, version_tags: dict[str, str],
                     score_champion: Callable[[str], float] | None = None, signature=None) -> dict:
    """Log the model as a pyfunc in the run, register a version, set `candidate`, maybe move `champion`.

    ``python_model`` is a PythonModel, or the path of a models-from-code file (nothing pickled);
    ``signature`` is the input the served model declares (an MLflow ModelSignature), if any.

    `champion` moves to the new version only if its metric is at least the champion's on the same
    test data. When the champion was scored on other test data, ``score_champion(model_uri)``
    re-scores it on this data; without it the champion stays.
    """
    import mlflow
    from mlflow import MlflowClient

    configure()
    name = registered_name(params, project)
    client = MlflowClient()
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=python_model, artifacts=artifacts, code_paths=code_paths,
            pip_requirements=pip_requirements, signature=signature,
        )
    try:
        client.get_registered_model(name)
    except Exception:
        try:
            client.create_registered_model(name, description=f"{project} model of the NLP pipeline")
        except Exception as exc:  # a concurrent export may have created it
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
    tags = {**version_tags, "metric_name": metric_name, "metric_value": repr(float(metric_value)),
            "test_data_hash": test_data_hash}
    # The version is created already tagged incomplete, in one call, so an export killed before the
    # end leaves a version that says what it is; the tag turns complete once the aliases are decided.
    mv = client.create_model_version(name, info.model_uri, run_id=run_id, description=description,
                                     tags={**{k: str(v) for k, v in tags.items()}, EXPORT_STATUS: "incomplete"})
    client.set_registered_model_alias(name, CANDIDATE, mv.version)

    with _registry_lock(name):
        _mark_abandoned_versions(client, name, mv.version)
        previous = None
        try:
            previous = client.get_model_version_by_alias(name, CHAMPION)
        except Exception:
            previous = None
        moved, reason, champion_score = False, "", None
        if previous is None:
            moved, reason = True, "no champion yet"
        else:
            ptags = previous.tags or {}
            if ptags.get("test_data_hash") == test_data_hash and ptags.get("metric_name") == metric_name:
                champion_score = float(ptags["metric_value"])
            elif score_champion is not None:
                champion_score = float(score_champion(f"models:/{name}/{previous.version}"))
            if champion_score is None:
                reason = "champion was scored on other test data and cannot be re-scored; kept"
            elif float(metric_value) >= champion_score:
                moved, reason = True, f"{metric_name} {metric_value:.4f} >= champion's {champion_score:.4f}"
            else:
                reason = f"{metric_name} {metric_value:.4f} < champion's {champion_score:.4f}"
        if moved:
            client.set_registered_model_alias(name, CHAMPION, mv.version)
        client.set_model_version_tag(name, mv.version, EXPORT_STATUS, "complete")
        client.update_model_version(name, mv.version, description=description)  # if another export marked it
    champion = client.get_model_version_by_alias(name, CHAMPION)
    result = {
        "registered_model": name, "version": int(mv.version), "model_uri": info.model_uri,
        "champion_moved": moved, "champion_version": int(champion.version), "reason": reason,
        "previous_champion": int(previous.version) if previous is not None else None,
        "previous_champion_score": champion_score,
    }
    logger.info("registered %s version %s; champion %s (%s)", name, mv.version,
                "moved" if moved else "kept", reason)
    return result


def version_info(name: str, alias: str) -> dict | None:
    """A registered version by alias, as a plain dict, or None."""
    from mlflow import MlflowClient

    configure()
    try:
        mv = MlflowClient().get_model_version_by_alias(name, alias)
    except Exception:
        return None
    return {"version": int(mv.version), "run_id": mv.run_id, "tags": dict(mv.tags or {}),
            "description": mv.description}


def load_pyfunc(uri: str):
    """A registered or logged model (``models:/<name>@champion``, ``runs:/<id>/model``) as a pyfunc."""
    import mlflow

    configure()
    try:
        return mlflow.pyfunc.load_model(uri)
    except Exception as exc:
        raise TrackingError(f"cannot load model {uri!r} from {display_uri()}: {_reason(exc)}. "
                            "Check the name and alias in the MLflow UI, or set MLFLOW_TRACKING_URI") from None


def to_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
