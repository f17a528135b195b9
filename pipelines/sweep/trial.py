"""The side of a sweep that runs inside a trial's finetune stage: each validation reported to the
sweep's Optuna study, the pruner's verdict, and the trial's MLflow run made a child of the sweep's.
Outside a sweep (none of the PIPELINES_SWEEP_* settings set) it does nothing."""

from __future__ import annotations

from pipelines.core.errors import PipelineError

PRUNED_EXIT = 6
FIRST_PRUNABLE_EPOCH = 2  # the median pruner's earliest verdict
PRUNED_MESSAGE = "pruned by the sweep"
# What the trial's finetune stage reads to report to the study (set by the sweep, never by hand).
ENV_STORAGE, ENV_STUDY, ENV_TRIAL, ENV_PRUNER, ENV_PARENT = (
    "PIPELINES_SWEEP_STORAGE", "PIPELINES_SWEEP_STUDY", "PIPELINES_SWEEP_TRIAL_ID", "PIPELINES_SWEEP_PRUNER",
    "PIPELINES_SWEEP_PARENT_RUN")


class TrialPruned(PipelineError):
    """The sweep's pruner stopped this trial: its validation trails the other trials'."""

    exit_code = PRUNED_EXIT
    run_status = "KILLED"  # the trial's MLflow run: stopped on purpose, not failed


def trial_callback(metric: str):
    """A Trainer callback reporting each validation to the sweep's study, or None outside a sweep."""
    from pipelines.core import settings

    storage = settings.get(ENV_STORAGE)
    if not storage:
        return None
    import optuna
    from transformers import TrainerCallback

    study = optuna.load_study(study_name=settings.get(ENV_STUDY), storage=storage,
                              pruner=make_pruner(settings.get(ENV_PRUNER)))
    trial = optuna.trial.Trial(study, int(settings.get(ENV_TRIAL)))
    key = metric if metric.startswith("eval_") else f"eval_{metric}"

    class ReportToStudy(TrainerCallback):
        pruned_at: int | None = None

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if not metrics or key not in metrics:
                return
            step = max(1, round(state.epoch or 0))
            trial.report(float(metrics[key]), step)
            # At the last epoch the training is done: stopping it saves nothing, and would throw away
            # a finished trial that may be the best.
            if step < round(args.num_train_epochs) and trial.should_prune():
                self.pruned_at = step
                control.should_training_stop = True

    return ReportToStudy()


def parent_run_tags() -> dict[str, str]:
    """Tags that make a trial's MLflow run a child of its sweep's run (none outside a sweep)."""
    from pipelines.core import settings

    parent = settings.get(ENV_PARENT)
    return {"mlflow.parentRunId": parent, "sweep.trial": settings.get(ENV_TRIAL)} if parent else {}


def make_pruner(name: str):
    import optuna

    if name == "median":
        # Not on the first epoch: during the learning-rate warm-up a trial's first validation says
        # little of where it ends (SST-2: the best trial of a sweep validated at chance after epoch 1).
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=FIRST_PRUNABLE_EPOCH)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()
