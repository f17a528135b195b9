"""The registry rule: every export is `candidate`; `champion` moves only to a version at least as good
on the same test data, never on a failed update, and two exports at once leave it on the better."""

from __future__ import annotations

import multiprocessing
import os

import mlflow
import pytest

from pipelines.tracking import registry, runs as tracking
from pipelines.config import parse_params
from pipelines.core.errors import ConfigError, TrackingError


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [1] * len(model_input)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("PIPELINES_ROOT", str(tmp_path))
    return tmp_path


PARAMS = parse_params({"projects": {"classification": {"task": "classification"}}})


def export(score: float, test_hash: str = "h1", score_champion=None, unloadable: str = "keep", params=None,
           compare=None, promote: str = "not_worse") -> dict:
    params = params or PARAMS
    with tracking.run(params, "classification", run_name="t") as run_id:
        pass
    return registry.register(
        params, "classification", run_id, python_model=Constant(), artifacts={}, code_paths=[],
        pip_requirements=["mlflow"], metric_name="accuracy", metric_value=score, test_data_hash=test_hash,
        description="test", version_tags={}, score_champion=score_champion, unloadable_champion=unloadable,
        compare=compare, promote=promote)


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


def paired(mine: list[int], theirs: list[int]):
    """A ``compare`` that pairs two versions' right (1) / wrong (0) answers on the same examples."""
    import numpy as np

    from pipelines.metrics.intervals import paired_comparison

    def scorer(values):
        values = np.asarray(values, dtype=float)
        return lambda idx: {"accuracy": float(values[idx].mean())}

    return lambda uri, how: paired_comparison(scorer(mine), scorer(theirs), len(mine), "accuracy", 500, seed=1)


def test_the_paired_test_decides_by_the_rule_chosen(store):
    champion = [1, 1, 1, 0] * 100  # 0.75 on 400 examples
    assert export(0.75)["champion_moved"]
    noise = champion.copy()
    noise[0] = 0  # one example worse: 0.7475, a drop no test could tell from chance
    for rule, moves in (("better", False), ("significantly_better", False), ("not_worse", True)):
        decided = export(0.7475, compare=paired(noise, champion), promote=rule)
        assert decided["champion_moved"] is moves, (rule, decided["reason"])
    assert "not significantly different from champion version" in decided["reason"]
    assert "export.promote: not_worse" in decided["reason"]
    held = aliases()["champion"]
    tags = mlflow.MlflowClient().get_model_version("classification", str(held)).tags
    assert tags["decision.rule"] == "not_worse" and tags["decision.paired"] == "no significant difference"
    assert float(tags["decision.p_value"]) > 0.05 and float(tags["decision.difference"]) < 0

    worse = [1, 0, 1, 0] * 100  # 0.50: worse beyond noise
    kept = export(0.50, compare=paired(worse, noise))
    assert not kept["champion_moved"] and "is worse than champion version" in kept["reason"], kept["reason"]
    better = [1] * 400
    moved = export(1.0, compare=paired(better, noise), promote="significantly_better")
    assert moved["champion_moved"] and "is better than champion version" in moved["reason"]


def test_other_test_data_is_rescored_not_compared_blindly(store):
    export(0.90, test_hash="old")
    kept = export(0.80, test_hash="new")  # no way to re-score: the champion stays
    assert not kept["champion_moved"] and "other test data" in kept["reason"]
    rescored = export(0.80, test_hash="new", score_champion=lambda uri: 0.75)
    assert rescored["champion_moved"] and rescored["previous_champion_score"] == 0.75


def test_a_tie_with_a_rescored_champion_is_a_tie_whatever_the_reports_rounded(store):
    export(0.30, test_hash="old")
    # both 8 of 29: the report keeps six decimals, the champion's re-scoring all of them
    tied = export(0.275862, test_hash="new", score_champion=lambda uri: 8 / 29)
    assert tied["champion_moved"] and ">= champion's 0.2759" in tied["reason"], tied["reason"]


def test_an_unloadable_champion_is_never_replaced_silently(store):
    export(0.90, test_hash="old")

    def gone(uri):
        raise registry.ChampionUnloadable("its artifacts cannot be downloaded: No such file")

    kept = export(0.95, test_hash="new", score_champion=gone)
    assert not kept["champion_moved"] and kept["champion_scored"] == "unloadable"
    assert "could not be loaded" in kept["reason"] and "No such file" in kept["reason"]
    assert "kept it (export.unloadable_champion: keep)" in kept["reason"]
    promoted = export(0.95, test_hash="new", score_champion=gone, unloadable="promote")
    assert promoted["champion_moved"] and "promoted this version" in promoted["reason"]
    assert aliases() == {"candidate": 3, "champion": 3}


def test_a_champion_without_its_export_folder_is_reported_unloadable(store, tmp_path):
    """What export's scorer meets when a version's files are gone or are not an exported model."""
    from pipelines.stages.export import ChampionExports

    export(0.90)
    champions = ChampionExports(tmp_path / "scratch")
    with pytest.raises(registry.ChampionUnloadable, match="has no export folder"):
        champions.folder("models:/classification/1")
    with pytest.raises(registry.ChampionUnloadable, match="cannot be downloaded"):
        champions.folder("models:/classification/7")


def test_the_registry_remembers_every_move_and_why(store):
    export(0.70)
    export(0.60)
    export(0.80, test_hash="new", score_champion=lambda uri: 0.65)
    client = mlflow.MlflowClient()
    v3 = client.get_model_version("classification", "3").tags
    assert v3["decision"] == "moved" and v3["decision.champion_score"] == "0.65"
    assert v3["decision.champion_scored"] == "rescored" and v3["decision.compared_with_version"] == "1"
    assert "re-scored on this test data" in v3["decision.reason"]
    assert client.get_model_version("classification", "2").tags["decision"] == "kept"
    moves = [(e["alias"], e["version"], e["previous"]) for e in registry.events(client, "classification")]
    assert moves == [("candidate", 1, None), ("champion", 1, None), ("candidate", 2, 1), ("candidate", 3, 2),
                     ("champion", 3, 1)]

    found = registry.history(PARAMS, "classification")
    by_version = {row["version"]: row for row in found["versions"]}
    assert by_version[1]["periods"]["champion"][0]["until"] is not None  # it held champion until version 3
    assert by_version[3]["aliases"] == ["candidate", "champion"]
    assert by_version[3]["periods"]["champion"][0]["until"] is None
    text = registry.format_history(found)
    assert "version 2: -, accuracy 0.6000, test data h1" in text and "accuracy 0.8000 >= champion's 0.6500" in text

    # By hand: a rollback returns champion to the version before, a promotion names its version,
    # and both are recorded with the user's reason.
    back = registry.rollback(PARAMS, "classification", "version 3 misbehaves in production")
    assert back["champion_version"] == 1 and back["previous_champion"] == 3
    assert aliases()["champion"] == 1
    last = registry.events(client, "classification")[-1]
    assert last["reason"] == "rollback: version 3 misbehaves in production" and last["by"] != "export"
    registry.promote(PARAMS, "classification", 2, "A/B test winner")
    assert aliases()["champion"] == 2
    # rollbacks undo moves one at a time (2 -> 1), and there is no champion before the first
    assert registry.rollback(PARAMS, "classification", "2 is worse")["champion_version"] == 1
    with pytest.raises(TrackingError, match="no champion before version 1"):
        registry.rollback(PARAMS, "classification", "and again")
    registry.promote(PARAMS, "classification", 2, "A/B test winner after all")
    with pytest.raises(ConfigError, match="has no version 9; its versions are 1, 2, 3"):
        registry.promote(PARAMS, "classification", 9, "typo")
    with pytest.raises(TrackingError, match="--reason"):
        registry.promote(PARAMS, "classification", 3, " ")
    assert aliases()["champion"] == 2


def test_registry_command_prints_the_history_and_refuses_what_it_cannot_do(store, tmp_path):
    import subprocess
    import sys

    export(0.70)
    params = tmp_path / "params.yaml"
    params.write_text("projects:\n  classification:\n    task: classification\n")
    env = {**os.environ, "PIPELINES_ROOT": str(store)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "pipelines", "registry", *args, "--params", str(params)],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)

    shown = cli("classification")
    assert shown.returncode == 0, shown.stderr
    assert "version 1: -, accuracy 0.7000" in shown.stdout and "[candidate, champion]" in shown.stdout
    missing = cli("classification", "promote", "4", "--reason", "x")
    assert missing.returncode == 2 and "has no version 4" in missing.stderr and "Traceback" not in missing.stderr
    for version in ("0", "-1", str(2**70)):  # usage errors, found before the registry is reached
        wrong = cli("classification", "promote", version, "--reason", "x")
        assert wrong.returncode == 2 and "registry versions count from 1" in wrong.stderr, (version, wrong.stderr)
    for reason in ((), ("--reason", ""), ("--reason", "  ")):
        bare = cli("classification", "promote", "1", *reason)
        assert bare.returncode == 2 and "promote needs --reason TEXT" in bare.stderr, bare.stderr
    typo = cli("clasification")
    assert typo.returncode == 2 and "did you mean 'classification'" in typo.stderr
    nothing = cli("classification", "rollback", "--reason", "x")
    assert nothing.returncode == 4 and "no champion before version 1" in nothing.stderr


def test_a_copied_project_reads_and_writes_its_own_store(tmp_path, monkeypatch):
    """The default store (mlflow.db and mlruns/ in the project) travels with the project folder."""
    import shutil

    original = tmp_path / "original"
    original.mkdir()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PIPELINES_ROOT", str(original))
    export(0.70)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    shutil.move(original, tmp_path / "moved-away")  # nothing may still point at it
    monkeypatch.setenv("PIPELINES_ROOT", str(copy))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri sets it
    tracking.configure()
    model = mlflow.pyfunc.load_model("models:/classification@champion")
    assert list(model.predict(["a", "b"])) == [1, 1]
    export(0.80)
    client = mlflow.MlflowClient()
    for version in ("1", "2"):
        run = client.get_run(client.get_model_version("classification", version).run_id)
        assert run.info.artifact_uri.startswith(f"file://{copy.resolve()}/mlruns/"), run.info.artifact_uri
    assert not original.exists(), "the copy wrote into the original's folder"
    assert tracking.relocate(copy / "mlflow.db") == [], "a store where it was made is left alone"


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
    folder = registry.lock_dir()
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
        registry.lock_dir()


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

    from pipelines.core.io import _host_tag, atomic_dir

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
        folder = registry.lock_dir()
    finally:
        os.umask(old)
    for part in (folder, folder.parent):
        assert stat.S_IMODE(part.stat().st_mode) == 0o700, part
    # A runtime folder that is not this user's alone is passed over, not refused.
    shared = tmp_path / "shared-runtime"
    shared.mkdir(mode=0o777)
    os.chmod(shared, 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    assert registry.lock_dir() == folder


# --------------------------------------------------------------------------- machines sharing a server
@pytest.fixture(scope="module")
def server(mlflow_server):
    return mlflow_server


@pytest.fixture
def shared(server, tmp_path, monkeypatch):
    """This process as one machine of several that share the server: its own lock folder, and a
    registered model of its own (the server outlives a test). Yields (registered name, params)."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("PIPELINES_ROOT", str(tmp_path))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    params = shared_params(tmp_path.name)
    return tracking.registered_name(params, "classification"), params


def shared_params(test: str):
    prefix = "".join(c for c in test if c.isalnum())[-40:]
    return parse_params({"tracking": {"experiment_prefix": prefix, "registered_model_prefix": f"{prefix}-"},
                         "projects": {"classification": {"task": "classification"}}})


def _other_machine_moves_champion(monkeypatch, name: str, score: float) -> None:
    """While this export waits to re-read the alias, another machine's export of ``score`` moves it."""
    real_sleep = registry.time.sleep
    done = []

    def sleep(seconds):
        if not done:
            done.append(True)
            client = mlflow.MlflowClient()
            mine = client.get_model_version_by_alias(name, "champion")
            other = client.create_model_version(name, mine.source, model_id=mine.source.rsplit("/", 1)[-1], tags={
                "metric_name": "accuracy", "metric_value": repr(score), "test_data_hash": "h1",
                "export_status": "complete"})
            registry.move_alias(client, name, "champion", other.version, int(mine.version), "other machine", "export")
        real_sleep(min(seconds, 0.1))

    monkeypatch.setattr(registry.time, "sleep", sleep)


def test_a_worse_version_moved_in_at_the_same_moment_is_corrected(shared, monkeypatch):
    name, params = shared
    export(0.50, params=params)
    _other_machine_moves_champion(monkeypatch, name, 0.80)
    mine = export(0.81, params=params)
    client = mlflow.MlflowClient()
    assert mine["champion_moved"] and int(client.get_model_version_by_alias(name, "champion").version) == mine["version"]
    moves = [e["version"] for e in registry.events(client, name) if e["alias"] == "champion"]
    assert moves == [1, 2, 3, 2], "champion: first export, this one, the other machine's, this one again"


def test_a_better_version_moved_in_at_the_same_moment_is_left_there(shared, monkeypatch):
    name, params = shared
    export(0.50, params=params)
    _other_machine_moves_champion(monkeypatch, name, 0.90)
    mine = export(0.81, params=params)
    assert not mine["champion_moved"] and "< champion's 0.9000" in mine["reason"]
    champion = mlflow.MlflowClient().get_model_version_by_alias(name, "champion")
    assert float(champion.tags["metric_value"]) == 0.90


def _export_on_machine(score, env, test, barrier):
    os.environ.update(env)
    barrier.wait()
    export(score, params=shared_params(test))


def test_two_machines_exporting_at_once_leave_the_better_champion(shared, server, tmp_path):
    """Two exports, each with its own lock folder (as on two machines), against one real server."""
    name, params = shared
    export(0.50, params=params)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = []
    for i, score in enumerate((0.80, 0.81)):
        runtime = tmp_path / f"machine{i}"
        runtime.mkdir(mode=0o700)
        env = {k: os.environ[k] for k in ("MLFLOW_TRACKING_URI", "PIPELINES_ROOT")}
        procs.append(ctx.Process(target=_export_on_machine, args=(score, {**env, "XDG_RUNTIME_DIR": str(runtime)},
                                                                  tmp_path.name, barrier)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    champion = mlflow.MlflowClient().get_model_version_by_alias(name, "champion")
    assert float(champion.tags["metric_value"]) == 0.81


def test_an_experiment_registers_a_version_but_never_moves_champion(store, monkeypatch):
    """A run inside `dvc exp run` (DVC sets DVC_EXP_NAME for its stages), or on a branch that is not a
    production branch, is a candidate only, however good; promote adopts it by hand."""
    import subprocess

    assert export(0.5)["champion_moved"]
    monkeypatch.setenv("DVC_EXP_NAME", "lucky-trial")
    result = registry.register(
        PARAMS, "classification", _run(), python_model=Constant(), artifacts={}, code_paths=[],
        pip_requirements=["mlflow"], metric_name="accuracy", metric_value=0.9, test_data_hash="h1",
        description="test", version_tags={}, production=registry.production_run(store))
    assert not result["champion_moved"] and result["champion_version"] == 1
    assert "experiment 'lucky-trial'" in result["reason"] and "promote" in result["reason"]
    tags = mlflow.MlflowClient().get_model_version("classification", "2").tags
    assert tags["experiment"] == "lucky-trial" and tags["decision"] == "kept"
    monkeypatch.delenv("DVC_EXP_NAME")

    for cmd in (["git", "init", "-q", "-b", "feature"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit",
                                                         "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(cmd, cwd=store, check=True, capture_output=True)
    allowed, why = registry.production_run(store)
    assert not allowed and "'feature'" in why and "PIPELINES_PRODUCTION_BRANCHES" in why
    monkeypatch.setenv("PIPELINES_PRODUCTION_BRANCHES", "main,feature")
    assert registry.production_run(store) == (True, "")
    monkeypatch.setenv("PIPELINES_PRODUCTION_BRANCHES", "*")
    assert registry.production_run(store)[0]


def _run() -> str:
    with tracking.run(PARAMS, "classification", run_name="t") as run_id:
        pass
    return run_id


def test_the_summary_line_says_when_the_registry_champion_moved_since_the_export(tmp_path):
    """After an experiment, a rollback or a promotion by hand the export's report is history; the
    summary checks it against the registry, the one truth serving, the demo and predict use."""
    import json

    from pipelines.cli.summary import project_line

    reports = tmp_path / "reports" / "classification"
    reports.mkdir(parents=True)
    (reports / "variants.json").write_text(json.dumps({
        "primary_metric": "accuracy", "greater_is_better": True, "examples": 300,
        "variants": {"full": {"accuracy": 0.84, "accuracy_ci95": [0.80, 0.88]}}}))
    (reports / "export.json").write_text(json.dumps({
        "registered": True, "version": 1, "variant": "full", "champion_moved": True, "champion_version": 1}))
    line = project_line("classification", tmp_path, champion_now=1)
    assert line.endswith("registered v1 (full), champion moved to it")
    assert "(95 % CI 0.8000–0.8800, 300 examples)" in line
    assert project_line("classification", tmp_path, champion_now=2).endswith("the registry's champion is now v2")
