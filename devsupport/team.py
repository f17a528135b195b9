"""A team's deployment on one machine, for the scale-out test and benchmark: an origin repository
whose DVC remote is a shared folder, an MLflow server, and clones with a `gpu` worker each, every
clone standing for a machine with one GPU slot."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .processes import MlflowServer, start_group, stop_group
from .workspace import make_repo_copy, pipeline_env

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})


@dataclass
class Team:
    base: Path
    origin: Path
    mlflow: MlflowServer
    clones: dict[str, tuple[Path, dict]] = field(default_factory=dict)
    workers: list[tuple[subprocess.Popen, Path]] = field(default_factory=list)

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-tail:]}" for _, log in self.workers)

    def clone(self, name: str) -> Path:
        path = self.base / name
        git(self.base, "clone", "-q", str(self.origin), str(path))
        return path


@contextlib.contextmanager
def team(base: Path, params: dict, machines, prefect_env: dict, **worker_env: str):
    """The origin (``params`` as its params.yaml, the shared DVC remote committed), an MLflow server,
    one clone and worker per machine name (``worker_env`` on top of each worker's environment) and
    the deployments of prefect.yaml; everything started is stopped at the end."""
    origin = make_repo_copy(base / "origin", params)
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "--default", "--force", "shared",
                    str(base / "dvc-shared")], cwd=origin, check=True, capture_output=True, env=pipeline_env(origin))
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "shared DVC remote")
    mlflow = MlflowServer(base)
    mlflow.start()
    crew = Team(base, origin, mlflow)
    try:
        for machine in machines:
            clone = crew.clone(f"clone-{machine}")
            crew.clones[machine] = (clone, pipeline_env(
                clone, **prefect_env, MLFLOW_TRACKING_URI=mlflow.url, PIPELINES_MACHINE=machine,
                PIPELINES_GPU_SLOTS="cpu", PREFECT_WORKER_QUERY_SECONDS="1", **worker_env))
        first_clone, first_env = next(iter(crew.clones.values()))
        proc = subprocess.run([sys.executable, "-m", "flows", "deploy", "--checkout", str(first_clone)],
                              cwd=first_clone, env=first_env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"flows deploy failed:\n{proc.stderr[-3000:]}")
        for machine, (clone, env) in crew.clones.items():
            log = base / f"worker-{machine}.log"
            crew.workers.append((start_group([sys.executable, "-m", "flows", "worker", "--checkout", str(clone)],
                                             env, log, clone), log))
        yield crew
    finally:
        for proc, _ in crew.workers:
            stop_group(proc)
        mlflow.stop()


def wait_for_flow_runs(ids, timeout: float) -> list:
    """The flow runs, once every one is in a final state (or ``timeout`` seconds have passed)."""
    import time

    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = [client.read_flow_run(i) for i in ids]
            if all(r.state.is_final() for r in runs) or time.monotonic() > deadline:
                return runs
            time.sleep(2)
