"""Stage finetune: train the task model from the pretrained weights, validate each epoch, keep the
best checkpoint, stop early, and resume from the last checkpoint after an interruption.

The MLflow run started here is the run of this model: evaluate and export add to it.
"""

from __future__ import annotations

import logging
import math

from pipelines.training import distributed
from pipelines.sweep import trial as sweep_trial
from pipelines.tracking import runs as tracking
from pipelines.config import Params, flatten
from pipelines.core.errors import TrainingError
from pipelines.core.io import atomic_dir, content_hash, read_json, write_csv, write_json
from pipelines.core.paths import ProjectPaths
from pipelines.data.lengths import resolved
from pipelines.tasks import get_task
from pipelines.data.tokenization import load_tokenizers
from pipelines.training.harness import (KeepKeys, build_args, curve_rows, fingerprint, prepare_checkpoint_dir, resolve_device, resolve_precision, resume_settings, save_resume_state, train, with_step_floor)

logger = logging.getLogger(__name__)


def init_source(paths: ProjectPaths) -> str:
    """The folder finetune starts from, or the checkpoint name pretrain recorded."""
    marker = paths.init_marker
    return read_json(marker)["checkpoint"] if marker.exists() else str(paths.pretrained)


def lineage_tags(paths: ProjectPaths) -> dict[str, str]:
    """Tags tying the run to the data it saw: DVC's hashes from dvc.lock and our own content hashes."""
    from pipelines.core.dvc_lock import locked_hashes

    tags = {f"dvc.{k}": v for k, v in locked_hashes(paths.root, [paths.splits, paths.encoded]).items()}
    # Only what training reads: fine-tuning never opens the test split (a sweep's trials are chosen on
    # validation alone); export records the test split's hash with the model.
    for split in ("train", "validation"):
        tags[f"data.{split}.sha256"] = content_hash(paths.splits / f"{split}.jsonl")
    return tags


def run(params: Params, project: str) -> dict:
    import datasets
    from transformers import set_seed

    cfg = resolved(params.project(project), ProjectPaths.of(project).tokenizer, decoding=False)
    task = get_task(cfg.task)
    impl = task.impl()
    paths = ProjectPaths.of(project)
    device = resolve_device(params)
    distributed.join(device)
    precision = resolve_precision(cfg.finetune, device, f"projects.{project}.finetune")
    tokenizers = load_tokenizers(paths.tokenizer)
    dsd = datasets.load_from_disk(str(paths.encoded))
    step_floor, epochs_derived = with_step_floor(cfg.finetune, len(dsd["train"]))
    cfg = cfg.model_copy(update={"finetune": step_floor})
    init = init_source(paths)
    # The fresh weights (a new head, or a model from scratch) come from the seed, not from whatever
    # consumed the global RNG before this line.
    set_seed(params.common.seed)
    model = impl.build_model(cfg, init, dsd, tokenizers)
    collator = KeepKeys(impl.collator(tokenizers, cfg, model), impl.FINETUNE_KEYS)

    ckpt = paths.checkpoints
    fp = fingerprint("finetune", cfg.model.model_dump(), resume_settings(cfg.finetune), params.common.seed,
                     content_hash(paths.encoded), content_hash(paths.pretrained), precision)
    state = prepare_checkpoint_dir(ckpt, fp) or {}
    tags = {"stage": "finetune", "project": project, "task": task.name, "model.init": cfg.model.init,
            **tracking.git_commit(), **lineage_tags(paths), **sweep_trial.parent_run_tags()}
    with tracking.run(params, project, run_id=state.get("run_id"), run_name=f"{project}-finetune",
                      tags=tags, superseded_run_id=state.get("superseded_run_id")) as run_id:
        save_resume_state(ckpt, {"fingerprint": fp, "run_id": run_id})
        if state.get("run_id"):
            tracking.set_tags({"resumed": "true"})
        everything = {"seed": params.common.seed, **flatten(cfg, "")}
        tracking.log_params(everything)
        # Validation generates greedily up to the target length: cheap enough for every epoch.
        args = build_args(cfg.finetune, ckpt, device, precision, params.common.seed, evaluate=True,
                          best_metric=impl.metric_for_best_model(cfg), generates=impl.generates_text,
                          generation_max_length=cfg.tokenizer.max_target_length, generation_num_beams=1)
        reporter = sweep_trial.trial_callback(args.metric_for_best_model)  # None outside a sweep
        outcome = train(model, args, dsd["train"], impl.eval_dataset(dsd, cfg), collator, ckpt,
                        callbacks=[tracking.trainer_callback()] + ([reporter] if reporter else []),
                        compute_metrics=impl.compute_metrics_fn(
                            dsd, tokenizers, cfg), early_stopping_patience=cfg.finetune.early_stopping_patience,
                        trainer_cls=impl.trainer_class(), save_steps=cfg.finetune.save_steps,
                        auto_batch_size=cfg.finetune.auto_batch_size, min_steps=cfg.finetune.min_steps,
                        extra_trainer_kwargs=impl.trainer_kwargs(tokenizers, cfg))
        if reporter is not None and reporter.pruned_at is not None:
            tracking.set_tags({"sweep.state": "pruned"})
            raise sweep_trial.TrialPruned(f"trial {sweep_trial.PRUNED_MESSAGE} after epoch {reporter.pruned_at}: its validation "
                                    f"{args.metric_for_best_model} trails the other trials'; nothing of it is kept")
        diverged = [row["loss"] for row in outcome.log_history if "loss" in row and not math.isfinite(row["loss"])]
        if diverged or not math.isfinite(outcome.report.get("train_loss", 0.0)):
            raise TrainingError(f"the training loss diverged ({(diverged or [outcome.report['train_loss']])[0]}): lower "
                                f"projects.{project}.finetune.learning_rate or set finetune.max_grad_norm; nothing was "
                                "saved")
        losses, evals = curve_rows(outcome.log_history)
        best = outcome.trainer.state.best_metric
        report = {**outcome.report, "mlflow_run_id": run_id, "best_validation": best,
                  "validation_metric": args.metric_for_best_model, "epochs_derived": epochs_derived}
        if distributed.is_main_process():  # for the report; the trained model alone, no collective
            report.update(impl.training_diagnostics(outcome.trainer.model, dsd, collator, cfg))
        tracking.log_metrics({k: v for k, v in report.items() if k != "best_validation"}, prefix="train/")
        if best is not None:
            tracking.log_metrics({f"validation/best_{args.metric_for_best_model.removeprefix('eval_')}": best})
        impl.check_trained(report, cfg)
    if not distributed.is_main_process():  # the main process writes the outputs
        return report
    with atomic_dir(paths.finetuned) as tmp:
        outcome.trainer.save_model(str(tmp))
    write_csv(paths.plot("finetune_loss.csv"), losses, ["step", "epoch", "loss", "learning_rate"])
    # The task's primary metric last: the column dvc.yaml's plot of this file draws.
    primary = f"eval_{task.primary_metric}"
    eval_cols = sorted({k for r in evals for k in r}, key=lambda k: (k != "epoch", k == primary, k))
    write_csv(paths.plot("finetune_validation.csv"), evals, eval_cols or ["epoch"])
    write_json(paths.report("finetune"), report)
    return report
