"""Prefect flows against a real local Prefect server and a `gpu` process worker, on a tiny
classification checkout; plus what the flows do in the checkout (overrides, lock, stage errors, summary).

The server, the worker and the checkout are shared by the tests of this module (started once,
stopped at the end, each in its own process group), and the tests run in file order. They cover
deployment, a deployed run end to end on the worker, up-to-date stages, a retried stage, the
retraining that finds nothing changed (against the champion the deployed run trained) and failures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from flows.checkout import checkout_lock
from flows.dvc_runner import StageOutcome, repro_stage
from flows.errors import FlowError, OverrideError, StageFailed
from flows.overrides import apply_overrides, parse_overrides
from flows.run_summary import run_summary, summary_markdown
from tests import tiny
from tests.tiny import (REPO, free_port, int8_only, make_repo_copy, pipeline_env, start_group,
                        stop_group, tiny_params)

PROJECT = "classification"
DEPLOYMENT = "nlp-retrain/retrain-classification"
STAGES = ("configure", "ingest", "clean", "split", "tokenize", "pretrain", "finetune", "compress", "evaluate",
          "export")


# --------------------------------------------------------------------------- helpers
def write_reviews(path: Path, n: int = 240, extra: int = 0) -> Path:
    """Short labelled reviews, deterministic and all distinct (clean drops duplicates)."""
    pos = ["good", "great", "lovely", "superb", "moving", "sharp", "warm", "clever"]
    neg = ["bad", "awful", "dull", "poor", "weak", "flat", "tired", "clumsy"]
    things = ["film", "plot", "cast", "score", "script", "ending", "pacing", "camera work", "dialogue", "lead"]
    rows = []
    for i in range(n + extra):
        label = i % 2
        words = pos if label else neg
        rows.append({"text": f"the {things[i % len(things)]} was {words[i % len(words)]} and "
                             f"{words[(i // 7) % len(words)]}, take {i}", "label": label})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_checkout(base: Path, source: Path) -> Path:
    """A tiny classification checkout reading ``source``; flows/ and prefect.yaml are copied too,
    so the copy works before they are committed."""
    # int8 only and no ONNX export: these tests are about orchestration and the registry, and the
    # other variants and the export's ONNX graph are the slowest parts of compress and export
    params = int8_only(tiny_params([PROJECT], classification__data__source=str(source),
                                   classification__export__onnx=False))
    root = make_repo_copy(base, params)
    shutil.copytree(REPO / "flows", root / "flows", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "prefect.yaml", root / "prefect.yaml")
    return root


def registry(root: Path) -> dict:
    """Aliases and versions of the project's registered model."""
    found = tiny.registry(root, PROJECT)
    return {"aliases": found["aliases"], "versions": found["versions"]}


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("flows")
    return make_checkout(base / "checkout", write_reviews(base / "reviews.jsonl"))


@pytest.fixture(scope="module")
def worker(prefect_api, checkout):
    """The `gpu` pool (type process) and a worker polling it every second, with the checkout's env."""
    env = pipeline_env(checkout, **prefect_api["env"], PREFECT_WORKER_QUERY_SECONDS="1",
                       PREFECT_SERVER_ANALYTICS_ENABLED="false")
    prefect = str(Path(sys.executable).parent / "prefect")
    subprocess.run([prefect, "work-pool", "create", "gpu", "--type", "process"], env=env, check=True,
                   capture_output=True, timeout=120)
    proc = start_group([prefect, "worker", "start", "--pool", "gpu", "--name", "test-worker"], env,
                       prefect_api["home"] / "worker.log", prefect_api["home"])
    yield {"env": env, "log": prefect_api["home"] / "worker.log"}
    stop_group(proc)


@pytest.fixture(scope="module")
def deployed(worker, checkout):
    """`python -m flows deploy` from the checkout: the deployments of prefect.yaml."""
    proc = subprocess.run([sys.executable, "-m", "flows", "deploy", "--checkout", str(checkout)], cwd=checkout,
                          env=worker["env"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def task_runs(flow_run_id, timeout: float = 30) -> dict:
    """The task runs of a flow run by name, once all are in a final state (task states reach the
    server as events, a moment after the flow has finished)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    while True:
        with client() as c:
            runs = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        if all(r.state and r.state.is_final() for r in runs) or time.monotonic() > deadline:
            return {r.name: r for r in runs}
        time.sleep(0.5)


def artifact_markdown(flow_run_id, key: str) -> str:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

    with client() as c:
        found = c.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                 flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    assert found, f"no artifact {key!r} on flow run {flow_run_id}"
    return found[0].data


def lineage(root: Path) -> dict:
    """`python -m flows.lineage`: the checkout's data and params hashes against the champion's."""
    proc = subprocess.run([sys.executable, "-m", "flows.lineage", PROJECT], cwd=root, env=pipeline_env(root),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def seed_champion(root: Path) -> None:
    """Register a stand-in version as `champion`, tagged with the lineage of the checkout's current
    source data and params: what a finished training leaves behind, without the training."""
    for stage in ("configure", "ingest"):
        repro_stage(root, stage, PROJECT, log=lambda line: None, env=pipeline_env(root))
    current = lineage(root)["current"]
    code = ("import json, sys, mlflow; c = mlflow.MlflowClient();"
            f"c.create_registered_model({PROJECT!r});"
            f"mv = c.create_model_version({PROJECT!r}, source={str(root)!r}, tags=json.loads(sys.argv[1]));"
            f"c.set_registered_model_alias({PROJECT!r}, 'champion', mv.version)")
    subprocess.run([sys.executable, "-c", code, json.dumps(current)], cwd=root, env=pipeline_env(root), check=True,
                   capture_output=True, timeout=120)


def flows_cli(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m flows ...` in its own process, as a user runs it (against the test server)."""
    return subprocess.run([sys.executable, "-m", "flows", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def run_deployed(worker, **parameters):
    from prefect.deployments import run_deployment

    flow_run = run_deployment(DEPLOYMENT, parameters=parameters or None, timeout=900, poll_interval=1)
    assert flow_run.state.is_final(), f"flow run still {flow_run.state.name}:\n{worker['log'].read_text()[-4000:]}"
    return flow_run


# --------------------------------------------------------------------------- checkout helpers (no server)
def test_overrides_are_typed_validated_and_keep_comments(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    assert parse_overrides(["projects.classification.finetune.epochs=2", "tracking.register_model=false",
                               "projects.classification.data.source=builtin"]) == {
        "projects.classification.finetune.epochs": 2, "tracking.register_model": False, "projects.classification.data.source": "builtin"}
    with pytest.raises(OverrideError, match="key=value"):
        parse_overrides(["projects.classification.finetune.epochs"])

    before = (tmp_path / "params.yaml").read_text()
    with pytest.raises(OverrideError) as err:
        apply_overrides(tmp_path, PROJECT, {"projects.classification.finetune.learnig_rate": 0.1,
                                               "projects.classification.finetune.batch_size": 0})
    # every problem at once, each naming its key; params.yaml left as it was
    assert "projects.classification.finetune.learnig_rate" in str(err.value) and "did you mean" in str(err.value)
    assert "projects.classification.finetune.batch_size" in str(err.value)
    assert (tmp_path / "params.yaml").read_text() == before
    with pytest.raises(OverrideError, match="outside this run's blocks"):
        apply_overrides(tmp_path, PROJECT, {"projects.translation.finetune.epochs": 1})

    changed = apply_overrides(tmp_path, PROJECT, {"projects.classification.finetune.epochs": 2,
                                                     "projects.classification.finetune.precision": "fp32"})
    after = (tmp_path / "params.yaml").read_text()
    assert changed == ["projects.classification.finetune.epochs", "projects.classification.finetune.precision"]
    assert yaml.safe_load(after)["projects"]["classification"]["finetune"]["epochs"] == 2
    assert "# every random choice" in after  # comments survive, as with `dvc exp run -S`
    assert not list(tmp_path.glob(".params.flow-*"))


def test_second_flow_run_waits_for_the_checkout_lock(tmp_path):
    held, release = threading.Event(), threading.Event()

    def first():
        with checkout_lock(tmp_path, timeout=5, owner="flow run A"):
            held.set()
            release.wait(10)

    t = threading.Thread(target=first)
    t.start()
    held.wait(5)
    waits = []
    try:
        with pytest.raises(FlowError, match="flow run A"):
            with checkout_lock(tmp_path, timeout=1.5, owner="flow run B", on_wait=waits.append):
                pass
        assert waits and "flow run A" in waits[0]
    finally:
        release.set()
        t.join()
    with checkout_lock(tmp_path, timeout=1, owner="flow run B"):  # free again once A is done
        pass


def test_only_transient_stage_failures_are_retried():
    assert StageFailed("finetune@classification", 4, "MLflow server does not answer").transient
    assert StageFailed("train@classification", -9, "killed").transient
    assert not StageFailed("ingest@classification", 3, "not valid JSON").transient
    assert not StageFailed("clean@classification", 2, "params.yaml has 1 problem").transient


def test_retry_condition_of_a_stage_follows_its_exit_code():
    """The condition Prefect asks before retrying, on the failed states a stage task ends in."""
    import asyncio

    from prefect.states import exception_to_failed_state

    from flows.pipeline import _is_transient

    def retried(exc: BaseException) -> bool:
        return _is_transient(None, None, asyncio.run(exception_to_failed_state(exc)))

    assert retried(StageFailed("finetune@classification", 4, "MLflow tracking server does not answer"))
    assert retried(StageFailed("finetune@classification", -9, "killed"))
    assert retried(StageFailed("finetune@classification", 1, "CUDA out of memory"))
    assert retried(OSError("the worker lost its disk for a moment"))
    assert not retried(StageFailed("clean@classification", 2, "params.yaml has 1 problem"))
    assert not retried(StageFailed("ingest@classification", 3, "not valid JSON"))
    # a model failing finetune.min_source_gain: the retry resumes the same checkpoints and fails again
    assert not retried(StageFailed("finetune@classification", 5, "the fine-tuned model ignores its source"))
    assert not retried(FlowError("unknown stage 'trian'"))


def _local_mode_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "PREFECT_SERVER_EPHEMERAL"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def test_flows_entry_point_gives_the_temporary_server_time_before_prefect_reads_it(tmp_path):
    from flows.__main__ import EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    assert EPHEMERAL_STARTUP_TIMEOUT_SECONDS > 20  # Prefect's own default, too short on a loaded machine
    # Prefect reads its settings when first imported: the entry point must set this before that.
    code = ("import sys; import flows.__main__ as m; assert 'prefect' not in sys.modules;"
            "m.set_environment_defaults();"
            "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as s; print(s.value())")
    for extra, want in (({}, EPHEMERAL_STARTUP_TIMEOUT_SECONDS),
                        ({"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "45"}, 45)):  # the user's value wins
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_local_mode_env(tmp_path, **extra),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert int(proc.stdout.split()[-1]) == want


def test_local_mode_reports_a_temporary_server_that_does_not_start(tmp_path):
    # No server starts within a second (its imports alone take longer): the path a loaded machine takes.
    proc = flows_cli("run", PROJECT, "--checkout", str(tmp_path), cwd=REPO,
                     env=_local_mode_env(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="1"))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    error = proc.stderr[proc.stderr.rindex("error: "):]
    assert "temporary local server did not start within PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=1 s" in error
    assert "PREFECT_API_URL" in error


def test_a_misspelt_project_is_named_before_any_server_starts(tmp_path):
    proc = flows_cli("run", "clasification", "--checkout", str(REPO), cwd=REPO, env=_local_mode_env(tmp_path))
    assert proc.returncode == 2 and "did you mean 'classification'?" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "server" not in proc.stderr.lower()


def test_local_mode_runs_the_flow_on_the_temporary_server(tmp_path):
    # The server started up front is the one the flow uses: the flow runs, and fails on its own error.
    proc = flows_cli("run", PROJECT, "--checkout", str(tmp_path), cwd=REPO, env=_local_mode_env(tmp_path))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "is not a checkout of this repository" in proc.stderr[proc.stderr.rindex("error: "):]
    assert "Timed out" not in proc.stderr


def test_run_summary_reads_metrics_run_and_registry_from_the_reports(tmp_path):
    reports = tmp_path / "reports" / PROJECT
    reports.mkdir(parents=True)
    (reports / "evaluate.json").write_text(json.dumps({
        "examples": 24, "primary_metric": "accuracy", "int8_change": -0.01,
        "full": {"accuracy": 0.75, "macro_f1": 0.7}, "int8": {"accuracy": 0.74, "macro_f1": 0.69}}))
    (reports / "finetune.json").write_text(json.dumps({"mlflow_run_id": "abc123"}))
    (reports / "export.json").write_text(json.dumps({
        "registered": True, "registered_model": PROJECT, "version": 3, "variant": "int8", "champion_moved": False,
        "champion_version": 2, "reason": "accuracy 0.7400 < champion's 0.8000"}))
    outcomes = [StageOutcome(f"{s}@{PROJECT}", "skipped" if s == "clean" else "ran", 1.0) for s in STAGES]
    summary = run_summary(tmp_path, PROJECT, outcomes)
    assert summary["test_metrics"] == {"full": {"accuracy": 0.75, "macro_f1": 0.7},
                                       "int8": {"accuracy": 0.74, "macro_f1": 0.69}}
    assert summary["new_version"] and summary["version"] == 3 and not summary["champion_moved"]
    markdown = summary_markdown(summary)
    assert "| metric | full | int8 (exported) |" in markdown and "| **accuracy** | 0.7500 | 0.7400 |" in markdown
    assert "| clean | skipped | 1.0 |" in markdown and "`abc123`" in markdown
    assert "version **3**" in markdown and "stayed at version 2 (accuracy 0.7400 < champion's 0.8000)" in markdown


def test_prefect_yaml_declares_a_scheduled_gpu_deployment_per_project():
    from flows.deploy import load_deployments

    declared = load_deployments(REPO)
    retraining = [d for d in declared if d["name"].startswith("retrain-")]
    projects = yaml.safe_load((REPO / "params.yaml").read_text())["projects"]
    assert sorted(d["parameters"]["project"] for d in retraining) == sorted(projects)
    for d in retraining:
        assert d["work_pool"]["name"] == "gpu" and d["entrypoint"] == "flows/pipeline.py:retrain"
        assert d["schedules"] and all(len(s["cron"].split()) == 5 for s in d["schedules"])
    # a sweep's trials go to the same pool, submitted by the sweep, never on a schedule
    (trial,) = [d for d in declared if not d["name"].startswith("retrain-")]
    assert trial["name"] == "sweep-trial" and trial["entrypoint"] == "flows/sweep.py:sweep_trial"
    assert trial["work_pool"]["name"] == "gpu" and not trial.get("schedules")


# --------------------------------------------------------------------------- against a server and worker
def test_deployments_carry_the_configured_schedules(deployed, checkout):
    from prefect.exceptions import ObjectNotFound

    from flows.deploy import load_deployments

    declared = {d["name"]: d for d in load_deployments(checkout)}
    # the checkout's params.yaml has only classification; sweep trials serve every project
    assert list(deployed) == ["retrain-classification", "sweep-trial"]
    with client() as c:
        dep = c.read_deployment_by_name(DEPLOYMENT)
        pool = c.read_work_pool("gpu")
        with pytest.raises(ObjectNotFound):
            c.read_deployment_by_name("nlp-retrain/retrain-translation")
    want = declared["retrain-classification"]
    assert [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules] == [
        (s["cron"], s["timezone"]) for s in want["schedules"]]
    assert all(s.active for s in dep.schedules)
    assert dep.work_pool_name == "gpu" and pool.type == "process"
    assert dep.parameters == {"project": PROJECT} and dep.entrypoint == "flows/pipeline.py:retrain"
    assert dep.global_concurrency_limit is not None and dep.global_concurrency_limit.limit == 1
    # each worker's flow runs enter its own checkout (PIPELINES_CHECKOUT), else this one
    steps = [step.get("flows.checkout.enter_checkout") for step in dep.pull_steps]
    assert {"directory": str(checkout.resolve())} in steps


def test_deployed_run_on_the_worker_trains_registers_and_publishes(deployed, worker, checkout):
    flow_run = run_deployed(worker)
    assert flow_run.state.is_completed() and flow_run.state.name == "Completed", flow_run.state.message
    runs = task_runs(flow_run.id)
    for stage in STAGES:  # one task per stage, each ran (nothing was up to date in a fresh checkout)
        run = runs[f"{stage}@{PROJECT}"]
        assert run.state.name == "Completed" and run.total_run_time.total_seconds() > 0
    assert {f"check-params@{PROJECT}", f"lineage@{PROJECT}", f"dvc-push@{PROJECT}"} <= set(runs)
    assert (checkout / "dvc-remote").is_dir()  # outputs pushed to the checkout's DVC remote

    evaluation = json.loads((checkout / f"reports/{PROJECT}/evaluate.json").read_text())
    run_id = json.loads((checkout / f"reports/{PROJECT}/finetune.json").read_text())["mlflow_run_id"]
    markdown = artifact_markdown(flow_run.id, f"{PROJECT}-pipeline-run")
    assert f"| **accuracy** | {evaluation['full']['accuracy']:.4f} |" in markdown
    exported = json.loads((checkout / f"reports/{PROJECT}/export.json").read_text()).get("variant", "full")
    assert f"{exported} (exported)" in markdown
    assert run_id in markdown and "version **1**" in markdown and "moved to version 1" in markdown
    assert registry(checkout) == {"aliases": {"candidate": 1, "champion": 1}, "versions": [1]}


def test_up_to_date_stages_are_reported_as_skipped(deployed, worker, checkout):
    proc = flows_cli("run", PROJECT, "--checkout", str(checkout), "--no-push", env=worker["env"], cwd=checkout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["stages"] == {**{s: "skipped" for s in STAGES}, "ingest": "ran"}
    runs = task_runs(summary["flow_run_id"])
    assert all(runs[f"{s}@{PROJECT}"].state.name == "Skipped" for s in STAGES if s != "ingest")
    markdown = artifact_markdown(summary["flow_run_id"], f"{PROJECT}-pipeline-run")
    assert "no new version" in markdown and "did not move (version 1)" in markdown
    assert registry(checkout)["versions"] == [1]


def test_retraining_ends_early_when_nothing_changed(deployed, worker, checkout):
    if not (checkout / f"reports/{PROJECT}/export.json").exists():  # run alone (-k): no earlier test trained one
        seed_champion(checkout)
    flow_run = run_deployed(worker)
    state = flow_run.state
    assert state.is_completed() and state.name == "Skipped"
    assert "Nothing changed since champion version 1" in state.message
    assert set(task_runs(flow_run.id)) == {f"git-pull@{PROJECT}", f"check-params@{PROJECT}", f"configure@{PROJECT}",
                                           f"ingest@{PROJECT}", f"lineage@{PROJECT}"}
    assert "not retraining" in artifact_markdown(flow_run.id, f"{PROJECT}-retrain-check")
    assert registry(checkout)["versions"] == [1]


def test_transient_stage_failure_is_retried(deployed, worker, checkout):
    # an MLflow server that does not answer fails export with TrackingError (exit code 4): retried.
    # A tracking param changed so that export is out of date (it is not part of the lineage hash).
    env = {**worker["env"], "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}", "PIPELINES_FLOW_RETRY_DELAY": "0"}
    before = (checkout / "params.yaml").read_text()
    proc = flows_cli("run", PROJECT, "--checkout", str(checkout), "--retries", "1", "--no-push",
                     "-S", "tracking.experiment_prefix=flows-retry", env=env, cwd=checkout)
    assert proc.returncode == 1
    # The override was for that run: the next scheduled retraining trains on the checkout's settings.
    assert (checkout / "params.yaml").read_text() == before
    message = proc.stderr[proc.stderr.rindex("error: Flow run"):]
    assert "export@classification failed (exit code 4)" in message and "does not answer" in message
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with client() as c:
        latest = c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["nlp-pipeline"])),
                                  sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
    export = task_runs(latest.id)[f"export@{PROJECT}"]
    assert export.state.is_failed() and export.run_count == 2


def test_changed_data_or_params_make_retraining_go_ahead(checkout):
    source = Path(yaml.safe_load((checkout / "params.yaml").read_text())["projects"][PROJECT]["data"]["source"])
    write_reviews(source, extra=8)
    apply_overrides(checkout, PROJECT, {"projects.classification.finetune.learning_rate": 0.0007})
    repro_stage(checkout, "ingest", PROJECT, log=lambda line: None, env=pipeline_env(checkout))
    verdict = lineage(checkout)
    assert verdict["changed"] and verdict["champion_version"] == 1
    assert any(r.startswith("source data") for r in verdict["reasons"])
    assert any(r.startswith("params") for r in verdict["reasons"])


def _retrain_on_more_data(worker, checkout, extra: int, **settings) -> tuple[dict, str]:
    """The source gains rows (and the finetune block takes ``settings``); the deployed retraining
    runs. Returns export's report and the run's artifact."""
    source = Path(yaml.safe_load((checkout / "params.yaml").read_text())["projects"][PROJECT]["data"]["source"])
    write_reviews(source, extra=extra)
    apply_overrides(checkout, PROJECT, {f"projects.{PROJECT}.finetune.{k}": v for k, v in settings.items()})
    flow_run = run_deployed(worker)
    assert flow_run.state.is_completed() and flow_run.state.name == "Completed", flow_run.state.message
    assert "retrain" in flow_run.name
    report = json.loads((checkout / f"reports/{PROJECT}/export.json").read_text())
    return report, artifact_markdown(flow_run.id, f"{PROJECT}-pipeline-run")


def test_retraining_on_new_data_rescores_the_champion_and_moves_it_only_for_a_model_as_good(deployed, worker,
                                                                                            checkout):
    """New rows in the source change the test split, so the champion's recorded metric cannot be
    compared: export scores the champion's model on the new split first. A model that learns moves
    champion; a model that cannot learn (learning rate 1e-9) leaves it, with the reason."""
    if not (checkout / f"reports/{PROJECT}/export.json").exists():  # run alone (-k): train a real champion first
        run_deployed(worker, force=True)
    before = registry(checkout)["aliases"]["champion"]
    good, markdown = _retrain_on_more_data(worker, checkout, extra=60, learning_rate=0.003, epochs=3)
    assert good["champion_scored"] == "rescored" and good["previous_champion"] == before
    assert good["champion_moved"], good["reason"]
    assert "re-scored on this test data" in good["reason"]
    assert f"moved to version {good['version']}" in markdown and "re-scored" in markdown
    assert f"The champion (version {before}) was scored on other test data" in markdown
    assert "## What changed in the data since the champion" in markdown and " rows added, " in markdown
    change = json.loads((checkout / f"reports/{PROJECT}/data_change.json").read_text())
    assert change["champion_version"] == before and change["rows"]["added"] > 0
    assert change["tokenizer"]["texts"] == change["rows"]["added"]
    tags = tiny.registry(checkout, PROJECT)["tags"][str(good["version"])]
    assert tags["decision"] == "moved" and tags["decision.champion_scored"] == "rescored"
    card = (checkout / f"models/{PROJECT}/export/README.md").read_text()
    assert f"test split hash: `{tags['test_data_hash']}`" in card and "## Intended use and limits" in card

    worse, markdown = _retrain_on_more_data(worker, checkout, extra=100, learning_rate=1e-9, epochs=1)
    assert worse["champion_scored"] == "rescored" and worse["previous_champion"] == good["version"]
    # the paired test on the same examples (export.promote: not_worse): worse beyond noise, so kept
    assert not worse["champion_moved"] and "is worse than champion version" in worse["reason"], worse
    assert f"stayed at version {good['version']}" in markdown and worse["reason"] in markdown
    assert registry(checkout)["aliases"] == {"candidate": worse["version"], "champion": good["version"]}


def test_failing_stage_fails_the_flow_with_its_own_error(worker, tmp_path):
    source = write_reviews(tmp_path / "broken.jsonl", n=60)
    source.write_text(source.read_text() + "{not json\n")
    root = make_checkout(tmp_path / "checkout", source)
    proc = flows_cli("run", PROJECT, "--checkout", str(root), "--retries", "2", "--no-push",
                     env={**worker["env"], "PIPELINES_FLOW_RETRY_DELAY": "0"}, cwd=root)
    assert proc.returncode == 1
    message = proc.stderr[proc.stderr.rindex("error: Flow run"):]
    assert "ingest@classification failed (exit code 3)" in message
    assert "broken.jsonl:61: not valid JSON" in message and "fix or remove that line" in message
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with client() as c:
        latest = c.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["nlp-pipeline"])),
                                  sort=FlowRunSort.START_TIME_DESC, limit=1)[0]
    assert latest.parameters["checkout"] == str(root.resolve()) and latest.state.is_failed()
    ingest = task_runs(latest.id)[f"ingest@{PROJECT}"]
    assert ingest.state.is_failed() and ingest.run_count == 1  # bad data: not retried


def test_artifact_keys_of_any_project_name_are_what_prefect_accepts():
    from prefect.artifacts import MarkdownArtifact

    from flows.pipeline import artifact_key

    for project in ("classification", "Reviews_EN", "a-b_c9"):
        key = artifact_key(project, "pipeline-run")
        MarkdownArtifact(key=key, markdown="x")  # raises on a key Prefect refuses
    assert artifact_key("Reviews_EN", "retrain-check") == "reviews-en-retrain-check"


def test_a_run_pulls_its_checkout_and_refuses_one_with_conflicting_changes(tmp_path):
    from devsupport.team import git
    from flows.checkout import pull_from_origin

    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q")
    (origin / "params.yaml").write_text("a: 1\n")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "one")
    git(tmp_path, "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    assert "up to date" in pull_from_origin(clone)
    (origin / "params.yaml").write_text("a: 2\n")
    git(origin, "commit", "-qam", "two")
    assert "pulled" in pull_from_origin(clone) and (clone / "params.yaml").read_text() == "a: 2\n"
    (origin / "params.yaml").write_text("a: 3\n")
    git(origin, "commit", "-qam", "three")
    (clone / "params.yaml").write_text("a: local\n")  # a change the pull would overwrite
    with pytest.raises(FlowError, match="commit or discard local changes"):
        pull_from_origin(clone)
    assert (clone / "params.yaml").read_text() == "a: local\n"  # nothing lost
    assert "tracks no remote branch" in pull_from_origin(origin)
