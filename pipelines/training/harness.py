"""The training harness shared by pretrain and finetune of every task.

It wraps the transformers ``Trainer``: device and mixed precision from params and the machine,
checkpoints every ``save_steps`` and at each epoch end, resume from the last checkpoint when a
re-run finds one made with the same inputs and settings, and a report of throughput and memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pipelines.training import distributed
from pipelines.core import settings
from pipelines.core.errors import ConfigError

logger = logging.getLogger(__name__)

# Settings that may change between an interrupted run and its resumption without invalidating
# the checkpoints: they change how often things are written, or whether the result is accepted,
# not what is learnt.
RESUME_SAFE_KEYS = {"save_steps", "logging_steps", "precision_fallback", "min_source_gain"}


# --------------------------------------------------------------------------- device and precision
def resolve_device(params) -> str:
    """cuda or cpu: PIPELINES_DEVICE, else runtime.device, where auto picks CUDA when present."""
    wanted = settings.get("PIPELINES_DEVICE") or params.runtime.device
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def cpu_supports_bf16() -> bool:
    """True when the processor has native bf16 (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(train_cfg, device: str, key: str) -> str:
    """fp32, bf16 or fp16 for this device; an impossible choice is an error unless fallback is allowed."""
    want = train_cfg.precision
    if want == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    problem = None
    if want == "fp16" and device != "cuda":
        problem = "fp16 needs a CUDA device"
    elif want == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        problem = "this GPU has no bf16"
    elif want == "bf16" and device == "cpu" and not cpu_supports_bf16():
        problem = "this processor has no native bf16 (avx512_bf16 / amx_bf16)"
    if problem:
        if train_cfg.precision_fallback:
            logger.warning("%s.precision=%s: %s; falling back to fp32 (precision_fallback is true)", key, want, problem)
            return "fp32"
        raise ConfigError(
            f"{key}.precision={want!r}: {problem} ({device}). Use 'fp32' or 'auto', "
            f"or set {key}.precision_fallback: true to fall back to fp32 with a warning"
        )
    return want


# --------------------------------------------------------------------------- fingerprints
def fingerprint(*parts: Any) -> str:
    """A stable hash of settings and input hashes: checkpoints are resumed only under the same one."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resume_settings(train_cfg) -> dict:
    """What must not change for checkpoints to be resumed: the training block, less RESUME_SAFE_KEYS,
    and the number of processes, which sets the effective batch (absent on one process)."""
    kept = {k: v for k, v in train_cfg.model_dump().items() if k not in RESUME_SAFE_KEYS}
    if distributed.world_size() > 1:
        kept["processes"] = distributed.world_size()
    return kept


def prepare_checkpoint_dir(ckpt_dir: Path, fp: str) -> dict | None:
    """Keep the checkpoints of an interrupted run with the same fingerprint; wipe any other.

    Returns the state saved by the interrupted run (e.g. its MLflow run id), or None. When other
    checkpoints are wiped, ``{"superseded_run_id": ...}`` names their MLflow run, which nothing
    will continue: left RUNNING by an interruption, it can then be closed. Of several processes the
    main one decides (the others get None) and all leave once the folder is ready for resuming.
    """
    state = _keep_or_wipe_checkpoints(Path(ckpt_dir), fp) if distributed.is_main_process() else None
    distributed.barrier()
    return state


def _keep_or_wipe_checkpoints(ckpt_dir: Path, fp: str) -> dict | None:
    state_file = ckpt_dir / "resume.json"
    state = None
    if state_file.exists():
        try:
            state = json.loads(state_file.read_text())
        except json.JSONDecodeError:
            state = None
    if state is None or state.get("fingerprint") != fp:
        if ckpt_dir.exists() and any(ckpt_dir.iterdir()):
            logger.info("checkpoints in %s belong to other inputs or settings; starting afresh", ckpt_dir)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        superseded = (state or {}).get("run_id")
        return {"superseded_run_id": superseded} if superseded else None
    return state


def save_resume_state(ckpt_dir: Path, state: dict) -> None:
    """Record what a resumed run continues (the main process's MLflow run); other processes write nothing."""
    from pipelines.core.io import write_json

    if distributed.is_main_process():
        write_json(Path(ckpt_dir) / "resume.json", state)


def last_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest complete checkpoint folder, if any (a folder without trainer_state.json is partial)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return None
    done = [p for p in ckpt_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    if not done:
        return None
    return str(max(done, key=lambda p: int(p.name.split("-")[-1])))


# --------------------------------------------------------------------------- the Trainer
def _save_every_n_steps_callback(n: int):
    from transformers import TrainerCallback

    class SaveEveryNSteps(TrainerCallback):
        """Mid-epoch checkpoints, so a killed run loses at most n steps (epoch ends save as well)."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % n == 0:
                control.should_save = True
            return control

    return SaveEveryNSteps()


class KeepKeys:
    """Wrap a collator so that only the model's inputs reach it (a dataset carries more columns)."""

    def __init__(self, collator, keys):
        self.collator, self.keys = collator, tuple(keys)

    def __call__(self, features):
        return self.collator([{k: f[k] for k in self.keys if k in f} for f in features])


@dataclass
class TrainOutcome:
    trainer: Any
    report: dict
    log_history: list[dict] = field(default_factory=list)


def with_step_floor(train_cfg, rows: int) -> tuple[Any, dict | None]:
    """``train_cfg`` with its epochs raised to reach ``min_steps`` optimizer steps on ``rows`` training
    examples, and what was derived (None when epochs already reach it, or max_steps rules)."""
    if not train_cfg.min_steps or train_cfg.max_steps > 0:
        return train_cfg, None
    per_step = train_cfg.batch_size * train_cfg.gradient_accumulation_steps * distributed.world_size()
    steps_per_epoch = max(1, math.ceil(rows / per_step))
    if train_cfg.epochs * steps_per_epoch >= train_cfg.min_steps:
        return train_cfg, None
    epochs = math.ceil(train_cfg.min_steps / steps_per_epoch)
    derived = {"epochs": epochs, "set": train_cfg.epochs, "steps_per_epoch": steps_per_epoch,
               "min_steps": train_cfg.min_steps, "rows": rows}
    logger.info("%d training rows make %d steps an epoch: %s epochs raised to %d to reach min_steps %d", rows,
                steps_per_epoch, train_cfg.epochs, epochs, train_cfg.min_steps)
    return train_cfg.model_copy(update={"epochs": epochs}), derived


def build_args(train_cfg, ckpt_dir: Path, device: str, precision: str, seed: int, *, evaluate: bool,
               best_metric: tuple[str, bool] | None, generates: bool = False, generation_max_length: int | None = None,
               generation_num_beams: int | None = None):
    """TrainingArguments from a pretrain / finetune block."""
    from transformers import Seq2SeqTrainingArguments, TrainingArguments

    cls = Seq2SeqTrainingArguments if generates else TrainingArguments
    kwargs: dict[str, Any] = dict(
        output_dir=str(ckpt_dir),
        num_train_epochs=train_cfg.epochs,
        max_steps=train_cfg.max_steps,
        per_device_train_batch_size=train_cfg.batch_size,
        per_device_eval_batch_size=train_cfg.batch_size,
        gradient_accumulation_steps=train_cfg.gradient_accumulation_steps,
        learning_rate=train_cfg.learning_rate,
        weight_decay=train_cfg.weight_decay,
        warmup_steps=train_cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps
        max_grad_norm=train_cfg.max_grad_norm,
        label_smoothing_factor=getattr(train_cfg, "label_smoothing", 0.0),
        lr_scheduler_type="linear",
        logging_steps=train_cfg.logging_steps,
        logging_strategy="steps",
        eval_strategy="epoch" if evaluate else "no",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=bool(evaluate and best_metric),
        seed=seed,
        data_seed=seed,
        use_cpu=device == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=train_cfg.gradient_checkpointing,
        # Batches of similar length waste less compute on padding.
        train_sampling_strategy="group_by_length" if train_cfg.group_by_length else "random",
        length_column_name="length",
        dataloader_num_workers=settings.get("PIPELINES_NUM_WORKERS"),
        report_to="none",
        disable_tqdm=not settings.get("PIPELINES_PROGRESS"),
        remove_unused_columns=False,
        # A loss that became nan or inf is logged as it is (the Trainer would log the running mean
        # instead), so finetune can stop a diverged training rather than save it.
        logging_nan_inf_filter=False,
    )
    if distributed.world_size() > 1:
        kwargs["ddp_backend"] = distributed.backend(device)
        # Every parameter of our models takes part in each step's loss, so DDP need not search the
        # graph for unused ones after each backward (and must not, with gradient checkpointing).
        kwargs["ddp_find_unused_parameters"] = False
    if evaluate and best_metric:
        kwargs["metric_for_best_model"] = best_metric[0]
        kwargs["greater_is_better"] = best_metric[1]
    if generates:
        kwargs["predict_with_generate"] = True
        kwargs["generation_max_length"] = generation_max_length
        kwargs["generation_num_beams"] = generation_num_beams
    # Unknown arguments raise here rather than being dropped: a renamed option (group_by_length
    # became train_sampling_strategy in transformers 5) must not silently do nothing.
    return cls(**kwargs)


def is_out_of_memory(exc: BaseException) -> bool:
    """An out-of-memory error of any device (accelerate knows the messages)."""
    from accelerate.utils.memory import should_reduce_batch_size

    return should_reduce_batch_size(exc)


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_trainer(model, args, train_ds, eval_ds, collator, *, trainer_cls=None, **kwargs):
    """A Trainer (or Seq2SeqTrainer) whose gradient accumulation, and processes, match the large batch."""
    from transformers import Trainer

    trainer = (trainer_cls or Trainer)(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                                       data_collator=collator, **kwargs)
    # Our models return a per-batch mean loss that ignores num_items_in_batch, but accept **kwargs.
    # Taking them for models that normalise by the items of the whole step, transformers 5 would skip
    # dividing the loss by the accumulation steps (tests/test_training.py) and, on several processes,
    # multiply it by their number before DDP averages the gradients (tests/test_distributed.py):
    # gradients would grow with either. Label smoothing then also averages over its micro-batch.
    trainer.model_accepts_loss_kwargs = False
    trainer.loss_is_scaled_for_ga = False
    return trainer


def early_stopping(patience: int, min_steps: int = 0):
    """transformers' early stopping (after ``patience`` evaluations without a better validation metric) that
    never stops before ``min_steps`` optimizer steps: a small training split's first epochs are a few steps
    each, too few to judge the model by. Evaluations without improvement before the floor still count."""
    from transformers import EarlyStoppingCallback

    class FlooredEarlyStopping(EarlyStoppingCallback):
        def on_evaluate(self, args, state, control, metrics, **kwargs):
            stopping = control.should_training_stop  # set by something else: left as it is
            super().on_evaluate(args, state, control, metrics, **kwargs)
            if state.global_step < min_steps and not stopping:
                control.should_training_stop = False

    return FlooredEarlyStopping(early_stopping_patience=patience)


def train(model, args, train_ds, eval_ds, collator, ckpt_dir: Path, *, callbacks=(), compute_metrics=None,
          early_stopping_patience: int = 0, trainer_cls=None, save_steps: int = 50, extra_trainer_kwargs=None,
          auto_batch_size: bool = False, min_steps: int = 0) -> TrainOutcome:
    """Run the Trainer, resuming from the last checkpoint in ``ckpt_dir`` when there is one. Early stopping
    never ends training before ``min_steps`` optimizer steps."""

    if auto_batch_size and distributed.world_size() > 1:
        # A batch halved on the process that ran out of memory alone would leave the others waiting.
        raise ConfigError(f"auto_batch_size: true does not work on {distributed.world_size()} processes "
                          "(PIPELINES_NUM_PROCESSES): set a batch_size that fits and auto_batch_size: false, or "
                          "train on one process")
    cbs = list(callbacks) + [_save_every_n_steps_callback(save_steps)]
    if early_stopping_patience and args.load_best_model_at_end:
        cbs.append(early_stopping(early_stopping_patience, min_steps))
    resume = last_checkpoint(ckpt_dir)
    if resume:
        logger.info("resuming from %s", resume)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    backoffs = []
    while True:
        trainer = make_trainer(model, args, train_ds, eval_ds, collator, trainer_cls=trainer_cls,
                               compute_metrics=compute_metrics, callbacks=cbs, **(extra_trainer_kwargs or {}))
        try:
            result = trainer.train(resume_from_checkpoint=resume)
            break
        except RuntimeError as exc:
            if not (auto_batch_size and is_out_of_memory(exc)) or args.per_device_train_batch_size == 1:
                raise
            # Halve the micro-batch and double accumulation: the effective batch, and so the
            # optimisation, stay the same; only memory per step shrinks.
            old = args.per_device_train_batch_size
            args.per_device_train_batch_size = old // 2
            args.gradient_accumulation_steps *= 2
            backoffs.append(old)
            logger.warning("out of memory at batch size %d; retrying with %d x %d accumulation", old,
                           args.per_device_train_batch_size, args.gradient_accumulation_steps)
            del trainer
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            resume = last_checkpoint(ckpt_dir)
    wall = time.perf_counter() - start

    n_examples = len(train_ds)
    tokens = int(sum(train_ds["length"])) if "length" in train_ds.column_names else None
    epochs_done = float(trainer.state.epoch or 0)
    report = {
        "train_loss": result.training_loss,
        "global_steps": trainer.state.global_step,
        "epochs": epochs_done,
        "train_seconds": wall,
        "resumed_from": Path(resume).name if resume else None,
        "examples_per_second": result.metrics.get("train_samples_per_second"),
        "tokens_per_second": (tokens * epochs_done / result.metrics["train_runtime"])
        if tokens and result.metrics.get("train_runtime") else None,
        # train_batch_size counts the GPUs of DataParallel; world_size the processes of DDP.
        "effective_batch_size": args.train_batch_size * args.gradient_accumulation_steps * args.world_size,
        "processes": args.world_size,
        "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
        "device": str(args.device),
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "best_checkpoint": Path(trainer.state.best_model_checkpoint).name if trainer.state.best_model_checkpoint
        else None,
        "examples": n_examples,
    }
    if auto_batch_size:
        report["auto_batch_size"] = {"settled": args.per_device_train_batch_size,
                                     "gradient_accumulation_steps": args.gradient_accumulation_steps,
                                     "tried": backoffs + [args.per_device_train_batch_size]}
    return TrainOutcome(trainer, report, list(trainer.state.log_history))


def curve_rows(log_history: list[dict]) -> tuple[list[dict], list[dict]]:
    """Training-loss rows (one per logging step) and validation rows (one per epoch), for plots."""
    train_rows, eval_rows = [], []
    for e in log_history:
        if "loss" in e and "step" in e:
            train_rows.append({"step": e["step"], "epoch": e.get("epoch"), "loss": e["loss"],
                               "learning_rate": e.get("learning_rate")})
        elif "eval_loss" in e:
            eval_rows.append({k: v for k, v in e.items() if isinstance(v, (int, float)) and not k.endswith(
                ("_runtime", "_per_second"))})
    return train_rows, eval_rows
