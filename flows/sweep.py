"""Sweep trials on a work pool: with ``python -m pipelines sweep ... --pool gpu`` each trial is a
flow run of the ``sweep-trial`` deployment (prefect.yaml), which a worker runs in its own checkout
while it holds one of its machine's GPU slots (flows/gpu_slots.py); trials beyond the free slots
wait in Prefect's queue.

The sweep keeps its study and decides every trial where it was started. A trial's flow run:

1. pulls the worker's checkout and checks that it is at the sweep's commit (the trial trains what
   the sweep asked, from the params and code the team pushed);
2. runs ``dvc exp run --temp -n <name> -S ... finetune@<project>``, restoring unchanged upstream
   stages from the DVC remote (``--pull``), with the sweep's study and MLflow parent run in its
   environment, so each epoch's validation reaches the sweep's pruner and the trial's run is a child
   of the sweep's;
3. pushes the experiment (``dvc exp push``: its Git ref to the origin, its outputs and run cache to
   the DVC remote) and ends Completed, or Completed named ``Pruned`` when the pruner stopped it.

The sweep then pulls the experiment (``dvc exp pull``), so ``dvc exp show`` lists it and ``--apply
best`` applies it, and reads its validation as for a trial run here. The study storage and the MLflow
tracking URI must be reachable from the workers: a tracking server, and a database URL
(``--storage``) unless every worker runs on the sweep's machine.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from prefect import flow, get_run_logger
from prefect.states import Completed

from flows.checkout import check_project, checkout_lock, pull_from_origin
from flows.commands import run_logged, stage_env
from flows.dvc_runner import dvc_remote
from flows.errors import FlowError
from flows.gpu_slots import gpu_slot, machine_name, tag_flow_run_with_machine
from pipelines.core.errors import PipelineError
from pipelines.sweep.study import trial_command
from pipelines.sweep.trial import ENV_STORAGE, PRUNED_EXIT, PRUNED_MESSAGE

FLOW_NAME = "nlp-sweep-trial"
DEPLOYMENT_NAME = "sweep-trial"
DEPLOYMENT = f"{FLOW_NAME}/{DEPLOYMENT_NAME}"
# A trial's flow run waits this long for the checkout's lock before failing.
LOCK_TIMEOUT_SECONDS = 6 * 3600
# Seconds between two looks at a submitted trial's state, and how long the server may not answer.
POLL_SECONDS = 2.0
POLL_PATIENCE_SECONDS = 300.0


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def _local_sqlite_missing(storage: str) -> Path | None:
    """The study's SQLite file when the storage is one that does not exist on this machine."""
    if not storage.startswith("sqlite:///"):
        return None
    path = Path(storage.removeprefix("sqlite:///"))
    return None if path.is_file() else path


@flow(name=FLOW_NAME, flow_run_name="{experiment}")
def sweep_trial(project: str, experiment: str, overrides: list[str], commit: str, sweep_env: dict[str, str],
                git_remote: str = "origin", checkout: str | None = None,
                lock_timeout_seconds: float = LOCK_TIMEOUT_SECONDS):
    """One trial of a sweep in this worker's checkout (``checkout``: default, the working directory
    the deployment's pull step entered): ``overrides`` are ``dvc exp run -S`` values, ``commit`` the
    sweep's commit, ``sweep_env`` the study and MLflow settings the trial's finetune reports to."""
    from prefect.runtime import flow_run

    logger = get_run_logger()
    root = Path(checkout or os.getcwd()).resolve()
    check_project(root)
    missing = _local_sqlite_missing(sweep_env.get(ENV_STORAGE, ""))
    if missing is not None:
        raise FlowError(f"the sweep's study {missing} is not on {machine_name()}: start the sweep with --storage "
                        "and a database URL every worker reaches (e.g. postgresql://...)")
    tag_flow_run_with_machine()  # the sweep reports which machine ran the trial
    with checkout_lock(root, lock_timeout_seconds, owner=f"flow run {flow_run.id}",
                       on_wait=lambda holder: logger.info("waiting for the checkout lock (held by %s)", holder)):
        logger.info("%s", pull_from_origin(root))
        with at_commit(root, commit, git_remote, logger.info):
            check_project(root, project)  # in the sweep's params.yaml, which may add the project
            slot = _run_trial(root, project, experiment, overrides, sweep_env, logger)
            if slot is not None:
                _push_experiment(root, experiment, git_remote, logger)
        if slot is None:
            return Completed(name="Pruned", message=f"{experiment}: {PRUNED_MESSAGE}")
    return {"experiment": experiment, "machine": machine_name(), "slot": slot}


@contextlib.contextmanager
def at_commit(root: Path, commit: str, git_remote: str, log) -> Iterator[None]:
    """The checkout at the sweep's commit for the ``with`` block, then back where it was: the sweep
    may run from another branch, or from a commit its branch has since moved past."""
    head = _git(root, "rev-parse", "HEAD").stdout.strip()
    if head == commit:
        yield
        return
    branch = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD").stdout.strip() or head
    if _git(root, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        _git(root, "fetch", "--quiet", git_remote)
    moved = _git(root, "checkout", "--quiet", "--detach", commit)
    if moved.returncode != 0:
        raise FlowError(f"the checkout {root} cannot move to the sweep's commit {commit[:12]}: "
                        f"{(moved.stderr or moved.stdout).strip()[-1000:]}\npush the sweep's commit (git push), "
                        "and keep the worker's checkout free of local changes")
    log(f"trial at the sweep's commit {commit[:12]} (the checkout was at {head[:12]}, {branch})")
    try:
        yield
    finally:
        back = _git(root, "checkout", "--quiet", branch)
        if back.returncode != 0:
            log(f"could not put the checkout back on {branch}: {back.stderr.strip()}")


def _run_trial(root: Path, project: str, experiment: str, overrides: list[str], sweep_env: dict[str, str],
               logger) -> str | None:
    """``dvc exp run --temp`` of the trial on one GPU slot; the slot's name, or None when pruned."""
    # A trial run again after the sweep was stopped keeps its name; an experiment of that name left
    # here by its first run would make DVC refuse the name.
    subprocess.run([sys.executable, "-m", "dvc", "exp", "remove", experiment], cwd=root, env=stage_env(),
                   capture_output=True, text=True)
    # upstream stages another checkout ran come from the remote's run cache
    cmd = trial_command(experiment, overrides, project, pull=dvc_remote(root) is not None)
    with gpu_slot(on_wait=logger.info) as (slot, device_env):
        logger.info("trial %s on GPU slot %s: %s", experiment, slot, " ".join(overrides))
        env = stage_env({**device_env, **sweep_env})
        env.pop("PIPELINES_ROOT", None)  # the trial's stages work in DVC's temporary copy, not here
        rc, out, err = run_logged(cmd, root, logger.info, env)
    if rc == 0:
        return slot
    if PRUNED_MESSAGE in "\n".join(out + err):
        return None
    lines = [line for line in err + out if line.strip()]
    raise FlowError(f"trial {experiment} failed (exit code {rc}): "
                    + next((line for line in reversed(lines) if line.startswith("error:")), lines[-1] if lines else ""))


def _push_experiment(root: Path, experiment: str, git_remote: str, logger) -> None:
    """The experiment's Git ref to the origin and, with a DVC remote, its outputs and the run cache."""
    push = [sys.executable, "-m", "dvc", "exp", "push", "--force", git_remote, experiment]
    push.append("--run-cache" if dvc_remote(root) is not None else "--no-cache")
    rc, out, err = run_logged(push, root, logger.info, stage_env())
    if rc != 0:
        raise FlowError(f"dvc exp push {git_remote} {experiment} failed (exit code {rc}): " + "\n".join(err[-10:]))


class PoolTrials:
    """Runs each trial of a sweep as a flow run of the ``sweep-trial`` deployment on ``pool`` and
    brings its experiment back into the sweep's checkout."""

    def __init__(self, root: Path, project: str, pool: str, git_remote: str = "origin"):
        self.root, self.project, self.pool, self.git_remote = root, project, pool, git_remote
        self.where = f"the workers of pool {pool!r}"
        self.commit = ""
        self.stopping = threading.Event()
        self.pulling = threading.Lock()

    def check(self, storage: str, tracking_uri: str) -> None:
        """Everything a worker needs before the first trial is submitted, each problem with its fix."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        from flows.deploy import require_server

        try:
            require_server("sweep trials go to the workers of a work pool on a Prefect server")
        except FlowError as exc:
            raise PipelineError(str(exc)) from None
        if not tracking_uri.startswith(("http://", "https://")):
            raise PipelineError(f"--pool: the trials log their MLflow runs from the workers, which cannot reach "
                                f"{tracking_uri}; set MLFLOW_TRACKING_URI to the team's tracking server "
                                "(docs/scale-out.md)")
        if _git(self.root, "remote", "get-url", self.git_remote).returncode != 0:
            raise PipelineError(f"--pool: the checkout {self.root} has no Git remote {self.git_remote!r}, which "
                                "the workers pull from and push their trials to")
        dirty = _git(self.root, "status", "--porcelain", "--", "params.yaml", "dvc.yaml", "pipelines").stdout.strip()
        if dirty:
            raise PipelineError(f"--pool: the workers train from the origin's commit, and this checkout has "
                                f"changes they would not see:\n{dirty}\ncommit and push them first")
        self.commit = _git(self.root, "rev-parse", "HEAD").stdout.strip()
        if not _git(self.root, "branch", "-r", "--contains", self.commit).stdout.strip():
            raise PipelineError(f"--pool: commit {self.commit[:12]} is not on any branch of the remote; push it "
                                "(git push) so that the workers can pull it")
        with get_client(sync_client=True) as client:
            try:
                deployment = client.read_deployment_by_name(DEPLOYMENT)
            except ObjectNotFound:
                raise PipelineError(f"no deployment {DEPLOYMENT} on the Prefect server: run `python -m flows "
                                    "deploy` in a checkout") from None
        if deployment.work_pool_name != self.pool:
            raise PipelineError(f"deployment {DEPLOYMENT} runs on work pool {deployment.work_pool_name!r}, not "
                                f"{self.pool!r}: give --pool {deployment.work_pool_name} or change prefect.yaml")

    def stop(self) -> None:
        """Stop submitting, and cancel every trial's flow run that has not ended (the worker stops
        the trial's process); each waiting thread cancels its own run as it sees the event."""
        self.stopping.set()

    def _cancel(self, flow_run_id) -> None:
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelling

        # Not forced: Prefect's own rules then leave a run that has just ended as it ended, and
        # cancel one no worker has taken yet at once.
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_id, Cancelling(message="the sweep was interrupted"))

    def _wait(self, flow_run_id):
        """The flow run once it is final, or None when the sweep is stopping. A lost answer from the
        server is asked again for a few minutes: the trial goes on on its worker meanwhile."""
        from prefect.client.orchestration import get_client

        failures = 0
        with get_client(sync_client=True) as client:
            while True:
                try:
                    run = client.read_flow_run(flow_run_id)
                    failures = 0
                except Exception:
                    failures += 1
                    if failures * POLL_SECONDS > POLL_PATIENCE_SECONDS:
                        raise
                    run = None
                if run is not None and run.state is not None and run.state.is_final():
                    return run
                if self.stopping.wait(POLL_SECONDS):
                    return None

    def run(self, experiment: str, overrides: list[str], sweep_env: dict[str, str]) -> tuple[int, str]:
        """Submit the trial, wait for its flow run to end, and pull its experiment; returns an exit
        code and a text as a trial run here would (PRUNED_EXIT with PRUNED_MESSAGE when pruned)."""
        from prefect.deployments import run_deployment

        if self.stopping.is_set():
            return 130, f"error: the sweep was interrupted before trial {experiment} was submitted"
        try:
            submitted = run_deployment(DEPLOYMENT, timeout=0, tags=["sweep", self.project], parameters={
                "project": self.project, "experiment": experiment, "overrides": overrides, "commit": self.commit,
                "sweep_env": sweep_env, "git_remote": self.git_remote})
        except Exception as exc:  # the server went away: this trial fails, the sweep goes on
            return 1, f"error: submitting trial {experiment} to {DEPLOYMENT} failed: {type(exc).__name__}: {exc}"
        try:
            run = self._wait(submitted.id)
        except Exception as exc:
            return 1, (f"error: following flow run {submitted.id} of trial {experiment} failed ({type(exc).__name__}: "
                       f"{exc}); it may still run on its worker")
        if run is None:
            self._cancel(submitted.id)
            return 130, f"error: the sweep was interrupted; flow run {submitted.id} of trial {experiment} was cancelled"
        machine = next((t.split(":", 1)[1] for t in run.tags if t.startswith("machine:")), "a worker")
        where = f"flow run {run.name} ({run.id}) on {machine}"
        if run.state.is_completed() and run.state.name == "Pruned":
            return PRUNED_EXIT, f"{PRUNED_MESSAGE} ({where})"
        if not run.state.is_completed():
            return 1, f"error: {where} ended {run.state.name}: {run.state.message or ''}"
        with self.pulling:  # one DVC command at a time in the sweep's checkout (DVC's lock gives up in seconds)
            proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "pull", "--force", self.git_remote, experiment],
                                  cwd=self.root, env=stage_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            return proc.returncode, f"error: dvc exp pull {self.git_remote} {experiment} failed after {where}:\n" \
                                    f"{proc.stdout[-1500:]}{proc.stderr[-1500:]}"
        return 0, where
