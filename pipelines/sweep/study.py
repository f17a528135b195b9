"""Hyperparameter search: every trial a DVC experiment of the project's stages up to fine-tuning,
chosen on the validation split only, tracked as a child run of one MLflow run per sweep.

    python -m pipelines sweep PROJECT -S 'finetune.learning_rate=loguniform(1e-4,1e-2)' \\
        -S 'model.hidden_size=choice(128,256)' [--sampler grid|tpe|random] [--trials N] \\
        [--budget-minutes M] [--jobs J] [--pruner median|halving|none] [--name NAME] [--apply best] \\
        [--min-gain X] [--pool gpu] [--storage URL]

A dimension is ``KEY=choice(v1,v2,...)``, ``KEY=range(low,high[,step])`` (whole numbers when both
ends are) or ``KEY=loguniform(low,high)``; KEY is a setting of the project block
(``finetune.learning_rate``, or ``projects.<project>.finetune.learning_rate``). ``grid`` tries every
combination of the choices (and of whole-number ranges with a step); ``tpe`` (Optuna's Bayesian
optimisation) and ``random`` draw ``--trials`` configurations. The study is kept in
``sweeps/<project>/<name>.db`` (SQLite), so a sweep started again with the same name runs only the
trials it has not finished.

Each trial is ``dvc exp run --temp -n <name>-<trial> -S ... finetune@<project>``: its own temporary
workspace (trials never share DVC's lock), unchanged upstream stages restored from DVC's cache, and
an experiment ``dvc exp show`` lists and ``dvc exp apply`` restores. Its validation metric is the
best of fine-tuning's per-epoch validation (reports/<project>/finetune.json); no trial runs evaluate,
so no trial reads the test split. Each epoch's validation is reported to the sampler's pruner; a
trial that trails is stopped (its stage exits with sweep_trial.PRUNED_EXIT, so nothing of it is cached or kept as
an experiment) and recorded as pruned, not failed. A trial that fails is recorded with its error and
the sweep goes on. With ``--apply best`` the best trial is applied to the workspace and ``evaluate``
scores the test split once, for that configuration; a fine-tuned workspace configuration is kept
unless the best trial beats it by more than the validation split's noise (``--min-gain``).

With ``--pool gpu`` the trials run on the workers of that Prefect work pool instead of here, one per
GPU slot, the rest queued (flows/sweep.py); ``--storage URL`` puts the study in a database the
workers reach.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.core.errors import ConfigError, PipelineError
from pipelines.sweep.space import Dimension, validate
from pipelines.sweep.trial import (ENV_PARENT, ENV_PRUNER, ENV_STORAGE, ENV_STUDY, ENV_TRIAL, PRUNED_MESSAGE, make_pruner)

logger = logging.getLogger(__name__)

SWEEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SAMPLERS = ("grid", "tpe", "random")
PRUNERS = ("median", "halving", "none")
@dataclass
class Outcome:
    number: int
    experiment: str
    params: dict
    state: str  # complete | pruned | failed
    value: float | None = None
    error: str | None = None
    seconds: float = 0.0


def _dvc_override(raw: dict, project: str, key: str, value: Any) -> str:
    """``-S`` for ``dvc exp run``: ``+key=value`` adds a key params.yaml does not have yet."""
    node: Any = raw["projects"][project]
    present = True
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            present = False
            break
        node = node[part]
    return f"{'' if present else '+'}projects.{project}.{key}={json.dumps(value)}"


def trial_command(experiment: str, overrides: list[str], project: str, pull: bool = False) -> list[str]:
    """``dvc exp run --temp`` of one trial up to finetune; ``pull``: restore upstream stages from the
    DVC remote's run cache."""
    cmd = [sys.executable, "-m", "dvc", "exp", "run", "--temp", "-n", experiment] + (["--pull"] if pull else [])
    for o in overrides:
        cmd += ["-S", o]
    return cmd + [f"finetune@{project}"]


class LocalTrials:
    """Runs each trial on this machine: ``dvc exp run --temp`` in a temporary copy of the workspace."""

    where = "this machine"

    def __init__(self, root: Path, project: str):
        self.root, self.project = root, project

    def check(self, storage: str, tracking_uri: str) -> None:
        """Nothing to check: the trials reach this machine's study storage and MLflow store."""

    def stop(self) -> None:
        """Nothing to stop: the trials' processes get the same Ctrl-C as the sweep."""

    def run(self, experiment: str, overrides: list[str], sweep_env: dict[str, str]) -> tuple[int, str]:
        """Run one trial; its exit code and what it printed."""
        cmd = trial_command(experiment, overrides, self.project)
        env = {**os.environ, **sweep_env}
        env.pop("PIPELINES_ROOT", None)
        proc = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True)
        return proc.returncode, proc.stdout + proc.stderr


class Sweep:
    def __init__(self, root: Path, project: str, dimensions: list[Dimension], *, sampler: str, trials: int | None,
                 budget_minutes: float | None, jobs: int, pruner: str, name: str, storage: str | None = None,
                 trials_on=None):
        """``storage``: the Optuna storage URL (default: a SQLite file in sweeps/<project>/);
        ``trials_on``: what runs each trial (default: LocalTrials, this machine)."""
        from pipelines.config import parse_params

        self.root, self.project, self.dimensions = root, project, dimensions
        self.trials_on = trials_on or LocalTrials(root, project)
        self.raw = yaml.safe_load((root / "params.yaml").read_text())
        validate(dimensions, self.raw, project)
        self.params = parse_params(self.raw)
        self.cfg = self.params.project(project)
        if sampler not in SAMPLERS:
            raise ConfigError(f"--sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
        if sampler == "grid":
            size = len(list(itertools.product(*(d.grid() for d in dimensions))))
            trials = size if trials is None else min(trials, size)
        elif trials is None:
            raise ConfigError(f"--sampler {sampler} needs --trials N (how many configurations to try)")
        if trials < 1 or jobs < 1:
            raise ConfigError("--trials and --jobs must be at least 1")
        if not SWEEP_NAME.match(name or ""):
            # The name becomes files (sweeps/<project>/<name>.db and .lock) and experiment names.
            raise ConfigError(f"--name {name!r}: a sweep's name is letters, digits, '.', '_' and '-', starting with a "
                              "letter or digit (it names files under sweeps/ and the DVC experiments)")
        self.sampler, self.trials, self.jobs, self.pruner, self.name = sampler, trials, jobs, pruner, name
        self.budget = budget_minutes * 60 if budget_minutes else None
        folder = root / "sweeps" / project
        folder.mkdir(parents=True, exist_ok=True)
        self.storage = storage or f"sqlite:///{folder / f'{name}.db'}"
        self.lock = threading.Lock()

    def _study(self):
        import optuna

        seed = self.params.common.seed
        if self.sampler == "grid":
            # Every combination is enqueued once, when the study starts; ask() hands them out in order.
            # (Optuna's GridSampler stops the study from inside tell(), which the ask/tell loop here
            # cannot take.)
            sampler = optuna.samplers.RandomSampler(seed=seed)
        elif self.sampler == "tpe":
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, max(1, self.trials // 3)))
        else:
            sampler = optuna.samplers.RandomSampler(seed=seed)
        from pipelines.tasks import get_task

        metric, greater = get_task(self.cfg.task).impl().metric_for_best_model(self.cfg)
        self.metric = metric
        from sqlalchemy.exc import SQLAlchemyError

        try:
            study = optuna.create_study(study_name=self.name, storage=self.storage, sampler=sampler,
                                        pruner=make_pruner(self.pruner), load_if_exists=True,
                                        direction="maximize" if greater else "minimize")
        except (ImportError, ValueError, SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            raise ConfigError(f"--storage {self.storage!r} cannot hold the study ({type(exc).__name__}: {exc}); give "
                              "a database URL Optuna and SQLAlchemy know (sqlite:///path/sweep.db, "
                              "postgresql://user@host/db with its driver installed), or leave --storage out") from None
        space = {d.key: repr(d.distribution()) for d in self.dimensions}
        known = study.user_attrs.get("search_space")
        if known is not None and known != space:
            raise ConfigError(f"sweep {self.name!r} of {self.project} was started with another search space "
                              f"({known}); give a new --name, or the same -S options")
        study.set_user_attr("search_space", space)
        if self.sampler == "grid" and not study.trials:
            keys = [d.key for d in self.dimensions]
            for combination in itertools.product(*(d.grid() for d in self.dimensions)):
                study.enqueue_trial(dict(zip(keys, combination)))
        return study

    def run(self) -> dict:
        import optuna

        from pipelines.tracking import runs as tracking

        from filelock import FileLock, Timeout

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        lock = FileLock(str(self.root / "sweeps" / self.project / f"{self.name}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise PipelineError(f"sweep {self.name!r} of {self.project} is running in another process; wait for it, "
                                "or give another --name") from None
        try:
            return self._run(optuna, tracking)
        finally:
            lock.release()

    def _run(self, optuna, tracking) -> dict:
        self.trials_on.check(self.storage, tracking.tracking_uri())
        study = self._study()
        # Trials a killed sweep left running (no other process holds the sweep's lock) run again,
        # with the configuration they were given; the finished ones are not run again.
        resumed = [optuna.trial.Trial(study, t._trial_id)
                   for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))]
        finished = sum(1 for t in study.get_trials(deepcopy=False) if t.state.is_finished())
        remaining = max(0, self.trials - finished)
        parent = self._parent_run(study)
        started = time.monotonic()
        outcomes, stopped_by_budget = [], False
        logger.info("sweep %s of %s: %d trial(s) done, %d to run (%s, %d at a time, on %s)", self.name, self.project,
                    finished, remaining, self.sampler, self.jobs, self.trials_on.where)
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            running: set = set()
            launched = 0
            try:
                while launched < remaining or running:
                    while launched < remaining and len(running) < self.jobs:
                        if self.budget is not None and time.monotonic() - started > self.budget:
                            stopped_by_budget = launched < remaining
                            remaining = launched
                            break
                        if resumed:
                            trial = resumed.pop(0)
                        else:
                            with self.lock:
                                trial = study.ask({d.key: d.distribution() for d in self.dimensions})
                        running.add(pool.submit(self._trial, study, trial, parent))
                        launched += 1
                    if not running:
                        break
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    outcomes += [f.result() for f in finished]
            except KeyboardInterrupt:
                # Trials elsewhere do not get this process's Ctrl-C: stop them, so that the sweep
                # started again runs them afresh instead of beside their old selves.
                self.trials_on.stop()
                raise
        return self._report(study, parent, outcomes, stopped_by_budget, time.monotonic() - started, tracking)


    def _parent_run(self, study) -> str:
        from pipelines.tracking import runs as tracking

        run_id = study.user_attrs.get("mlflow_parent_run_id")
        with tracking.run(self.params, self.project, run_id=run_id, run_name=f"{self.project}-sweep-{self.name}",
                          tags={"stage": "sweep", "project": self.project, "sweep.name": self.name,
                                "sweep.sampler": self.sampler}) as parent:
            tracking.log_params({f"search.{d.key}": study.user_attrs["search_space"][d.key] for d in self.dimensions})
        study.set_user_attr("mlflow_parent_run_id", parent)
        return parent

    def _trial(self, study, trial, parent: str) -> Outcome:
        import optuna

        from pipelines.tracking import runs as tracking

        experiment = f"{self.name}-{trial.number}"
        overrides = [_dvc_override(self.raw, self.project, k, v) for k, v in trial.params.items()]
        sweep_env = {ENV_STORAGE: self.storage, ENV_STUDY: self.name, ENV_TRIAL: str(trial._trial_id),
                     ENV_PRUNER: self.pruner, ENV_PARENT: parent,
                     # the temporary workspace must log into this project's store, not one of its own
                     "MLFLOW_TRACKING_URI": tracking.tracking_uri(),
                     # The pruner's verdict stops the Trainer of the process that asked: on one of
                     # several processes it would stop alone and leave the others waiting.
                     "PIPELINES_NUM_PROCESSES": "1"}
        logger.info("trial %d: %s", trial.number, ", ".join(f"{k}={v}" for k, v in trial.params.items()))
        begin = time.monotonic()
        returncode, text = self.trials_on.run(experiment, overrides, sweep_env)
        seconds = time.monotonic() - begin
        outcome = Outcome(trial.number, experiment, dict(trial.params), "failed", seconds=seconds)
        if returncode != 0:
            if PRUNED_MESSAGE in text:
                outcome.state = "pruned"
                with self.lock:
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                lines = [line for line in text.splitlines() if line.strip()]
                errors = [line for line in lines if line.startswith("error:")] or \
                    [line for line in lines if "error" in line.lower()]
                outcome.error = (errors[-1] if errors else (lines[-1] if lines else f"exit code {returncode}"))[-500:]
                with self.lock:
                    trial.set_user_attr("error", outcome.error)
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
            logger.info("trial %d %s after %.0f s%s", trial.number, outcome.state, seconds,
                        f": {outcome.error}" if outcome.error else "")
            return outcome
        import dvc.api

        try:
            # The experiment's own report: metrics_show would also read the workspace's, which a
            # checkout that sends its trials to workers may never have made.
            report = json.loads(dvc.api.read(f"reports/{self.project}/finetune.json", repo=str(self.root),
                                             rev=experiment))
            outcome.value = float(report["best_validation"])
        except Exception as exc:  # the experiment ran but its validation cannot be read: a failed trial
            outcome.error = f"validation metric of experiment {experiment} not readable: {exc}"[:500]
            with self.lock:
                trial.set_user_attr("error", outcome.error)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return outcome
        outcome.state = "complete"
        with self.lock:
            trial.set_user_attr("experiment", experiment)
            trial.set_user_attr("mlflow_run_id", report.get("mlflow_run_id"))
            study.tell(trial, outcome.value)
        logger.info("trial %d: validation %s %.4f (%.0f s)", trial.number, self.metric, outcome.value, seconds)
        return outcome

    def _report(self, study, parent: str, outcomes: list[Outcome], stopped_by_budget: bool, seconds: float,
                tracking) -> dict:
        import optuna

        trials = study.get_trials(deepcopy=False)
        rows = [{"trial": t.number, "state": t.state.name.lower(), "value": t.value,
                 "experiment": t.user_attrs.get("experiment"), "error": t.user_attrs.get("error"),
                 **{f"param.{k}": v for k, v in t.params.items()}}
                for t in trials if not t.user_attrs.get("interrupted")]
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = study.best_trial if complete else None
        summary = {
            "sweep": self.name, "project": self.project, "sampler": self.sampler, "metric": f"validation {self.metric}",
            "direction": study.direction.name.lower(),
            "trials_on": self.trials_on.where, "trials_this_run": len(outcomes), "stopped_by_budget": stopped_by_budget, "seconds": round(seconds, 1),
            "counts": {s: sum(1 for r in rows if r["state"] == s) for s in ("complete", "pruned", "fail")},
            "best": None if best is None else {"trial": best.number, "value": best.value, "params": best.params,
                                               "experiment": best.user_attrs.get("experiment")},
            "trials": rows, "storage": self.storage, "mlflow_parent_run_id": parent,
        }
        with tracking.run(self.params, self.project, run_id=parent):
            tracking.log_table(rows, "sweep/trials.json")
            if best is not None:
                tracking.log_metrics({f"best_validation_{self.metric}": best.value, "best_trial": best.number},
                                     prefix="sweep/")
                tracking.set_tags({"sweep.best_experiment": best.user_attrs.get("experiment", "")})
            tracking.log_metrics({f"trials_{k}": v for k, v in summary["counts"].items()}, prefix="sweep/")
            for name, fig in _figures(study):
                tracking.log_figure(fig, f"sweep/{name}.png")
        return summary


def _figures(study):
    """Optuna's pictures of the study, drawn with matplotlib (offline): the optimisation history, the
    parallel coordinates and the parameter importances (each when the study has enough trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as vis

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    plots = [("optimization_history", vis.plot_optimization_history)]
    if len(complete) >= 2:
        plots.append(("parallel_coordinate", vis.plot_parallel_coordinate))
        if len({json.dumps(t.params, sort_keys=True, default=str) for t in complete}) >= 2:
            plots.append(("param_importances", vis.plot_param_importances))
    import warnings

    for name, plot in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib module experimental
                ax = plot(study)
            fig = (ax if not hasattr(ax, "__len__") else ax.flat[0]).figure
            yield name, fig
            plt.close(fig)
        except (ValueError, RuntimeError) as exc:  # too few distinct values for a picture: skip it
            logger.info("no %s picture: %s", name, exc)


def noise_margin(metric: str, value: float, examples: int) -> float:
    """How far a validation score may move by the draw of the validation split alone: one standard
    error of a proportion, sqrt(p (1 - p) / n), for accuracy; 0 for other metrics, whose spread the
    sweep cannot derive from one number."""
    if metric != "accuracy" or examples < 1:
        return 0.0
    return (value * (1.0 - value) / examples) ** 0.5


def workspace_baseline(root: Path, project: str, metric: str) -> dict | None:
    """The validation score of the configuration now in the workspace, with the margin a trial must
    beat it by: only when its finetune stage is up to date with params.yaml (else there is nothing
    measured to compare with)."""
    report = root / "reports" / project / "finetune.json"
    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json", f"finetune@{project}"], cwd=root,
                          capture_output=True, text=True)
    if proc.returncode != 0 or not report.is_file() or json.loads(proc.stdout or "{}"):
        return None
    value = json.loads(report.read_text()).get("best_validation")
    if value is None:
        return None
    validation = root / "data" / project / "splits" / "validation.jsonl"
    with validation.open(encoding="utf-8") as fh:
        examples = sum(1 for line in fh if line.strip())
    return {"value": float(value), "examples": examples,
            "margin": noise_margin(metric.removeprefix("validation ").strip(), float(value), examples)}


def keep_or_apply(best: dict, baseline: dict | None, metric: str, greater: bool, min_gain: float | None) -> dict:
    """Whether the best trial replaces the workspace's configuration: only when it beats the
    workspace's validation ``baseline`` (None: nothing to compare with) by more than ``min_gain`` (None:
    the baseline's noise margin), in the metric's direction (``greater``: higher is better)."""
    decision = {"applied": best["experiment"]}
    if baseline is None:
        return decision
    margin = baseline["margin"] if min_gain is None else min_gain
    gain = (best["value"] - baseline["value"]) * (1 if greater else -1)
    decision["workspace_validation"] = baseline["value"]
    decision["required_gain"] = round(margin, 6)
    if gain <= margin:
        decision = {**decision, "applied": None, "kept": "workspace", "reason": (
            f"the best trial ({best['experiment']}, {metric} {best['value']:.4f}) is not better than "
            f"the workspace's configuration ({baseline['value']:.4f}) by more than {margin:.4f}"
            + (f", one standard error on {baseline['examples']} validation examples" if min_gain is None else "")
            + "; the workspace's configuration is kept (--min-gain 0 applies the best trial anyway)")}
        logger.info("%s", decision["reason"])
    return decision


def apply_best(root: Path, project: str, summary: dict, min_gain: float | None = None) -> dict:
    """Apply the best trial to the workspace and score the test split once, with the usual evaluate.

    The workspace's own configuration, when its finetune is up to date, is kept unless the best trial
    beats its validation by more than ``min_gain`` (None: the noise margin of the validation split,
    ``noise_margin``): a gain smaller than that is the validation split's draw, not the settings'."""
    best = summary.get("best")
    if not best or not best.get("experiment"):
        raise PipelineError(f"sweep {summary['sweep']}: no trial completed, so there is nothing to apply")
    greater = summary.get("direction", "maximize") == "maximize"
    decision = keep_or_apply(best, workspace_baseline(root, project, summary["metric"]), summary["metric"], greater,
                             min_gain)
    commands = ([["exp", "apply", best["experiment"]]] if decision["applied"] else []) + [
        ["repro", f"evaluate@{project}"]]
    for cmd in commands:
        proc = subprocess.run([sys.executable, "-m", "dvc", *cmd], cwd=root, capture_output=True, text=True)
        text = proc.stdout + proc.stderr
        # The trial ran up to finetune, so the experiment has no outputs of the later stages to check
        # out; apply says so after it has applied the params and the trial's outputs. repro makes them.
        if proc.returncode != 0 and not (cmd[0] == "exp" and "Checkout failed" in text):
            raise PipelineError(f"dvc {' '.join(cmd)} failed:\n{text[-2000:]}")
    evaluation = json.loads((root / "reports" / project / "evaluate.json").read_text())
    primary = evaluation["primary_metric"]
    return {**decision, "test_metric": primary, "test_value": evaluation["full"][primary]}
