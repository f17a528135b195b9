"""Scale-out as a team deploys it, on this machine: one Prefect server, one MLflow server, a DVC
remote in a shared folder, and two workers of the `gpu` pool, each in its own clone of one origin
repository and each standing for a machine with one GPU slot (PIPELINES_MACHINE, PIPELINES_GPU_SLOTS).

Three flow runs of two projects go to the pool at once: the workers share them, never train two at
a time each, and register every model in the one registry; then a fresh third clone restores every
stage from the remote (`dvc repro --pull`) without running one, and a sweep from it sends its trials
to the workers. The GPU slot itself is tested on its own: a run waits while the machine's slots are
taken, and gets a GPU nobody else holds.
Servers and workers run in their own process groups and are stopped by PID at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import yaml

from devsupport.team import team, wait_for_flow_runs
from tests.tiny import REPO, int8_only, pipeline_env, tiny_params

PROJECTS = {"reviews": "classification", "opinions_en": "classification"}  # "_" as users name projects
MACHINES = ("machine-a", "machine-b")


# --------------------------------------------------------------------------- the GPU slot alone
def test_a_run_waits_for_a_free_slot_and_gets_a_gpu_nobody_holds(prefect_api, monkeypatch):
    from flows.gpu_slots import gpu_slot

    monkeypatch.setenv("PIPELINES_MACHINE", "one-gpu")
    monkeypatch.setenv("PIPELINES_GPU_SLOTS", "3")  # one GPU, id 3
    held, release, spans = threading.Event(), threading.Event(), {}

    def first():
        with gpu_slot() as (slot, env):
            spans["first"] = (time.monotonic(), slot, env)
            held.set()
            release.wait(20)
        spans["first_end"] = time.monotonic()

    t = threading.Thread(target=first)
    t.start()
    assert held.wait(60)
    threading.Timer(3, release.set).start()
    waits = []
    with gpu_slot(on_wait=waits.append) as (slot, env):
        got = time.monotonic()
    t.join()
    assert spans["first"][1] == slot == "one-gpu/3" and env == {"CUDA_VISIBLE_DEVICES": "3"}
    assert got >= spans["first_end"] - 0.5, "the second run trained while the only slot was held"
    assert waits and "gpu-slots-one-gpu" in waits[0]

    # two slots: two runs at once, on different GPUs; a CPU slot hides the GPUs from the stages
    monkeypatch.setenv("PIPELINES_MACHINE", "two-gpus")
    monkeypatch.setenv("PIPELINES_GPU_SLOTS", "0,1")
    with gpu_slot() as (a, env_a), gpu_slot(timeout=20) as (b, env_b):
        assert {a, b} == {"two-gpus/0", "two-gpus/1"} and env_a != env_b
    monkeypatch.setenv("PIPELINES_MACHINE", "no-gpu")
    monkeypatch.setenv("PIPELINES_GPU_SLOTS", "cpu")
    with gpu_slot() as (slot, env):
        assert slot == "no-gpu/cpu-0" and env == {"CUDA_VISIBLE_DEVICES": ""}


@pytest.mark.parametrize("variable, value, allowed", [
    ("PIPELINES_GPU_SLOTS", "0,0", "cpu:N"),
    ("PIPELINES_MACHINE", "rack/7", "letters, digits"),  # it names a Prefect limit and a folder
])
def test_bad_slot_settings_are_refused_naming_the_variable(variable, value, allowed):
    proc = subprocess.run([sys.executable, "-m", "flows", "worker"], env={**os.environ, variable: value},
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and f"{variable}={value!r}" in proc.stderr and allowed in proc.stderr


def test_a_sweep_on_the_pool_refuses_what_the_workers_cannot_reach(tmp_path, monkeypatch):
    """Checked before any trial is submitted, each with its fix (no server is contacted for these)."""
    from devsupport.team import git
    from flows.sweep import PoolTrials
    from pipelines.core.errors import PipelineError

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    git(tmp_path, "init", "-q")
    trials = PoolTrials(tmp_path, "reviews", "gpu")
    with pytest.raises(PipelineError, match="set MLFLOW_TRACKING_URI to the team's tracking server"):
        trials.check("sqlite:////tmp/study.db", f"sqlite:///{tmp_path}/mlflow.db")
    with pytest.raises(PipelineError, match="no Git remote 'origin'"):
        trials.check("sqlite:////tmp/study.db", "http://127.0.0.1:5000")


def test_a_trial_on_a_machine_without_the_study_file_fails_naming_the_fix(tmp_path):
    from flows.sweep import _local_sqlite_missing

    study = tmp_path / "study.db"
    assert _local_sqlite_missing(f"sqlite:///{study}") == study
    study.write_bytes(b"")
    assert _local_sqlite_missing(f"sqlite:///{study}") is None
    assert _local_sqlite_missing("postgresql://optuna@db/optuna") is None


# --------------------------------------------------------------------------- two workers, two clones
@pytest.fixture(scope="module")
def crew(prefect_api, tmp_path_factory):
    """The origin repository (DVC remote in a shared folder, configured once and committed), an
    MLflow server, two clones with a worker each, and the deployments."""
    params = int8_only(tiny_params(PROJECTS, **{f"{p}__export__onnx": False for p in PROJECTS}))
    with team(tmp_path_factory.mktemp("team"), params, MACHINES, prefect_api["env"], OMP_NUM_THREADS="1",
              PIPELINES_FLOW_RETRIES="0") as started:
        yield started


def test_two_workers_share_the_runs_one_training_each_at_a_time(crew):
    from prefect.deployments import run_deployment

    # the third waits in Prefect's queue until a worker is free: both are at their limit of one run
    submitted = [run_deployment(f"nlp-retrain/retrain-{project}", parameters={"force": True}, timeout=0)
                 for project in ("reviews", "opinions_en", "reviews")]
    runs = wait_for_flow_runs([r.id for r in submitted], timeout=900)
    assert all(r.state.is_completed() for r in runs), \
        [(r.name, r.state.name, r.state.message) for r in runs] + [crew.logs()]

    machine_of = {r.id: next(t.split(":", 1)[1] for t in r.tags if t.startswith("machine:")) for r in runs}
    assert set(machine_of.values()) == set(MACHINES), f"one worker ran every flow: {machine_of}"
    spans = {r.id: (r.start_time, r.end_time) for r in runs}
    for a in runs:  # one training at a time per machine: runs of one machine never overlap
        for b in runs:
            if a.id != b.id and machine_of[a.id] == machine_of[b.id]:
                assert spans[a.id][1] <= spans[b.id][0] or spans[b.id][1] <= spans[a.id][0], (spans, machine_of)
    # ... and the two machines did train at the same time
    assert any(spans[a.id][0] < spans[b.id][1] and spans[b.id][0] < spans[a.id][1]
               for a in runs for b in runs if machine_of[a.id] != machine_of[b.id]), spans

    client = crew.mlflow.client()
    for project in PROJECTS:  # every project's model is in the shared registry
        assert client.search_model_versions(f"name='{project}'"), f"{project} is not in the MLflow registry"
    # The second run of reviews trains again only if it started before the first one had pushed its
    # outputs; after that, its checkout (or the remote's run cache) already holds every stage.
    first, again = runs[0], runs[2]
    overlapped = again.start_time < first.end_time
    experiment = client.get_experiment_by_name("nlp-pipelines-reviews").experiment_id
    finetunes = client.search_runs([experiment], "tags.stage = 'finetune'")
    assert len(finetunes) == (2 if overlapped else 1), (len(finetunes), spans, machine_of)


def test_a_fresh_clone_restores_every_stage_from_the_remote(crew):
    clone = crew.clone("clone-new")
    env = pipeline_env(clone, MLFLOW_TRACKING_URI=crew.mlflow.url)
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", "--pull"], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = [line for line in proc.stdout.splitlines() if line.startswith("Running stage")]
    # ingest reads the source on every repro (always_changed): it re-reads, it trains nothing
    assert all(line.startswith("Running stage 'ingest@") for line in ran), "\n".join(ran)
    cached = {line.split("'")[1] for line in proc.stdout.splitlines() if "is cached - skipping run" in line}
    for project in PROJECTS:
        assert {f"finetune@{project}", f"evaluate@{project}", f"export@{project}"} <= cached, proc.stdout[-3000:]
        assert (clone / "models" / project).is_dir()
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=clone, env=env,
                            capture_output=True, text=True, timeout=300)
    assert yaml.safe_load(status.stdout) in ({}, None) or set(yaml.safe_load(status.stdout)) <= {
        f"ingest@{p}" for p in PROJECTS}, status.stdout


# --------------------------------------------------------------------------- a sweep on the pool
def test_a_sweep_fans_its_trials_out_to_the_workers_one_per_gpu_slot(crew, prefect_api):
    """`pipelines sweep --pool gpu` from a third clone: each trial a flow run of the sweep-trial
    deployment on a worker, holding its machine's one slot; the experiments come back to the sweep's
    checkout (`dvc exp show`) and the trials' MLflow runs are children of the sweep's."""
    import json

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    from flows.sweep import DEPLOYMENT

    sweeper = crew.clone("clone-sweeper")
    env = pipeline_env(sweeper, **prefect_api["env"], MLFLOW_TRACKING_URI=crew.mlflow.url)
    sweep = [sys.executable, "-m", "pipelines", "sweep", "reviews", "-S", "finetune.learning_rate=choice(0.001,0.003)",
             "--sampler", "grid", "--pool", "gpu", "--jobs", "2", "--pruner", "none", "--name", "fan"]

    # a change the workers would not see is refused before any trial is submitted
    params = sweeper / "params.yaml"
    original = params.read_text()
    params.write_text(original + "\n# local edit\n")
    refused = subprocess.run(sweep, cwd=sweeper, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "commit and push them first" in refused.stderr, refused.stderr[-2000:]
    params.write_text(original)

    # The sweep runs from a branch of its own, which the workers' clones are not on: each trial moves
    # its clone to the sweep's commit and back.
    from devsupport.team import git

    git(sweeper, "checkout", "-q", "-b", "tune")
    git(sweeper, "commit", "-q", "--allow-empty", "-m", "tuning the reviews model")
    git(sweeper, "push", "-q", "-u", "origin", "tune")
    branches = {m: subprocess.run(["git", "symbolic-ref", "--short", "HEAD"], cwd=clone, capture_output=True,
                                  text=True).stdout for m, (clone, _) in crew.clones.items()}

    proc = subprocess.run(sweep, cwd=sweeper, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:] + crew.logs()
    summary = json.loads(proc.stdout)
    assert summary["counts"]["complete"] == 2 and "pool 'gpu'" in summary["trials_on"], summary

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    assert sorted(r.name for r in runs) == ["fan-0", "fan-1"] and all(r.state.is_completed() for r in runs)
    machine_of = {r.id: next(t.split(":", 1)[1] for t in r.tags if t.startswith("machine:")) for r in runs}
    assert set(machine_of.values()) <= set(MACHINES)
    a, b = runs
    if machine_of[a.id] == machine_of[b.id]:  # one slot per machine: its trials ran one after the other
        assert a.end_time <= b.start_time or b.end_time <= a.start_time

    shown = json.loads(subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=sweeper, env=env,
                                      capture_output=True, text=True, timeout=300).stdout)
    rates = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for run in exp.get("revs", []):
                project = run["data"]["params"]["params.yaml"]["data"]["projects"]["reviews"]
                rates[run["name"]] = project["finetune"]["learning_rate"]
    assert rates == {"fan-0": 0.001, "fan-1": 0.003}, rates
    assert branches == {m: subprocess.run(["git", "symbolic-ref", "--short", "HEAD"], cwd=clone, capture_output=True,
                                          text=True).stdout for m, (clone, _) in crew.clones.items()}

    client = crew.mlflow.client()
    children = client.search_runs([client.get_experiment_by_name("nlp-pipelines-reviews").experiment_id],
                                  f"tags.mlflow.parentRunId = '{summary['mlflow_parent_run_id']}'")
    assert len(children) == 2, [c.info.run_name for c in children]


def test_an_interrupted_sweep_cancels_its_trials_on_the_pool(crew):
    """Ctrl-C reaches the sweep, not the workers: the sweep cancels the trials it submitted."""
    from datetime import datetime, timedelta, timezone

    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from flows.sweep import DEPLOYMENT, PoolTrials

    later = datetime.now(timezone.utc) + timedelta(hours=1)  # no worker takes it before the sweep stops
    waiting = run_deployment(DEPLOYMENT, timeout=0, scheduled_time=later, parameters={
        "project": "reviews", "experiment": "never-0", "overrides": [], "commit": "0" * 40, "sweep_env": {}})
    trials = PoolTrials(crew.origin, "reviews", "gpu")
    seen = {}
    follower = threading.Thread(target=lambda: seen.setdefault("run", trials._wait(waiting.id)))
    follower.start()
    trials.stop()
    follower.join(timeout=30)
    assert not follower.is_alive() and seen["run"] is None, "the trial's wait did not end with the sweep"
    trials._cancel(waiting.id)
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(waiting.id).state
    assert state.type.value in ("CANCELLING", "CANCELLED"), state
    assert trials.run("never-1", [], {})[0] == 130, "a stopped sweep submits no more trials"
