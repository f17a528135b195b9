"""Knowledge distillation: a smaller student initialised from the teacher's layers where shapes
match, then trained to match the teacher's outputs (soft KL at a temperature mixed with the hard
cross-entropy; token-level for seq2seq, with teacher forcing). The training is the pipeline's
training harness (:func:`pipelines.training.harness.train`) with a Trainer whose loss is the distillation
loss, so it has what every training has: mixed precision, checkpoints and resume, gradient
clipping at ``max_grad_norm``, and its curves in MLflow."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import torch
from torch import nn

from pipelines.core.errors import ConfigError

# A block of a stack: BERT and BART number `layer.N` / `layers.N`, T5 `block.N` (whose sub-modules are
# themselves `layer.M`: the first numbered segment is the stack).
_LAYER_KEY = re.compile(r"^(.*?\.(?:layers?|block))\.(\d+)\.(.*)$")


def student_config(teacher_config, shape: dict):
    """A copy of the teacher's config with ``shape`` ({config attribute: value or None}) applied;
    None keeps the teacher's value, ``"half"`` halves it (at least 1), and a student larger than the
    teacher is a config error."""
    config = copy.deepcopy(teacher_config)
    shape = {k: max(1, getattr(config, k) // 2) if v == "half" else v for k, v in shape.items()}
    too_big = [f"{k}={v} > teacher's {getattr(config, k)}" for k, v in shape.items()
               if v is not None and v > getattr(config, k)]
    if too_big:
        raise ConfigError(f"compress.distillation: the student would be larger than the teacher ({', '.join(too_big)})")
    for key, value in shape.items():
        if value is not None:
            setattr(config, key, value)
    return config


def teacher_layers(n_student: int, n_teacher: int) -> list[int]:
    """Which teacher layers initialise a shallower student: every k-th from the first, as DistilBERT does."""
    return [i * n_teacher // n_student for i in range(n_student)]


def copy_matching_weights(student: nn.Module, teacher: nn.Module) -> dict:
    """Initialise the student from the teacher wherever shapes allow: every tensor with the same
    name and shape is copied; student block i of a stack takes teacher block ``teacher_layers(...)[i]``
    of the same stack. Returns how many tensors were copied and how many were left as initialised."""
    t_state = teacher.state_dict()
    depth: dict[str, int] = {}
    for key in t_state:
        m = _LAYER_KEY.match(key)
        if m:
            depth[m.group(1)] = max(depth.get(m.group(1), 0), int(m.group(2)) + 1)
    s_depth: dict[str, int] = {}
    for key in student.state_dict():
        m = _LAYER_KEY.match(key)
        if m:
            s_depth[m.group(1)] = max(s_depth.get(m.group(1), 0), int(m.group(2)) + 1)
    maps = {stack: teacher_layers(n, depth.get(stack, n)) for stack, n in s_depth.items()}
    copied, kept = 0, 0
    with torch.no_grad():
        for key, tensor in student.state_dict().items():
            m = _LAYER_KEY.match(key)
            source = f"{m.group(1)}.{maps[m.group(1)][int(m.group(2))]}.{m.group(3)}" if m else key
            src = t_state.get(source)
            if src is not None and src.shape == tensor.shape:
                tensor.copy_(src)
                copied += 1
            else:
                kept += 1
    return {"tensors_from_teacher": copied, "tensors_initialised": kept, "teacher_layers": maps}


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """alpha * T^2 * KL(teacher || student at temperature T) + (1 - alpha) * cross-entropy with the
    labels, over the positions whose label is not -100 (every example for classification, every
    target token for seq2seq). Returns (loss, soft part, hard part)."""
    import torch.nn.functional as F

    keep = labels != -100
    s, t, y = student_logits[keep].float(), teacher_logits[keep].float(), labels[keep]
    soft = F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1), log_target=True,
                    reduction="batchmean") * temperature ** 2
    hard = F.cross_entropy(s, y)
    return alpha * soft + (1 - alpha) * hard, soft.detach(), hard.detach()


def distillation_trainer_class():
    """The Trainer subclass (built on first use: transformers is imported only when training)."""
    from transformers import Trainer

    class DistillationTrainer(Trainer):
        """A Trainer whose loss is :func:`distillation_loss` against a frozen teacher that sees the
        same batch (for seq2seq, the same decoder inputs). It also logs the soft and hard parts."""

        def __init__(self, *args, teacher: nn.Module, temperature: float, alpha: float, **kwargs):
            super().__init__(*args, **kwargs)
            self.teacher = teacher.to(self.args.device).eval()
            self.temperature, self.alpha = temperature, alpha
            self.window: dict[str, list[float]] = {"loss": [], "soft_loss": [], "hard_loss": []}
            self.last: dict[str, float] = {}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            with torch.no_grad(), self.accelerator.autocast():
                teacher_logits = self.teacher(**inputs).logits
            outputs = model(**inputs)
            loss, soft, hard = distillation_loss(outputs.logits, teacher_logits, labels, self.temperature, self.alpha)
            if model.training:
                for key, value in (("loss", loss), ("soft_loss", soft), ("hard_loss", hard)):
                    self.window[key].append(float(value.detach()))
            return (loss, outputs) if return_outputs else loss

        def log(self, logs, start_time=None):
            if "loss" in logs and self.window["loss"]:
                self.last = self.means()
                logs = {**logs, "soft_loss": self.last["soft_loss"], "hard_loss": self.last["hard_loss"]}
                self.window = {k: [] for k in self.window}
            super().log(logs, start_time)

        def means(self) -> dict[str, float]:
            return {k: sum(v) / len(v) for k, v in self.window.items() if v}

        def final_losses(self) -> dict[str, float]:
            """The mean losses of the last steps: since the last log, else the last log's."""
            return self.means() or self.last

    return DistillationTrainer


def distill(student: nn.Module, teacher: nn.Module, dataset, collator, settings, ckpt_dir: Path, *, seed: int,
            device: str = "cpu", precision: str = "fp32", epochs: float | None = None, callbacks=()) -> dict:
    """Train ``student`` to match ``teacher`` on ``dataset``. ``settings`` is the
    compress.distillation block (its loss settings and every training setting); ``epochs`` replaces
    its epochs (the pruned variant's recovery). A run interrupted after a checkpoint in ``ckpt_dir``
    resumes there; the caller clears the folder when the inputs change
    (:func:`pipelines.training.harness.prepare_checkpoint_dir`)."""
    from pipelines.training.harness import build_args, train

    if epochs is not None:
        settings = settings.model_copy(update={"epochs": epochs})
    torch.manual_seed(seed)
    args = build_args(settings, Path(ckpt_dir), device, precision, seed, evaluate=False, best_metric=None)
    outcome = train(student, args, dataset, None, collator, Path(ckpt_dir), callbacks=callbacks,
                    trainer_cls=distillation_trainer_class(), save_steps=settings.save_steps,
                    auto_batch_size=settings.auto_batch_size,
                    extra_trainer_kwargs={"teacher": teacher, "temperature": settings.temperature,
                                          "alpha": settings.alpha})
    final = outcome.trainer.final_losses()
    student.eval()
    report = outcome.report
    return {"steps": report["global_steps"], "epochs": settings.epochs, "train_seconds": report["train_seconds"],
            "examples_per_second": report["examples_per_second"], "precision": report["precision"],
            "resumed_from": report["resumed_from"], "final_loss": final.get("loss", report["train_loss"]),
            "final_soft_loss": final.get("soft_loss"), "final_hard_loss": final.get("hard_loss")}
