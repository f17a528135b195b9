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


PARAMS = parse_params({"projects": {"classification": {"task": "classification"}}})


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


def test_the_registry_lock_never_follows_a_planted_link(store, tmp_path, monkeypatch):
    """A lock in a folder others can write could be a link to someone's file: opening it for writing
    truncated that file. Locks live in a folder only this user can write, opened without following links."""
    import stat
    import tempfile

    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    # A lock file in a shared folder of /tmp, where anyone can plant a link.
    (shared / "nlp-pipelines-locks").mkdir()
    (shared / "nlp-pipelines-locks" / "classification.lock").symlink_to(victim)
    export(0.7)
    assert victim.read_text() == "precious"
    folder = tracking.lock_dir()
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0 and folder.stat().st_uid == os.getuid()
    # A link planted in the lock folder itself is refused, not followed.
    (folder / "classification.lock").unlink()
    (folder / "classification.lock").symlink_to(victim)
    with pytest.raises(TrackingError, match="registry lock"):
        export(0.8)
    assert victim.read_text() == "precious"


def test_a_lock_folder_others_can_write_is_refused(store, tmp_path, monkeypatch):
    planted = tmp_path / "runtime"
    (planted / "nlp-pipelines-locks").mkdir(parents=True)
    os.chmod(planted / "nlp-pipelines-locks", 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(planted))
    with pytest.raises(TrackingError, match="writable by others"):
        tracking.lock_dir()


def test_a_version_left_by_a_killed_export_is_marked_and_never_champion(store, monkeypatch):
    export(0.70)
    from mlflow import MlflowClient

    real = MlflowClient.set_registered_model_alias

    def killed(self, name, alias, version):  # the process dies right after the version exists
        raise SystemExit("killed")

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", killed)
    with pytest.raises(SystemExit):
        export(0.99)
    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", real)
    client = mlflow.MlflowClient()
    assert client.get_model_version("classification", "2").tags["export_status"] == "incomplete"
    export(0.60)
    left = client.get_model_version("classification", "2")
    assert left.tags["export_status"] == "abandoned" and left.description.startswith("[abandoned:")
    assert left.description.endswith("test"), "the export's own description is kept after the note"
    assert client.get_model_version("classification", "3").tags["export_status"] == "complete"
    assert client.get_model_version("classification", "1").tags["export_status"] == "complete"
    assert aliases() == {"candidate": 3, "champion": 1}
    # A version registered by hand, without the pipeline's tags, is left alone.
    manual = client.create_model_version("classification", client.get_model_version("classification", "1").source)
    export(0.50)
    assert "export_status" not in client.get_model_version("classification", manual.version).tags


def test_temporary_outputs_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    import subprocess
    import sys

    from pipelines.io import _host_tag, atomic_dir

    target = tmp_path / "models" / "export"
    target.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    leftover = target.parent / f".export.tmp-{dead}.{_host_tag()}-abc123"
    (leftover / "hf").mkdir(parents=True)
    (leftover / "hf" / "model.safetensors").write_bytes(b"0" * 1000)
    unnamed = target.parent / ".export.tmp-k2j4h"  # a temporary that names no writer
    unnamed.mkdir()
    live = target.parent / f".export.tmp-{os.getpid()}.{_host_tag()}-busy"
    live.mkdir()
    elsewhere = target.parent / f".export.tmp-{dead}.0123abcd-other"  # a writer this machine cannot see
    elsewhere.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "export.json").write_text("{}")
    assert (target / "export.json").exists()
    assert not leftover.exists() and not unnamed.exists()
    assert live.exists(), "a live process's temporary output must be left alone"
    assert elsewhere.exists(), "another machine's or container's writer cannot be checked, so it is kept"


def test_the_lock_folder_is_private_whatever_the_umask(tmp_path, monkeypatch):
    import stat
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    old = os.umask(0o002)
    try:
        folder = tracking.lock_dir()
    finally:
        os.umask(old)
    for part in (folder, folder.parent):
        assert stat.S_IMODE(part.stat().st_mode) == 0o700, part
    # A runtime folder that is not this user's alone is passed over, not refused.
    shared = tmp_path / "shared-runtime"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    assert tracking.lock_dir() == folder
