"""Sweeps: trials as DVC experiments and MLflow child runs, chosen on validation only, resumable,
pruned and failed trials recorded as such, bad search spaces refused before any trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipelines.sweep import space
from pipelines.sweep import study as sweep, trial as sweep_trial
from pipelines.core.errors import ConfigError
from tests.tiny import dvc, int8_only, make_repo_copy, mlflow_json, pipeline_env, tiny_params

PROJECT = "classification"

# Records every open of the test split by the pipeline's own commands (not DVC hashing its outputs).
AUDIT = """
import os, sys
if any("pipelines" in a for a in getattr(sys, "orig_argv", [])):
    def _audit(event, args):
        if event == "open" and str(args[0]).endswith("splits/test.jsonl"):
            with open(os.environ["TEST_SPLIT_OPENS"], "a") as fh:
                fh.write(" ".join(sys.orig_argv) + "\\n")
    sys.addaudithook(_audit)
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A tiny classification copy fine-tuned once (upstream stages cached), 2 epochs per trial."""
    base = tmp_path_factory.mktemp("sweep")
    root = make_repo_copy(base / "repo", int8_only(tiny_params([PROJECT], classification__finetune__epochs=2)))
    dvc(root, "repro", f"finetune@{PROJECT}")
    audit = base / "audit"
    audit.mkdir()
    (audit / "sitecustomize.py").write_text(AUDIT)
    return root


def sweep_cli(root: Path, *args: str, opens: Path | None = None, background: bool = False):
    env = pipeline_env(root)
    env.pop("PIPELINES_ROOT", None)
    if opens is not None:
        env["PYTHONPATH"] = f"{root.parent / 'audit'}{os.pathsep}{env.get('PYTHONPATH', '')}"
        env["TEST_SPLIT_OPENS"] = str(opens)
    cmd = [sys.executable, "-m", "pipelines", "sweep", PROJECT, *args]
    if background:
        return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    return subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=1200)


def summary_of(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def experiments(root: Path) -> dict[str, dict]:
    shown = json.loads(dvc(root, "exp", "show", "--json").stdout)
    found = {}
    for rev in shown:
        for exp in rev.get("experiments") or []:
            for run in exp.get("revs", []):
                found[run["name"]] = run["data"]
    return found


def test_a_grid_sweep_runs_every_combination_as_experiments_and_child_runs_on_validation_only(repo, tmp_path):
    opens = tmp_path / "opens.txt"
    workspace_lr = yaml.safe_load((repo / "params.yaml").read_text())["projects"][PROJECT]["finetune"]["learning_rate"]
    proc = sweep_cli(repo, "-S", "finetune.learning_rate=choice(0.0003,0.01)", "--sampler", "grid",
                     "--jobs", "2", "--pruner", "none", "--name", "grid", "--apply", "best", opens=opens)
    summary = summary_of(proc)
    assert summary["counts"] == {"complete": 2, "pruned": 0, "fail": 0}
    rows = summary["trials"]
    assert sorted(r["param.finetune.learning_rate"] for r in rows) == [0.0003, 0.01]
    best = max(rows, key=lambda r: r["value"])
    assert summary["best"]["value"] == best["value"] and summary["best"]["experiment"] == best["experiment"]

    # Every trial is a DVC experiment with its params and validation metric.
    found = experiments(repo)
    for r in rows:
        data = found[r["experiment"]]
        lr = data["params"]["params.yaml"]["data"]["projects"][PROJECT]["finetune"]["learning_rate"]
        assert lr == r["param.finetune.learning_rate"]
        report = data["metrics"][f"reports/{PROJECT}/finetune.json"]["data"]
        assert report["best_validation"] == pytest.approx(r["value"])

    # One parent run, one child run per trial, the pictures on the parent.
    parent = summary["mlflow_parent_run_id"]
    runs = mlflow_json(repo, (
        f"rs = c.search_runs([c.get_run({parent!r}).info.experiment_id], \"tags.mlflow.parentRunId = '{parent}'\");"
        f"arts = [a.path for a in c.list_artifacts({parent!r}, 'sweep')];"
        "print(json.dumps({'children': len(rs), 'arts': arts}))"))
    assert runs["children"] == 2
    assert {"sweep/trials.json", "sweep/optimization_history.png", "sweep/parallel_coordinate.png"} <= set(runs["arts"])

    # The trials never read the test split; the kept configuration is scored on it once, by evaluate.
    readers = opens.read_text().splitlines() if opens.exists() else []
    assert all(any(f" {s} " in line for s in ("compress", "evaluate")) for line in readers), readers
    # The kept configuration is the best by validation: the best trial, unless it does not beat the
    # workspace's own (fine-tuned by the fixture) by more than the validation split's noise.
    applied = summary["applied"]
    margin = sweep.noise_margin("accuracy", applied["workspace_validation"],
                                len((repo / f"data/{PROJECT}/splits/validation.jsonl").read_text().splitlines()))
    assert applied["required_gain"] == pytest.approx(margin, abs=1e-6) and margin > 0
    kept_lr = yaml.safe_load((repo / "params.yaml").read_text())["projects"][PROJECT]["finetune"]["learning_rate"]
    if best["value"] - applied["workspace_validation"] > margin:
        assert applied["applied"] == best["experiment"] and kept_lr == best["param.finetune.learning_rate"]
    else:
        assert applied["applied"] is None and applied["kept"] == "workspace" and kept_lr == workspace_lr
        assert "not better than the workspace's configuration" in applied["reason"]
    evaluation = json.loads((repo / f"reports/{PROJECT}/evaluate.json").read_text())
    assert applied["test_value"] == evaluation["full"]["accuracy"]


def test_the_best_trial_replaces_the_workspace_only_beyond_the_noise_of_validation(repo):
    """--apply best keeps the workspace's configuration when the best trial's validation gain is
    within one standard error (or --min-gain); beyond it, the trial is applied."""
    import dvc.api

    baseline = sweep.workspace_baseline(repo, PROJECT, "validation accuracy")
    assert baseline is not None and baseline["margin"] > 0
    trial = next(name for name in experiments(repo) if name.startswith("grid-"))
    trial_lr = yaml.safe_load(dvc.api.read("params.yaml", repo=str(repo), rev=trial))[
        "projects"][PROJECT]["finetune"]["learning_rate"]
    summary = {"sweep": "grid", "metric": "validation accuracy", "direction": "maximize",
               "best": {"experiment": trial, "value": baseline["value"] + baseline["margin"] / 2}}
    before = (repo / "params.yaml").read_text()
    kept = sweep.apply_best(repo, PROJECT, summary)
    assert kept["applied"] is None and kept["kept"] == "workspace" and (repo / "params.yaml").read_text() == before
    assert f"{baseline['examples']} validation examples" in kept["reason"]

    applied = sweep.apply_best(repo, PROJECT, summary, min_gain=0.0)
    assert applied["applied"] == trial and applied["required_gain"] == 0.0
    assert yaml.safe_load((repo / "params.yaml").read_text())["projects"][PROJECT]["finetune"]["learning_rate"] == trial_lr
    assert applied["test_value"] == json.loads((repo / f"reports/{PROJECT}/evaluate.json").read_text())["full"]["accuracy"]


def test_the_noise_margin_is_one_standard_error_of_accuracy():
    assert sweep.noise_margin("accuracy", 0.8, 872) == pytest.approx((0.8 * 0.2 / 872) ** 0.5)
    assert sweep.noise_margin("accuracy", 0.8, 100_000) < 0.002  # a large validation split: small gains count
    assert sweep.noise_margin("bleu", 30.0, 872) == 0.0  # no spread derivable from one number


def test_a_killed_tpe_sweep_resumes_and_runs_only_the_rest(repo):
    args = ("-S", "finetune.learning_rate=loguniform(1e-4,3e-3)", "-S", "finetune.weight_decay=choice(0.0,0.01)",
            "--sampler", "tpe", "--trials", "2", "--pruner", "none", "--name", "resume")
    first = sweep_cli(repo, *args, background=True)
    import optuna

    storage = f"sqlite:///{repo / 'sweeps' / PROJECT / 'resume.db'}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            done = [t for t in optuna.load_study(study_name="resume", storage=storage).trials
                    if t.state == optuna.trial.TrialState.COMPLETE]
        except (KeyError, Exception):
            done = []
        if done:
            break
        time.sleep(1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    assert done, "the first trial did not finish"
    summary = summary_of(sweep_cli(repo, *args))
    assert summary["counts"]["complete"] == 2
    assert summary["trials_this_run"] == 1, "only the trial the killed sweep had not finished runs again"
    assert len(summary["trials"]) == 2
    experiments_made = [name for name in experiments(repo) if name.startswith("resume-")]
    assert sorted(experiments_made) == ["resume-0", "resume-1"]


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(repo):
    summary = summary_of(sweep_cli(repo, "-S", "finetune.learning_rate=choice(0.001,1e30)", "--sampler", "grid",
                                   "--pruner", "none", "--name", "failing"))
    states = {r["param.finetune.learning_rate"]: r for r in summary["trials"]}
    assert states[0.001]["state"] == "complete"
    assert states[1e30]["state"] == "fail" and "diverged" in states[1e30]["error"]


def test_a_trial_that_trails_is_pruned_not_failed(repo, monkeypatch):
    """The pruner's verdict inside the finetune stage: two finished trials validated at 1.0 after
    each epoch, so a third that validates lower is stopped at the first epoch the pruner may judge
    (the second: the first falls in the learning-rate warm-up), unless that is its last epoch, where
    stopping saves nothing and would throw a finished trial away."""
    import shutil

    import optuna

    storage = f"sqlite:///{repo / 'sweeps' / 'pruning.db'}"
    (repo / "sweeps").mkdir(exist_ok=True)
    study = optuna.create_study(study_name="pruning", storage=storage, direction="maximize",
                                pruner=sweep.make_pruner("median"))
    for _ in range(2):
        done = study.ask()
        for epoch in (1, 2, 3):
            done.report(1.01, epoch)
        study.tell(done, 1.01)

    def finetune(epochs: int):
        trial = study.ask()
        shutil.rmtree(repo / f"models/{PROJECT}/checkpoints", ignore_errors=True)  # train from the start
        env = {**pipeline_env(repo), "PIPELINES_SWEEP_STORAGE": storage, "PIPELINES_SWEEP_STUDY": "pruning",
               "PIPELINES_SWEEP_TRIAL_ID": str(trial._trial_id), "PIPELINES_SWEEP_PRUNER": "median",
               "PIPELINES_SWEEP_PARENT_RUN": ""}
        params = repo / "params.yaml"
        original = params.read_text()
        raw = yaml.safe_load(original)
        raw["projects"][PROJECT]["finetune"]["epochs"] = epochs
        params.write_text(yaml.safe_dump(raw, sort_keys=False))
        try:
            proc = subprocess.run([sys.executable, "-m", "pipelines", "finetune", PROJECT], cwd=repo, env=env,
                                  capture_output=True, text=True, timeout=600)
        finally:
            params.write_text(original)
        reported = optuna.load_study(study_name="pruning", storage=storage).trials[trial.number]
        return proc, list(reported.intermediate_values)

    proc, epochs_reported = finetune(3)
    assert proc.returncode == sweep_trial.PRUNED_EXIT, proc.stderr[-3000:]
    assert "pruned by the sweep after epoch 2" in proc.stderr
    assert epochs_reported == [1, 2]

    proc, epochs_reported = finetune(2)  # trails as much, but epoch 2 is its last: it finishes
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert epochs_reported == [1, 2]


@pytest.mark.parametrize("spec, message", [
    ("finetune.learnin_rate=choice(0.1)", "has no setting 'finetune.learnin_rate'"),
    ("finetune.learning_rate=choice(-1)", "the value -1 is not allowed"),
    ("finetune.learning_rate=choice()", "give at least one value"),
    ("finetune.learning_rate=range(0.1,0.01)", "low is above high"),
    ("finetune.learning_rate=loguniform(0,1)", "needs low > 0"),
    ("evaluate.batch_size=choice(8,16)", "not read by the stages a trial runs"),
    ("finetune.learning_rate=0.1", "is not KEY=choice"),
    ("finetune.epochs=choice([1,2])", "is not a value; list plain values"),
    ("model.hidden_size=choice('32,64)", "is not a value"),
    ("finetune.warmup_ratio=range(0.0,0.3,0)", "the step must be above 0"),
    ("finetune.epochs=range(1,3,0)", "the step must be above 0"),
    ("finetune.epochs=range(1,3,-1)", "the step must be above 0"),
    ("finetune.batch_size=range(8.0,16.0)", "for a whole-number setting write range(8,16)"),
])
def test_bad_search_spaces_are_refused_before_any_trial(spec, message):
    raw = {"projects": {PROJECT: {"task": "classification"}}}
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        space.validate([space.parse_dimension(spec, PROJECT)], raw, PROJECT)


def test_a_sweep_name_that_would_leave_the_sweeps_folder_is_refused(tmp_path):
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"projects": {PROJECT: {"task": "classification"}}}))
    dims = [space.parse_dimension("finetune.learning_rate=choice(0.001,0.002)", PROJECT)]
    for name in ("../../../escape", "/tmp/x", ".hidden", ""):
        with pytest.raises(ConfigError, match="a sweep's name is letters, digits"):
            sweep.Sweep(tmp_path, PROJECT, dims, sampler="grid", trials=None, budget_minutes=None, jobs=1,
                        pruner="none", name=name)
    assert not list(tmp_path.parent.glob("escape*"))


def test_a_storage_url_no_database_knows_is_refused_naming_the_option(tmp_path):
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"projects": {PROJECT: {"task": "classification"}}}))
    dims = [space.parse_dimension("finetune.learning_rate=choice(0.001,0.002)", PROJECT)]
    study = sweep.Sweep(tmp_path, PROJECT, dims, sampler="grid", trials=None, budget_minutes=None, jobs=1,
                        pruner="none", name="x", storage="nosuchdb://x/y")
    with pytest.raises(ConfigError, match="--storage 'nosuchdb://x/y' cannot hold the study"):
        study._study()


def test_a_grid_of_a_continuous_range_and_a_tpe_sweep_without_trials_are_refused(tmp_path):
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"projects": {PROJECT: {"task": "classification"}}}))
    dims = [space.parse_dimension("finetune.learning_rate=loguniform(1e-4,1e-2)", PROJECT)]
    with pytest.raises(ConfigError, match="the grid sampler needs choice"):
        sweep.Sweep(tmp_path, PROJECT, dims, sampler="grid", trials=None, budget_minutes=None, jobs=1,
                    pruner="none", name="x")
    with pytest.raises(ConfigError, match="needs --trials N"):
        sweep.Sweep(tmp_path, PROJECT, dims, sampler="tpe", trials=None, budget_minutes=None, jobs=1,
                    pruner="none", name="x")
