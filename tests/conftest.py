"""Shared fixtures. Every test runs offline: the hub is never contacted, telemetry is off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PIPELINES_PROGRESS", "0")
# The suite runs one worker per core (make test), and each worker's stages run in subprocesses that
# inherit this: one thread each, so two workers on two cores do not wait on each other's threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

# How `make test` shares the test files among its workers (pytest-xdist, --dist loadgroup): each
# file is one unit, so its tests run in order and share its fixtures; the files that read the
# session's tiny classification repro form one unit, so it is built once. Units are handed out in
# this order, the longest first, so that no worker is left running a long file alone at the end.
SHARED_REPRO = ("test_end_to_end.py", "test_serving.py")
LONGEST_FIRST = ("classification-repro", "test_seq2seq_end_to_end.py", "test_flows.py", "test_resume.py",
                 "test_dvc_declarations.py", "test_tracking_faults.py", "test_seq2seq.py", "test_compression.py")


def _unit(item) -> str:
    name = Path(str(item.fspath)).name
    return "classification-repro" if name in SHARED_REPRO else name


def pytest_collection_modifyitems(config, items):
    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_unit(item), len(rank)))  # stable: a file keeps its order
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_unit(item)))

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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
