"""What a task provides: the one interface every stage uses, with the defaults in one place.

A task is a :class:`~pipelines.tasks.TaskSpec` (its name, data fields, metric and the rules that
differ in cleaning; ``pipelines/tasks/__init__.py``) and a model module (``pipelines/tasks/<x>.py``)
that defines the functions and constants listed in :data:`REQUIRED`. A module may leave out any
name of :class:`Defaults`; the default below is used instead. Stages reach the module only through
``get_task(cfg.task).impl()``, which applies the defaults, and never branch on a task's name.

Arguments, everywhere: ``cfg`` is the project's validated block (``pipelines.config``), ``splits``
maps split name to cleaned records (canonical fields of the spec), ``tokenizers`` is the dict the
tokenize stage saved (``{"tokenizer": ...}``, plus ``"target"`` for two vocabularies), ``dsd`` the
encoded ``datasets.DatasetDict``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

# name -> what it must do. Checked for every registered task by tests/test_tasks.py.
REQUIRED: dict[str, str] = {
    "SEQ2SEQ": "True when the model generates text (Seq2SeqTrainer, generation during validation)",
    "PRETRAIN_KEYS": "the dataset columns the pretraining collator reads",
    "FINETUNE_KEYS": "the dataset columns the fine-tuning collator reads",
    "FIGURE_NAME": "file name of the evaluation figure logged to MLflow",
    "build_tokenizers": "(splits, cfg) -> tokenizers: trained on train only, or the checkpoint's (model.init)",
    "encode": "(splits, tokenizers, cfg) -> DatasetDict with FINETUNE_KEYS and a 'length' column",
    "pretrain_datasets": "(dsd, cfg) -> (train, eval) datasets of the self-supervised objective",
    "pretrain_collator": "(tokenizers, cfg) -> collator that corrupts inputs and makes labels",
    "build_pretrain_model": "(cfg, tokenizers) -> the model built from scratch for pretraining",
    "build_model": "(cfg, init, dsd, tokenizers) -> the model to fine-tune, from the pretrained folder or a checkpoint",
    "collator": "(tokenizers, cfg, model=None) -> fine-tuning collator",
    "metric_for_best_model": "(cfg) -> (validation metric name, greater is better)",
    "compute_metrics_fn": "(dsd, tokenizers, cfg) -> the Trainer's compute_metrics",
    "predict_texts": "(model, tokenizers, texts, cfg, device) -> one dict per text (the output the model serves)",
    "evaluate_model": "(model, tokenizers, records, cfg, device) -> {'metrics', 'primary', 'samples', ...}",
    "prediction_rows": "(records, result, cfg) -> one dict per test example (reports/<project>/predictions.jsonl): "
                       "'example', 'input', 'reference', 'prediction' and 'score' (that example's primary "
                       "metric, higher is better), plus what the task adds",
    "plot_rows": "(result) -> (rows, columns) of plots/<project>/evaluate.csv: 'actual' and 'predicted'",
    "figure": "(result) -> a matplotlib figure for the MLflow run",
    "export_onnx": "(model, tokenizers, records, folder, cfg) -> report; writes the ONNX graph(s), checked",
    "onnx_files": "(folder) -> the ONNX graph files export_onnx writes",
    "ort_model": "(folder, tokenizers, cfg) -> the ONNX graph(s) as a model predict_texts / evaluate_model take",
    "build_student": "(teacher, distillation settings) -> (student, init report): smaller, initialised from the teacher",
}


class Defaults:
    """What a task module may leave out, and what it then does."""

    # How the ONNX Runtime variants decode (None: no decoding, they compute the same function).
    ORT_DECODING = None

    @staticmethod
    def trainer_class():
        from transformers import Trainer

        return Trainer

    @staticmethod
    def trainer_kwargs(tokenizers, cfg) -> dict:
        return {}

    @staticmethod
    def eval_dataset(dsd, cfg):
        """The examples validation scores each epoch: all of the validation split."""
        return dsd["validation"]

    @staticmethod
    def training_diagnostics(model, dsd, collator, cfg) -> dict:
        """Figures about the trained model recorded in finetune.json (none by default)."""
        return {}

    @staticmethod
    def save_decoding_settings(folder, cfg) -> None:
        """Write the decoding settings into an exported model folder (nothing to write by default)."""

    @staticmethod
    def serving_params(cfg) -> dict:
        """The settings a request to the served model may change (name -> the model's value);
        none by default."""
        return {}

    @staticmethod
    def ort_latency_cfg(cfg):
        """The settings PyTorch is timed under when compared with the ONNX Runtime variants."""
        return cfg


class Implementation:
    """A task's model module with :class:`Defaults` for what it leaves out."""

    def __init__(self, module: ModuleType):
        self._module = module

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self._module, name)
        except AttributeError:
            pass
        if name in vars(Defaults):
            return getattr(Defaults, name)
        raise AttributeError(f"task module {self._module.__name__} has no {name!r}, and the task contract "
                             "(pipelines/tasks/contract.py) has no default for it")

    def missing(self) -> list[str]:
        """Names of REQUIRED the module does not define."""
        return [name for name in REQUIRED if not hasattr(self._module, name)]
