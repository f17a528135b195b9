"""Stage pretrain: self-supervised pretraining on the training text when ``model.init`` is scratch
(masked language modelling for the encoder, denoising for encoder-decoders). With a checkpoint
it does no training and records which checkpoint finetune starts from.
"""

from __future__ import annotations

import logging

from pipelines.training import distributed
from pipelines.tracking import runs as tracking
from pipelines.config import Params, flatten
from pipelines.core.io import atomic_dir, content_hash, write_csv, write_json
from pipelines.core.paths import ProjectPaths
from pipelines.data.lengths import resolved
from pipelines.tasks import get_task
from pipelines.data.tokenization import load_tokenizers
from pipelines.training.harness import (KeepKeys, build_args, curve_rows, fingerprint, prepare_checkpoint_dir, resolve_device, resolve_precision, resume_settings, save_resume_state, train, with_step_floor)

logger = logging.getLogger(__name__)


def run(params: Params, project: str) -> dict:
    cfg = resolved(params.project(project), ProjectPaths.of(project).tokenizer, decoding=False)
    task = get_task(cfg.task)
    paths = ProjectPaths.of(project)
    if not cfg.model.from_scratch:
        report = {"pretrained": False, "init": cfg.model.init}
        if distributed.is_main_process():
            with atomic_dir(paths.pretrained) as tmp:
                write_json(tmp / paths.INIT_MARKER, {"checkpoint": cfg.model.init})
            write_json(paths.report("pretrain"), report)
            write_csv(paths.plot("pretrain_loss.csv"), [], ["step", "epoch", "loss", "learning_rate"])
            logger.info("model.init=%s: no pretraining", cfg.model.init)
        return report

    import datasets
    from transformers import set_seed

    impl = task.impl()
    device = resolve_device(params)
    distributed.join(device)
    precision = resolve_precision(cfg.pretrain, device, f"projects.{project}.pretrain")
    tokenizers = load_tokenizers(paths.tokenizer)
    dsd = datasets.load_from_disk(str(paths.encoded))
    train_ds, eval_ds = impl.pretrain_datasets(dsd, cfg)
    step_floor, epochs_derived = with_step_floor(cfg.pretrain, len(train_ds))
    cfg = cfg.model_copy(update={"pretrain": step_floor})
    # The fresh weights (a new head, or a model from scratch) come from the seed, not from whatever
    # consumed the global RNG before this line.
    set_seed(params.common.seed)
    model = impl.build_pretrain_model(cfg, tokenizers)
    collator = KeepKeys(impl.pretrain_collator(tokenizers, cfg), impl.PRETRAIN_KEYS)

    ckpt = paths.pretrain_checkpoints
    fp = fingerprint("pretrain", cfg.model.model_dump(), resume_settings(cfg.pretrain), params.common.seed,
                     content_hash(paths.encoded), precision)
    state = prepare_checkpoint_dir(ckpt, fp) or {}
    with tracking.run(params, project, run_id=state.get("run_id"), run_name=f"{project}-pretrain",
                      tags={"stage": "pretrain", "project": project, **tracking.git_commit()},
                      superseded_run_id=state.get("superseded_run_id")) as run_id:
        save_resume_state(ckpt, {"fingerprint": fp, "run_id": run_id})
        tracking.log_params(flatten({"model": cfg.model, "pretrain": cfg.pretrain, "seed": params.common.seed}))
        args = build_args(cfg.pretrain, ckpt, device, precision, params.common.seed, evaluate=True, best_metric=None)
        outcome = train(model, args, train_ds, eval_ds, collator, ckpt,
                        callbacks=[tracking.trainer_callback("pretrain")], save_steps=cfg.pretrain.save_steps,
                        auto_batch_size=cfg.pretrain.auto_batch_size)
        final_eval = outcome.trainer.evaluate()
        report = {**outcome.report, "pretrained": True, "eval_loss": final_eval.get("eval_loss"),
                  "mlflow_run_id": run_id, "epochs_derived": epochs_derived}
        tracking.log_metrics(report, prefix="pretrain/")
    if not distributed.is_main_process():  # the main process writes the outputs
        return report
    with atomic_dir(paths.pretrained) as tmp:
        outcome.trainer.save_model(str(tmp))
    losses, _ = curve_rows(outcome.log_history)
    write_csv(paths.plot("pretrain_loss.csv"), losses, ["step", "epoch", "loss", "learning_rate"])
    write_json(paths.report("pretrain"), report)
    return report
