"""Shared fixtures. Every test runs offline: the hub is never contacted, telemetry is off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.core import settings

# The product's own defaults, the hub never contacted, and no progress bars in test logs.
settings.apply_environment_defaults(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_EVALUATE_OFFLINE="1",
                                    TRANSFORMERS_OFFLINE="1", PIPELINES_PROGRESS="0")
# The suite runs one worker per core (make test), and each worker's stages run in subprocesses that
# inherit this: one thread each, so two workers on two cores do not wait on each other's threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def preloaded_python(tmp_path_factory):
    """Each `python -m pipelines ...` that the pipeline's environment starts (DVC's stages, flows,
    sweeps) runs as a fork of one server that has imported torch, transformers and MLflow already
    (devsupport/preload.py): the suite starts hundreds, each of which would spend about ten seconds
    of CPU on those imports. Until the server has imported them (some seconds), and wherever
    PIPELINES_TEST_PRELOAD=0, they run as plain processes."""
    if os.environ.get("PIPELINES_TEST_PRELOAD", "1") == "0":
        yield None
        return
    from devsupport.preload import Preloader
    from devsupport.workspace import pipeline_env

    workdir = tmp_path_factory.mktemp("preload")
    server = Preloader(workdir)
    server.start(pipeline_env(workdir))  # returns at once
    with pytest.MonkeyPatch.context() as mp:
        for key, value in server.env().items():
            mp.setenv(key, value)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def classification_repo(tmp_path_factory) -> Path:
    """One `dvc repro` of the tiny classification project, shared by the tests that read its outputs."""
    from tests.tiny import dvc, make_repo_copy, tiny_params

    root = make_repo_copy(tmp_path_factory.mktemp("e2e-cls"), tiny_params(["classification"]))
    dvc(root, "repro")
    return root


@pytest.fixture(scope="session")
def classification_outputs(tmp_path_factory) -> Path:
    """The tiny classification project's outputs, made by its stages in this process (no DVC): for
    the tests of what a trained, exported and registered model does."""
    from tests.tiny import make_repo_copy, run_stages, tiny_params

    root = make_repo_copy(tmp_path_factory.mktemp("cls-outputs"), tiny_params(["classification"]))
    run_stages(root)
    return root


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 with its own store, shared by the tests of one module."""
    from tests.tiny import MlflowServer

    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """A real `prefect server` on 127.0.0.1 with its own PREFECT_HOME, which this process (and what it
    starts with ``env``) talks to; shared by the tests of one module."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from tests.tiny import prefect_server

    home = tmp_path_factory.mktemp("prefect-home")
    with prefect_server(home) as env, pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_HOME: str(home)}):
            yield {"url": env["PREFECT_API_URL"], "home": home, "env": env}
