"""What a task's model code provides: the one interface every stage, predict, serving and the demo
use, with its defaults in one place.

A task implements :class:`TaskModel` in its model module (``pipelines/tasks/<task>/model.py``) and
its spec's ``model`` returns an instance; stages reach it through ``get_task(cfg.task).impl()`` and
never branch on a task's name. An abstract method must be implemented (a subclass that misses one
cannot be instantiated, and says which); the others have the default written here.

Arguments, everywhere: ``cfg`` is the project's validated block (its task's project class),
``splits`` maps split name to cleaned records (canonical fields of the spec), ``tokenizers`` is the
dict the tokenize stage saved (``{"tokenizer": ...}``, plus ``"target"`` for two vocabularies),
``dsd`` the encoded ``datasets.DatasetDict``, ``inputs`` a list of values of the task's input field
(texts, or image paths for an image task: whatever the spec's ``kinds`` says).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar

from pipelines.config.tasks import get_task
from pipelines.core.inputs import validate_texts


class TaskModel(ABC):
    """The model code of a task."""

    generates_text: ClassVar[bool] = False
    """The model generates its output text (validation decodes each epoch, predictions are strings)."""
    PRETRAIN_KEYS: ClassVar[tuple[str, ...]] = ()
    """The dataset columns the pretraining collator reads."""
    FINETUNE_KEYS: ClassVar[tuple[str, ...]] = ()
    """The dataset columns the fine-tuning collator reads."""
    FIGURE_NAME: ClassVar[str] = "evaluation.png"
    """File name of the evaluation figure logged to MLflow."""
    ORT_DECODING: ClassVar[str | None] = None
    """How the ONNX Runtime variants decode (None: no decoding, they compute the same function)."""

    # ------------------------------------------------------------------ data and tokenizers
    @abstractmethod
    def build_tokenizers(self, splits: dict[str, list[dict]], cfg) -> dict:
        """Tokenizers trained on train only, or the checkpoint's (model.init)."""

    @abstractmethod
    def token_lengths(self, records: list[dict], tokenizers: dict, cfg) -> dict[str, list[int]]:
        """Untruncated length in tokens of each record's text, by the tokenizer key that bounds it
        (``max_length`` for the input, ``max_target_length`` for a generated target): what auto lengths
        are derived from (pipelines/data/lengths.py)."""

    @abstractmethod
    def encode(self, splits: dict[str, list[dict]], tokenizers: dict, cfg):
        """A DatasetDict with FINETUNE_KEYS and a 'length' column; texts cut at the tokenizer block's lengths."""

    # ------------------------------------------------------------------ pretraining
    @abstractmethod
    def pretrain_datasets(self, dsd, cfg) -> tuple[Any, Any]:
        """(train, eval) datasets of the self-supervised objective."""

    @abstractmethod
    def pretrain_collator(self, tokenizers: dict, cfg) -> Callable:
        """The collator that corrupts inputs and makes labels."""

    @abstractmethod
    def build_pretrain_model(self, cfg, tokenizers: dict):
        """The model built from scratch for pretraining."""

    # ------------------------------------------------------------------ fine-tuning
    @abstractmethod
    def build_model(self, cfg, init: str | Path, dsd, tokenizers: dict):
        """The model to fine-tune, from the pretrained folder or a checkpoint."""

    @abstractmethod
    def collator(self, tokenizers: dict, cfg, model=None) -> Callable:
        """The fine-tuning collator."""

    @abstractmethod
    def compute_metrics_fn(self, dsd, tokenizers: dict, cfg) -> Callable:
        """The Trainer's compute_metrics (validation metrics, named as the spec names them)."""

    def metric_for_best_model(self, cfg) -> tuple[str, bool]:
        """(validation metric that picks the best checkpoint and stops early, greater is better): the
        primary metric, in the direction its spec gives."""
        spec = get_task(cfg.task)
        return spec.primary_metric, spec.greater_is_better()

    def trainer_class(self):
        """The transformers Trainer class that fine-tunes the model."""
        from transformers import Trainer

        return Trainer

    def trainer_kwargs(self, tokenizers: dict, cfg) -> dict:
        """Arguments of the trainer beyond the harness's own."""
        return {}

    def eval_dataset(self, dsd, cfg):
        """The examples validation scores each epoch: all of the validation split."""
        return dsd["validation"]

    def training_diagnostics(self, model, dsd, collator, cfg) -> dict:
        """Figures about the trained model recorded in finetune.json (none by default)."""
        return {}

    def check_trained(self, report: dict, cfg) -> None:
        """Fail the stage (raise TrainingError) when the diagnostics show a model not worth saving;
        nothing is checked by default."""

    # ------------------------------------------------------------------ predicting and scoring
    def validate_inputs(self, values: list, cfg) -> list:
        """The inputs of a request as the model takes them, or BadRequest / BadText naming the first
        that it refuses. The default takes text (the spec's input kind ``text``); a task whose input is
        of another kind (an image) reads and checks it here."""
        kind = get_task(cfg.task).input_kind
        if kind != "text":
            raise NotImplementedError(f"task {cfg.task!r} takes {kind!r} inputs: its TaskModel must implement "
                                      "validate_inputs")
        return validate_texts(values, cfg.clean.max_chars)

    @abstractmethod
    def predict_texts(self, model, tokenizers: dict, inputs: list, cfg, device="cpu") -> list[dict]:
        """One dict per input: the output the model serves (under the spec's output_key)."""

    @abstractmethod
    def evaluate_model(self, model, tokenizers: dict, records: list[dict], cfg, device="cpu") -> dict:
        """Scores on records: {'metrics', 'primary', 'samples', ...}."""

    def resample_scorer(self, result: dict, cfg) -> Callable[[Any], dict[str, float]] | None:
        """``score(indices) -> {metric: value}``: the test metrics of ``result`` (what evaluate_model
        or baseline_result returned) on a resample of its examples, for confidence intervals and
        paired tests (pipelines.metrics.intervals). None, the default: the task reports no intervals."""
        return None

    def test_outputs(self, result: dict) -> list | None:
        """What the model answered for each scored example, as JSON (a label, a text), kept with the
        exported version so that a later export can compare itself with it example by example. None,
        the default: nothing kept, and the registry compares the two scores alone."""
        return None

    def result_from_outputs(self, records: list[dict], outputs: list, cfg) -> dict:
        """The result resample_scorer takes, rebuilt from test_outputs on the same ``records``."""
        raise NotImplementedError(f"task {cfg.task!r} keeps test outputs but cannot rebuild a result from them")

    def baseline_result(self, records: list[dict], train: list[dict], full: dict, cfg) -> tuple[str, dict] | None:
        """(name, result) of the trivial baseline on the test ``records``, the result shaped as
        evaluate_model's so that resample_scorer takes it; ``train`` is the train split, ``full`` the
        full model's result. A model not significantly better than it is never made champion. None,
        the default: the task has no baseline."""
        return None

    @abstractmethod
    def prediction_rows(self, records: list[dict], result: dict, cfg) -> list[dict]:
        """One dict per test example (reports/<project>/predictions.jsonl): 'example', 'input',
        'reference', 'prediction' and 'score' (that example's primary metric, in its direction),
        plus what the task adds."""

    @abstractmethod
    def plot_rows(self, result: dict) -> tuple[list[dict], list[str]]:
        """(rows, columns) of plots/<project>/evaluate.csv: 'actual' and 'predicted'."""

    @abstractmethod
    def figure(self, result: dict):
        """A matplotlib figure for the MLflow run."""

    # ------------------------------------------------------------------ compression and export
    @abstractmethod
    def export_onnx(self, model, tokenizers: dict, records: list[dict], folder: Path, cfg) -> dict:
        """Write the ONNX graph(s), checked against PyTorch; return a report."""

    @abstractmethod
    def onnx_files(self, folder: Path) -> list[Path]:
        """The ONNX graph files export_onnx writes."""

    @abstractmethod
    def ort_model(self, folder: Path, tokenizers: dict, cfg):
        """The ONNX graph(s) as a model predict_texts / evaluate_model take."""

    @abstractmethod
    def build_student(self, teacher, settings) -> tuple[Any, dict]:
        """(student, init report): smaller, initialised from the teacher."""

    def ort_latency_cfg(self, cfg):
        """The settings PyTorch is timed under when compared with the ONNX Runtime variants."""
        return cfg

    def save_decoding_settings(self, folder: Path, cfg) -> None:
        """Write the decoding settings into an exported model folder (nothing to write by default)."""

    def serving_params(self, cfg) -> dict:
        """The settings a request to the served model may change (name -> the model's value); none by default."""
        return {}
