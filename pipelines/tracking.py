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
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import TrackingError
from .paths import repo_root

logger = logging.getLogger(__name__)

CANDIDATE = "candidate"
CHAMPION = "champion"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def configure() -> str:
    """Point MLflow at the store, checking first that a server URI answers."""
    import mlflow

    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10) as resp:
                if resp.status != 200:
                    raise OSError(f"HTTP {resp.status}")
        except (OSError, urllib.error.URLError) as exc:
            raise TrackingError(
                f"MLflow tracking server {uri} does not answer ({exc}). Start it (mlflow server --host 127.0.0.1 "
                "--port PORT), fix MLFLOW_TRACKING_URI, or unset it to use the local SQLite store."
            ) from None
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
        tags: dict[str, str] | None = None) -> Iterator[str]:
    """Start (or continue, given ``run_id``) the project's run; yields its id."""
    import mlflow

    configure()
    mlflow.set_experiment(experiment_name(params, project))
    if run_id:
        try:
            mlflow.get_run(run_id)
        except Exception:
            logger.warning("MLflow run %s not found at %s; starting a new run", run_id, tracking_uri())
            run_id = None
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name) as active:
        if tags:
            mlflow.set_tags(tags)
        yield active.info.run_id


def log_params(values: dict[str, Any]) -> dict[str, tuple]:
    """Log params; a param that differs from the value already in the run (a resumed run) is tagged.

    Returns the changed params as {key: (old, new)}.
    """
    import mlflow

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
        mlflow.log_metrics(clean, step=step)


def set_tags(tags: dict[str, Any]) -> None:
    import mlflow

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
    """A transformers TrainerCallback that sends the Trainer's logs to the active MLflow run."""
    from transformers import TrainerCallback

    class MlflowLogs(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and state.is_world_process_zero:
                log_metrics(logs, step=state.global_step, prefix=prefix)

    return MlflowLogs()


# --------------------------------------------------------------------------- registry
@contextlib.contextmanager
def _registry_lock(name: str) -> Iterator[None]:
    """Serialise champion decisions of exports on this machine (two at once must not both win)."""
    lock_dir = Path(tempfile.gettempdir()) / "nlp-pipelines-locks"
    lock_dir.mkdir(exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def log_and_register(params, project: str, run_id: str, *, python_model, artifacts: dict[str, str],
                     code_paths: list[str], pip_requirements: list[str], metric_name: str, metric_value: float,
                     test_data_hash: str, description: str, version_tags: dict[str, str],
                     score_champion: Callable[[str], float] | None = None) -> dict:
    """Log the model as a pyfunc in the run, register a version, set `candidate`, maybe move `champion`.

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
            pip_requirements=pip_requirements,
        )
    try:
        client.get_registered_model(name)
    except Exception:
        try:
            client.create_registered_model(name, description=f"{project} model of the NLP pipeline")
        except Exception as exc:  # a concurrent export may have created it
            if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
    mv = client.create_model_version(name, info.model_uri, run_id=run_id, description=description)
    tags = {**version_tags, "metric_name": metric_name, "metric_value": repr(float(metric_value)),
            "test_data_hash": test_data_hash}
    for k, v in tags.items():
        client.set_model_version_tag(name, mv.version, k, str(v))
    client.set_registered_model_alias(name, CANDIDATE, mv.version)

    with _registry_lock(name):
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
        raise TrackingError(f"cannot load model {uri!r} from {tracking_uri()}: {str(exc).splitlines()[0]}. "
                            "Check the name and alias in the MLflow UI, or set MLFLOW_TRACKING_URI") from None


def to_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
