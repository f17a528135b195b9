"""The registry rule: every export is `candidate`; `champion` moves only to a version at least as good
on the same test data, never on a failed update, and two exports at once leave it on the better."""

from __future__ import annotations

import multiprocessing
import os

import mlflow
import pytest

from pipelines import tracking
from pipelines.config import parse_params
from pipelines.errors import TrackingError


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [1] * len(model_input)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("PIPELINES_ROOT", str(tmp_path))
    return tmp_path


PARAMS = parse_params({"classification": {}})


def export(score: float, test_hash: str = "h1", score_champion=None) -> dict:
    with tracking.run(PARAMS, "classification", run_name="t") as run_id:
        pass
    return tracking.log_and_register(
        PARAMS, "classification", run_id, python_model=Constant(), artifacts={}, code_paths=[],
        pip_requirements=["mlflow"], metric_name="accuracy", metric_value=score, test_data_hash=test_hash,
        description="test", version_tags={}, score_champion=score_champion)


def aliases():
    return {k: int(v) for k, v in mlflow.MlflowClient().get_registered_model("classification").aliases.items()}


def test_champion_moves_only_when_at_least_as_good(store):
    assert export(0.70)["champion_moved"]
    worse = export(0.60)
    assert not worse["champion_moved"] and "< champion's" in worse["reason"]
    assert aliases() == {"candidate": 2, "champion": 1}
    tie = export(0.70)
    assert tie["champion_moved"]
    assert aliases() == {"candidate": 3, "champion": 3}


def test_other_test_data_is_rescored_not_compared_blindly(store):
    export(0.90, test_hash="old")
    kept = export(0.80, test_hash="new")  # no way to re-score: the champion stays
    assert not kept["champion_moved"] and "other test data" in kept["reason"]
    rescored = export(0.80, test_hash="new", score_champion=lambda uri: 0.75)
    assert rescored["champion_moved"] and rescored["previous_champion_score"] == 0.75


def test_failed_registry_update_keeps_the_champion(store, monkeypatch):
    export(0.70)
    from mlflow import MlflowClient

    real = MlflowClient.set_registered_model_alias

    def fail_on_champion(self, name, alias, version):
        if alias == "champion":
            raise mlflow.exceptions.MlflowException("registry unavailable")
        return real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", fail_on_champion)
    with pytest.raises(mlflow.exceptions.MlflowException):
        export(0.99)
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", real)
    assert aliases()["champion"] == 1


def _concurrent(score, uri, root, barrier):
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["PIPELINES_ROOT"] = root
    barrier.wait()
    export(score)


def test_two_exports_at_once_leave_the_better_champion(store):
    export(0.50)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    uri = os.environ["MLFLOW_TRACKING_URI"]
    procs = [ctx.Process(target=_concurrent, args=(s, uri, str(store), barrier)) for s in (0.81, 0.80)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    client = mlflow.MlflowClient()
    champion = client.get_model_version_by_alias("classification", "champion")
    assert float(champion.tags["metric_value"]) == 0.81


def test_unreachable_server_is_named_before_any_work(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    uri = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(TrackingError, match=uri):
        tracking.configure()
