"""The Prefect flows: one pipeline run of a project, and a scheduled retraining that first checks
whether anything changed since the champion was trained.

Each DVC stage is one task (``dvc repro --single-item <stage>@<project>``), so the Prefect UI shows
every stage with its logs, duration and state; a stage ``dvc status`` finds up to date ends as a
Completed state named ``Skipped``, one whose outputs DVC restored from its run cache as ``Cached``.
The flow runs where the worker runs: in the worker's checkout of this repository (the deployment's
working directory), with the worker's environment, so a GPU worker trains on CUDA and
``MLFLOW_TRACKING_URI`` sends results to the team's MLflow server. Before the stages it pulls the
checkout's branch (``git pull --ff-only``); with a DVC remote, a stage another worker already ran
with the same inputs is restored from the remote's run cache (``dvc repro --pull``), and at the
end the run pushes its outputs and run cache. The stages that put a model on a device hold one of
the machine's GPU slots (flows/gpu_slots.py); the others hold none.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.states import Completed

from flows import dvc_runner
from flows.checkout import check_project, checkout_lock, pull_from_origin
from flows.commands import run_logged
from flows.dvc_runner import CACHED, SKIPPED, StageOutcome, repro_stage
from flows.errors import FlowError, StageFailed
from flows.gpu_slots import GPU_STAGES, gpu_slot, tag_flow_run_with_machine
from flows.overrides import apply_overrides, params_restored, validate_params
from flows.run_summary import run_summary, summary_markdown
from pipelines.stages import STAGES

# A second flow run on the same checkout waits this long for the first before failing.
LOCK_TIMEOUT_SECONDS = 6 * 3600


def artifact_key(project: str, what: str) -> str:
    """``<project>-<what>`` as Prefect accepts an artifact key: lowercase letters, digits and dashes
    only, where a project name may also hold capitals and underscores (``Reviews_EN`` gives
    ``reviews-en-pipeline-run``)."""
    return re.sub(r"[^a-z0-9-]", "-", f"{project}-{what}".lower())


def _retry_settings(retries: int | None, delay: float | None) -> tuple[int, float]:
    """Retries of a failed stage: the flow parameter, else PIPELINES_FLOW_RETRIES (default 1);
    the wait between tries: the parameter, else PIPELINES_FLOW_RETRY_DELAY seconds (default 30)."""
    from pipelines.core import settings

    if retries is None:
        retries = settings.get("PIPELINES_FLOW_RETRIES")
    if delay is None:
        delay = settings.get("PIPELINES_FLOW_RETRY_DELAY")
    return max(0, retries), max(0.0, delay)


def _is_transient(task, task_run, state) -> bool:
    """Retry a failed stage unless retrying cannot help: bad params (exit code 2) or data (3), a model
    that fails its params' check (5), or an error of the flow itself. A lost MLflow server (4), a
    killed process or out of memory may pass on the next try."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:
        return True
    if isinstance(exc, StageFailed):
        return exc.transient
    return not isinstance(exc, FlowError)


def start_local_api() -> None:
    """In local mode (no PREFECT_API_URL), start Prefect's temporary server now, as its first client
    would, so that one that does not come up is reported in words instead of a traceback."""
    from prefect.settings import (PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED,
                                  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # one per process: the flows' clients reuse it
    try:
        server.start()
    except Exception as exc:
        server.stop()
        limit = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        raise FlowError(
            f"Prefect's temporary local server did not start within PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="
            f"{limit} s ({' '.join(str(exc).split())[:500].rstrip('.')}). On a busy machine allow it longer (e.g. "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=300), or start a server (prefect server start "
            "--host 127.0.0.1) and set PREFECT_API_URL=http://127.0.0.1:4200/api") from None


@task(name="check-params", task_run_name="check-params@{project}", cache_policy=NO_CACHE)
def check_params(project: str, root: str, overrides: dict[str, Any] | None = None) -> list[str]:
    """Apply the overrides to params.yaml and validate it (``python -m pipelines check``)."""
    logger = get_run_logger()
    if overrides:
        changed = apply_overrides(Path(root), project, overrides)
        logger.info("params.yaml: %s", ", ".join(f"{k}={overrides[k]!r}" for k in changed) if changed
                    else "overrides already in place")
        return changed
    validate_params(Path(root), project)
    logger.info("params.yaml is valid")
    return []


@task(name="git-pull", task_run_name="git-pull@{project}", cache_policy=NO_CACHE)
def sync_checkout(project: str, root: str) -> str:
    """Bring the checkout up to date with its origin before anything reads it."""
    message = pull_from_origin(Path(root))
    get_run_logger().info("%s", message)
    return message


@task(name="stage", task_run_name="{stage}@{project}", cache_policy=NO_CACHE, retry_condition_fn=_is_transient)
def run_stage(stage: str, project: str, root: str, device_env: dict[str, str] | None = None, pull: bool = False):
    """One DVC stage; Completed (ran), or Completed named Skipped (up to date) or Cached (outputs
    restored from DVC's run cache). ``device_env``: the GPU slot the stage runs on."""
    from flows.commands import stage_env

    logger = get_run_logger()
    outcome = repro_stage(Path(root), stage, project, log=logger.info, env=stage_env(device_env), pull=pull)
    if outcome.status == SKIPPED:
        return Completed(name="Skipped", message=f"{outcome.target}: up to date (dvc status), not run", data=asdict(outcome))
    if outcome.status == CACHED:
        return Completed(name="Cached", message=f"{outcome.target}: outputs restored from DVC's run cache",
                         data=asdict(outcome))
    logger.info("%s ran in %.1f s", outcome.target, outcome.seconds)
    return asdict(outcome)


@task(name="lineage", task_run_name="lineage@{project}", cache_policy=NO_CACHE)
def check_lineage(project: str, root: str) -> dict:
    """Compare the checkout's data and params hashes with the champion's lineage tags."""
    logger = get_run_logger()
    rc, out, err = run_logged([sys.executable, "-m", "flows.lineage", project], Path(root), logger.debug)
    if rc != 0:
        raise FlowError("checking what changed since the champion failed:\n" + "\n".join(err))
    verdict = json.loads(out[-1])
    for reason in verdict["reasons"]:
        logger.info("changed: %s", reason)
    return verdict


@task(name="dvc-push", task_run_name="dvc-push@{project}", cache_policy=NO_CACHE)
def push_outputs(project: str, root: str) -> str:
    """Send the project's outputs to the DVC remote (the cache other workers share)."""
    return dvc_runner.push(Path(root), project, log=get_run_logger().info)


def _root(checkout: str | None, project: str) -> Path:
    root = Path(checkout or os.getcwd()).resolve()
    check_project(root, project)
    return root


def _stages(project: str, root: Path, stages, retries: int, delay: float, pull: bool) -> list[StageOutcome]:
    task_ = run_stage.with_options(retries=retries, retry_delay_seconds=delay)
    logger = get_run_logger()
    outcomes = []
    # In order: each stage reads what the one before wrote; a failure raises and fails the flow. A run
    # of stages that use the device holds one GPU slot of the machine for all of them.
    for on_device, group in itertools.groupby(stages, key=lambda stage: stage in GPU_STAGES):
        with gpu_slot(on_wait=logger.info) if on_device else contextlib.nullcontext((None, None)) as (slot, env):
            if slot:
                logger.info("running %s on GPU slot %s", ", ".join(GPU_STAGES), slot)
            for stage in group:
                state = task_(stage, project, str(root), env, pull, return_state=True)
                outcomes.append(StageOutcome(**state.result()))
    return outcomes


def _prepare(project: str, root: Path, pull: bool) -> bool:
    """Tag the flow run with the machine it runs on, pull the checkout; True when the checkout has a
    DVC remote whose run cache the stages may restore from."""
    tag_flow_run_with_machine()
    if pull:
        sync_checkout(project, str(root))
    return pull and dvc_runner.dvc_remote(root) is not None


def _finish(project: str, root: Path, outcomes: list[StageOutcome], push: bool) -> dict:
    logger = get_run_logger()
    pushed = None
    if push:
        state = push_outputs(project, str(root), return_state=True)
        if state.is_completed():
            pushed = state.result()
        else:
            pushed = f"dvc push failed: {state.message}"
            logger.warning("%s (the model is registered; push again with `dvc push`)", pushed)
    summary = run_summary(root, project, outcomes, pushed, flow_run_id=flow_run.id)
    create_markdown_artifact(
        key=artifact_key(project, "pipeline-run"), markdown=summary_markdown(summary),
        description=f"{project}: test metrics, MLflow run and registry version of this run")
    logger.info("%s: version %s, champion %s", project, summary["version"],
                "moved" if summary["champion_moved"] else "unchanged")
    return summary


def _lock(root: Path, timeout: float):
    logger = get_run_logger()
    return checkout_lock(root, timeout, owner=f"flow run {flow_run.id}",
                            on_wait=lambda holder: logger.info("waiting for the checkout lock (held by %s)", holder))


@flow(name="nlp-pipeline", flow_run_name="{project}")
def pipeline(project: str = "classification", overrides: dict[str, Any] | None = None,
             checkout: str | None = None, retries: int | None = None, retry_delay_seconds: float | None = None,
             push: bool = True, lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS,
             keep_overrides: bool = False, pull: bool = True) -> dict:
    """Run every DVC stage of ``project`` in order in ``checkout`` (default: the working directory),
    after writing ``overrides`` ({dotted key: value}) into its params.yaml and validating it.

    The overrides are for this run: params.yaml is put back as it was when the run ends (however
    it ends), so the next scheduled retraining of the checkout trains on its own settings; the
    values this run used are in its MLflow run and in dvc.lock. ``keep_overrides`` leaves them.
    ``pull``: pull the checkout's branch first and restore stages from the DVC remote's run cache;
    ``push``: push outputs and run cache to the DVC remote at the end."""
    root = _root(checkout, project)
    retries, delay = _retry_settings(retries, retry_delay_seconds)
    with _lock(root, lock_timeout_seconds):
        restore = (params_restored(root, get_run_logger().info) if overrides and not keep_overrides
                   else contextlib.nullcontext())
        pull = _prepare(project, root, pull)  # before params.yaml is rewritten: git pull needs it clean
        with restore:
            check_params(project, str(root), overrides)
            outcomes = _stages(project, root, STAGES, retries, delay, pull)
            return _finish(project, root, outcomes, push)


@flow(name="nlp-retrain", flow_run_name="retrain-{project}")
def retrain(project: str = "classification", checkout: str | None = None, force: bool = False,
            retries: int | None = None, retry_delay_seconds: float | None = None, push: bool = True,
            lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS, pull: bool = True):
    """Scheduled retraining: re-ingest the source, and run the rest of the pipeline only if the data
    or the params differ from those the champion was trained on (or ``force``)."""
    root = _root(checkout, project)
    retries, delay = _retry_settings(retries, retry_delay_seconds)
    with _lock(root, lock_timeout_seconds):
        pull = _prepare(project, root, pull)
        check_params(project, str(root))
        outcomes = _stages(project, root, STAGES[:STAGES.index("ingest") + 1], retries, delay, pull)
        verdict = ({"changed": True, "reasons": ["forced (force=true)"]} if force
                   else check_lineage(project, str(root)))
        if not verdict["changed"]:
            note = (f"Nothing changed since champion version {verdict['champion_version']} of "
                    f"{verdict['registered_model']!r} was trained (data {verdict['current']['data.raw.sha256'][:12]}, "
                    f"params {verdict['current']['params.sha256'][:12]}); not retraining.")
            create_markdown_artifact(key=artifact_key(project, "retrain-check"), markdown=f"# {project}: retraining\n\n{note}\n",
                                     description=note)
            get_run_logger().info(note)
            return Completed(name="Skipped", message=note, data={"project": project, "retrained": False, **verdict})
        outcomes += _stages(project, root, STAGES[STAGES.index("ingest") + 1:], retries, delay, pull)
        return {**_finish(project, root, outcomes, push), "retrained": True, "reasons": verdict["reasons"]}
