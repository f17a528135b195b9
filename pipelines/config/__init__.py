"""Typed, validated view of ``params.yaml``.

The file is parsed once, into the pydantic models below. Every problem in it (an unknown or
misspelt key, a wrong type, an out-of-range value, an impossible combination) is collected and
raised together as one :class:`ConfigError`, before any stage does work.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from pipelines.core.errors import ConfigError

DEFAULT_PARAMS = "params.yaml"
# The presets a project selects with `preset:`, per task (see the file's comments).
PRESETS_FILE = Path(__file__).with_name("presets.yaml")
DEFAULT_PRESET = "demo"
# A project's name becomes a folder (data/<name>, models/<name>), a DVC stage key (<stage>@<name>), an
# MLflow experiment and registered model name and a Prefect deployment name: letters, digits, '_'
# and '-' are safe in all of them.
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _takes_bool(annotation: Any) -> bool:
    """Whether a field's type admits a boolean (``bool``, ``bool | None``, a block...)."""
    if annotation is bool:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_takes_bool(a) for a in typing.get_args(annotation))


class Strict(BaseModel):
    """Base for every block: unknown keys are errors, values are not silently coerced.

    Numbers may be written as YAML strings (``1e-3`` is a string to YAML 1.1), but a boolean is
    never a number, and no float accepts NaN or an infinity: none of these settings means anything
    at either."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name and not _takes_bool(cls.model_fields[info.field_name].annotation):
            raise PydanticCustomError("bool_type_mismatch", "a boolean is not allowed here; give a value of the "
                                      "documented type (true/false are taken only by on/off settings)")
        return value


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


# --------------------------------------------------------------------------- shared blocks
# numpy, torch and the data generators all take 32-bit unsigned seeds.
MAX_SEED = 2**32 - 1


class CommonConfig(Strict):
    # Seeds every random choice: the builtin data, the split, weight initialisation, masking and batch order.
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 42


class RuntimeConfig(Strict):
    # auto picks CUDA when present. PIPELINES_DEVICE overrides it per machine without a re-run.
    device: Literal["auto", "cpu", "cuda"] = "auto"


# Registered model names end up in `models:/<name>@alias` URIs and in artifact paths: MLflow refuses
# '/', ':' and '%' there, and names that need quoting in a URI make for models no one can load.
REGISTRY_NAME = re.compile(r"^[A-Za-z0-9_.-]*$")


class TrackingConfig(Strict):
    # Each project's runs go to the MLflow experiment `<experiment_prefix>-<project>`.
    experiment_prefix: Annotated[str, Field(min_length=1, max_length=200)] = "nlp-pipelines"
    # Each project's model is registered as `<registered_model_prefix><project>`.
    registered_model_prefix: Annotated[str, Field(max_length=200)] = ""
    # export registers a version and moves `champion` (true), or writes the export folder only (false).
    register_model: bool = True
    # Fail an export when the registry update fails (True), or keep the exported files and warn.
    registry_required: bool = True

    @model_validator(mode="after")
    def _names(self):
        if not REGISTRY_NAME.match(self.registered_model_prefix):
            raise ValueError(
                f"tracking.registered_model_prefix {self.registered_model_prefix!r} would make registered model "
                "names the MLflow registry refuses or that cannot be written in a models:/ URI; use letters, "
                "digits, '_', '-' and '.' only (for example 'team-')")
        if not self.experiment_prefix.strip() or any(ch in self.experiment_prefix for ch in "\n\r\t"):
            raise ValueError(f"tracking.experiment_prefix {self.experiment_prefix!r} must be a non-empty name on "
                             "one line")
        return self


# --------------------------------------------------------------------------- project blocks
HF_SOURCE = re.compile(r"^hf:[^:\s]+(:[^:\s]+)?$")


class DataConfig(Strict):
    # builtin | a local file or folder | hf:<dataset id>[:<config>]
    source: str = "builtin"
    # Examples the builtin generator makes (data.source: builtin only).
    builtin_size: Annotated[int, Field(ge=50, le=1_000_000)] = 4000
    # Replace undecodable bytes (and count them) or stop with an error.
    on_bad_utf8: Literal["replace", "error"] = "replace"
    # A fixed evaluation set (a local file or folder, with the same columns as the source): it is the
    # test split whatever the source holds, so every version is scored on the same examples across
    # data changes; rows of the source that repeat one of its texts are kept out of train and validation.
    eval_source: str | None = None

    @model_validator(mode="after")
    def _check_source(self, info: ValidationInfo):
        if self.eval_source is not None:
            ev = self.eval_source.strip()
            if not ev or ev == "builtin" or ev.startswith("hf:"):
                raise ValueError(f"data.eval_source {self.eval_source!r} must be a local file or folder of examples "
                                 "(remove the key to carve the test split from data.source)")
            if _check_paths(info) and not Path(ev).expanduser().exists():
                raise ValueError(f"data.eval_source {ev!r} does not exist; give a .jsonl/.json/.csv/.parquet file or a "
                                 "folder of them with the same columns as data.source")
        src = self.source.strip()
        if not src:
            raise ValueError("data.source is empty; use 'builtin', a local path or 'hf:<dataset id>'")
        if src.startswith("hf:") and not HF_SOURCE.match(src):
            raise ValueError(f"data.source {src!r} is not of the form 'hf:<dataset id>[:<config>]'")
        if self.kind == "path" and _check_paths(info) and not Path(src).expanduser().exists():
            raise ValueError(
                f"data.source {src!r} is neither 'builtin', 'hf:<dataset id>[:<config>]' nor an existing file or "
                "folder; give a .jsonl/.json/.csv/.parquet file or a folder of train/validation/test files"
            )
        fields = {k: v for k, v in self.model_dump().items() if k.endswith("_field") and v is not None}
        empty = [k for k, v in fields.items() if not str(v).strip()]
        if empty:
            raise ValueError(f"data.{empty[0]} is empty; name the column that holds it")
        by_column: dict[str, list[str]] = {}
        for key, column in fields.items():
            by_column.setdefault(column, []).append(key)
        shared = [keys for keys in by_column.values() if len(keys) > 1]
        if shared:
            keys = shared[0]
            raise ValueError(f"data.{keys[0]} and {keys[1]} both name the column {fields[keys[0]]!r}; the model "
                             "would learn to copy its input. Name the column that holds each")
        return self

    @property
    def kind(self) -> str:
        if self.source == "builtin":
            return "builtin"
        if self.source.startswith("hf:"):
            return "hf"
        return "path"


class ClassificationData(DataConfig):
    # The column of the source that holds the text to classify.
    text_field: str = "text"
    # The column that holds the class: one string or integer per row.
    label_field: str = "label"


class TranslationData(DataConfig):
    # The column of the source that holds the text to translate.
    source_field: str = "source"
    # The column that holds its translation.
    target_field: str = "target"
    # Language code of the source side: recorded with the run's settings and in export.json; no stage reads it.
    source_lang: str = "en"
    # Language code of the target side: recorded like source_lang; no stage reads it.
    target_lang: str = "de"


class SummarizationData(DataConfig):
    # The column of the source that holds the document to summarise.
    document_field: str = "document"
    # The column that holds its summary (the training target and the first reference).
    summary_field: str = "summary"
    # A column of further reference summaries (a list or one string per row), scored with the first; null: none.
    references_field: str | None = None


class CleanConfig(Strict):
    # Unicode normal form of every text; NFKC also folds compatibility forms (ligatures, full-width letters).
    unicode_form: Literal["NFC", "NFKC"] = "NFKC"
    # Remove HTML tags and decode HTML entities in every text field.
    strip_html: bool = True
    # Drop a row when any of its text fields is shorter than this many characters after cleaning.
    min_chars: Annotated[int, Field(ge=0)] = 3
    # Drop a row when any of its text fields is longer than this many characters after cleaning.
    max_chars: PositiveInt = 2000
    # For pairs (translation, summarization): longest / shortest side in characters.
    max_length_ratio: Annotated[float, Field(gt=1)] = 4.0
    # Summaries must be shorter than documents; only used by summarization.
    min_compression: Annotated[float, Field(gt=0)] = 1.0

    @model_validator(mode="after")
    def _range(self):
        if self.min_chars >= self.max_chars:
            raise ValueError(f"clean.min_chars ({self.min_chars}) must be below clean.max_chars ({self.max_chars})")
        return self


class SplitConfig(Strict):
    # Share of the examples carved out (stratified by label) as validation when the source brings none.
    validation_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    # Share carved out (stratified by label) as test when the source brings none and data.eval_source is unset.
    test_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    # Fraction of test (or validation) texts also found in train above which split fails.
    max_leakage: Fraction = 0.0


class TokenizerConfig(Strict):
    # Subword algorithm of the tokenizer trained on the train split (model.init: scratch; a checkpoint brings its own).
    type: Literal["wordpiece", "bpe", "unigram"] = "wordpiece"
    # Target size of each vocabulary trained here, in tokens.
    vocab_size: Annotated[int, Field(ge=100, le=500_000)] = 4000
    # WordPiece and BPE: a merge must occur this often in the training text to enter the vocabulary.
    # 1 lets every training word become one token (on SST-2 that lifted accuracy, docs/benchmark-findings.md); the
    # Unigram trainer has no such threshold.
    min_frequency: Annotated[int, Field(ge=1)] = 2
    # The tokenizer trained here lowercases its input; while true, translation's BLEU and chrF ignore case.
    lowercase: bool = True
    # Inputs are truncated to this many tokens; it also sizes a scratch model's position table.
    max_length: Annotated[int, Field(ge=8, le=8192)] = 128
    # Sequence-to-sequence only: one vocabulary for input and target (BART, MBart), or one each (Marian).
    shared_vocab: bool = True
    # Sequence-to-sequence only: targets are truncated to this many tokens, and validation generates up to it.
    max_target_length: Annotated[int, Field(ge=4, le=8192)] = 64


# Upper bounds of the model sizes: far above anything trained here, low enough that a typo (an extra
# zero, 10**7) fails at config time instead of asking the allocator for terabytes.
Width = Annotated[int, Field(gt=0, le=16_384)]
Depth = Annotated[int, Field(gt=0, le=128)]
Heads = Annotated[int, Field(gt=0, le=256)]
FfnWidth = Annotated[int, Field(gt=0, le=131_072)]
# A model built from scratch above this many parameters needs more than 32 GB for its fp32 weights and
# Adam state alone; that is a model to start from a checkpoint, not to pretrain in this pipeline.
MAX_SCRATCH_PARAMETERS = 2_000_000_000


class ModelConfig(Strict):
    # scratch, or a checkpoint: a hub id (needs the hub) or a local folder.
    init: str = "scratch"
    # Width of the hidden states (embedding size) of a model built from scratch; a multiple of num_heads.
    hidden_size: Width = 128
    # Transformer blocks of the encoder built from scratch (the classifier's BERT, or the seq2seq encoder).
    num_layers: Depth = 2
    # Sequence-to-sequence only: transformer blocks of the decoder built from scratch.
    num_decoder_layers: Depth = 2
    # Attention heads in every attention module of a model built from scratch.
    num_heads: Heads = 2
    # Inner width of each block's feed-forward layer in a model built from scratch.
    intermediate_size: FfnWidth = 256
    # Dropout probability in a model built from scratch (a checkpoint keeps its own).
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    # Attention kernel: sdpa (PyTorch's scaled_dot_product_attention) or eager (plain matrix products).
    attention: Literal["sdpa", "eager"] = "sdpa"
    # Where the encoder-decoder built from scratch normalises: post (BART, as published) or pre
    # (MBart: layer norm before each block, steadier at higher learning rates). The classifier's
    # encoder is BERT, post only; a checkpoint (init) brings its own.
    layer_norm: Literal["post", "pre"] = "post"

    @model_validator(mode="after")
    def _shape(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"model.hidden_size ({self.hidden_size}) must be divisible by model.num_heads ({self.num_heads})"
            )
        return self

    @property
    def from_scratch(self) -> bool:
        return self.init == "scratch"


class TrainConfig(Strict):
    # Passes over the training split; a fraction stops part-way through (max_steps above 0 overrides it).
    epochs: Annotated[float, Field(gt=0, le=1000)] = 1
    # Examples per micro-batch on each process (one step: batch_size x accumulation steps x processes).
    batch_size: PositiveInt = 32
    # Peak AdamW learning rate, reached after warmup and decayed linearly to 0.
    learning_rate: PositiveFloat = 5e-4
    # AdamW weight decay (biases and layer norms are not decayed).
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    # Share of the optimizer steps over which the learning rate rises linearly from 0.
    warmup_ratio: Fraction = 0.1
    # Micro-batches whose gradients are summed into one optimizer step.
    gradient_accumulation_steps: PositiveInt = 1
    # The gradient's norm is clipped to this value before each optimizer step.
    max_grad_norm: PositiveFloat = 1.0
    # fp32, or bf16 / fp16 autocast (fp16 needs CUDA, bf16 on CPU a processor that has it); auto: bf16 on CUDA
    # where supported, else fp16; fp32 on CPU.
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    # What to do when precision cannot be used on this device: error, or fall back to fp32 and warn.
    precision_fallback: bool = False
    # Recompute activations in the backward pass instead of keeping them: less memory, slower steps.
    gradient_checkpointing: bool = False
    # Batches of examples of similar length (less padding) instead of random batches.
    group_by_length: bool = False
    # On out of memory, halve batch_size and double the accumulation steps (same effective batch); one process only.
    auto_batch_size: bool = False
    # Saves a resumable checkpoint every this many optimizer steps (and at each epoch end).
    save_steps: PositiveInt = 50
    # Logs the training loss and learning rate (MLflow, the loss curve) every this many optimizer steps.
    logging_steps: PositiveInt = 10
    # Stop after this many optimizer steps, whatever epochs says; -1: train for epochs.
    max_steps: int = -1


class PretrainConfig(TrainConfig):
    # Classification: share of tokens the masked-language-model pretraining masks and predicts.
    mlm_probability: Annotated[float, Field(gt=0, lt=1)] = 0.15
    # Seq2seq denoising: fraction of tokens masked in spans of mean length span_length.
    mask_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.3
    # Seq2seq denoising: mean length in tokens of a masked span (Poisson, at least 1).
    span_length: Annotated[float, Field(ge=1)] = 3.0


class FinetuneConfig(TrainConfig):
    # Stop after this many epochs without a better validation primary metric (the best is kept); 0: never.
    early_stopping_patience: Annotated[int, Field(ge=0)] = 2
    # Share of the target probability spread over the whole vocabulary or label set; 0: plain cross-entropy.
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    # Seq2seq: validation generates on at most this many examples each epoch.
    validation_generate_samples: PositiveInt = 200
    # Seq2seq: fail the stage, before the model is saved, when the validation loss with another
    # example's source is less than this above the loss with its own (the model ignores its input;
    # reported as source_gain). None only warns.
    min_source_gain: float | None = None


class PruningConfig(Strict):
    """Magnitude pruning of the fine-tuned model: the ``pruned`` variant exists when any is above 0."""

    # Global unstructured: this fraction of the transformer blocks' Linear weights set to zero.
    sparsity: Fraction = 0.0
    # Structured: attention heads removed from every attention module (smallest weight norms).
    heads: Annotated[int, Field(ge=0)] = 0
    # Structured: fraction of feed-forward neurons removed from every layer (the model gets narrower).
    ffn_fraction: Fraction = 0.0
    # Distillation epochs from the full model that let the pruned one recover (zeros stay zero);
    # uses the loss settings of compress.distillation.
    recovery_epochs: Annotated[float, Field(ge=0, le=100)] = 0.0

    @property
    def enabled(self) -> bool:
        return self.sparsity > 0 or self.heads > 0 or self.ffn_fraction > 0


class DistillationConfig(TrainConfig):
    """Knowledge distillation of the fine-tuned model (teacher) into a smaller ``student`` variant,
    trained like every other training (its settings are those of pretrain and finetune)."""

    # Make the `student` variant.
    enabled: bool = False
    # Student shape; null keeps the teacher's value, `half` takes half the teacher's layers (at least
    # one), whatever its depth: a 6-layer checkpoint gets a 3-layer student. Layers are initialised
    # from every k-th teacher layer wherever the shapes match (same width).
    num_layers: Depth | Literal["half"] | None = "half"
    # Seq2seq only: the student's decoder blocks; null keeps the teacher's, `half` takes half (at least one).
    num_decoder_layers: Depth | Literal["half"] | None = "half"
    # The student's width; null keeps the teacher's (a narrower student copies no weights from it).
    hidden_size: Width | None = None
    # The student's attention heads per module; null keeps the teacher's.
    num_heads: Heads | None = None
    # The student's feed-forward width; null keeps the teacher's.
    intermediate_size: FfnWidth | None = None
    # Loss: alpha * T^2 * KL(teacher || student at temperature T) + (1 - alpha) * cross-entropy.
    temperature: Annotated[float, Field(gt=0, le=100)] = 2.0
    # Weight of the soft (teacher) part of the loss above; 1 - alpha goes to the cross-entropy with the labels.
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.5

    @model_validator(mode="after")
    def _shape(self):
        if self.hidden_size is not None and self.num_heads is not None and self.hidden_size % self.num_heads:
            raise ValueError(f"compress.distillation.hidden_size ({self.hidden_size}) must be divisible by "
                             f"compress.distillation.num_heads ({self.num_heads})")
        return self


# Float variants the compress stage can make, and the int8 copy of each (dynamic quantization).
INT8_OF = {"full": "int8", "pruned": "pruned_int8", "student": "student_int8"}
# The order of the chain, in which reports and tables list the variants.
VARIANT_ORDER = ("full", "pruned", "student", "int8", "pruned_int8", "student_int8", "ort_fp32", "ort_int8")


class CompressConfig(Strict):
    # PyTorch dynamic int8 of Linear layers, applied to each variant in `quantize`; none: no int8 variants.
    quantization: Literal["dynamic_int8", "none"] = "dynamic_int8"
    # Which float variants get an int8 copy: full -> int8, pruned -> pruned_int8, student -> student_int8.
    quantize: list[Literal["full", "pruned", "student"]] = ["full"]
    pruning: PruningConfig = PruningConfig()
    distillation: DistillationConfig = DistillationConfig()
    # The fine-tuned model's fp32 ONNX graph under ONNX Runtime (ort_fp32) and ORT's own dynamic int8
    # quantization of it (ort_int8). Seq2seq: two graphs, greedy decoding without a cache.
    onnx_runtime: bool = False
    # Latency measurement: batch-1 calls (batch 32: a quarter as many, at least 3).
    latency_batches: PositiveInt = 20

    @model_validator(mode="after")
    def _chain(self):
        # Switching a technique off (quantization: none, pruning at 0, distillation.enabled: false)
        # never conflicts with `quantize` or `recovery_epochs`, which a preset may set: an int8 copy
        # of a variant that is not made is not made either, and recovery needs something pruned.
        problems = []
        if len(set(self.quantize)) != len(self.quantize):
            problems.append(f"compress.quantize lists a variant twice: {self.quantize}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def variants(self) -> list[str]:
        """Every variant this block makes, the full model first."""
        out = ["full"]
        if self.pruning.enabled:
            out.append("pruned")
        if self.distillation.enabled:
            out.append("student")
        if self.quantization != "none":
            out += [INT8_OF[v] for v in self.quantize if v in out]
        if self.onnx_runtime:
            out += ["ort_fp32", "ort_int8"]
        return out


class EvaluateConfig(Strict):
    # Examples per batch when evaluate, serving and predict run the model.
    batch_size: PositiveInt = 64
    # The first this many test predictions go to the MLflow run's evaluate/sample_predictions.json.
    sample_predictions: Annotated[int, Field(ge=0)] = 20
    # Score only the first this many test examples; -1 (or 0): the whole test split.
    max_examples: int = -1


class GenerationEvaluateConfig(EvaluateConfig):
    """Seq2seq evaluation generates with batched beam search."""

    # Beams of the beam search (1: greedy); also the exported model's and serving's default.
    num_beams: PositiveInt = 4
    # Beam scores are divided by length ** length_penalty: above 0 favours longer outputs, below 0 shorter.
    length_penalty: float = 1.0
    # Longest output in tokens; it must fit the position table of a model built from scratch.
    max_new_tokens: PositiveInt = 64
    # An empty translation or summary is never right; a young model's first choice is often EOS.
    min_new_tokens: Annotated[int, Field(ge=0)] = 1
    # No n-gram of this many tokens appears twice in an output; 0: no such rule.
    no_repeat_ngram_size: Annotated[int, Field(ge=0)] = 0
    # auto: the project's beam search (pipelines/models/decoding.py) where it gives model.generate's
    # outputs, faster on CPU; generate: always transformers' model.generate.
    decoder: Literal["auto", "generate"] = "auto"


# What export can serve: transformers folders and int8 folders load in the pyfunc model; the ONNX
# Runtime variants are measured only (the served model runs PyTorch).
EXPORTABLE = ("full", "int8", "pruned", "pruned_int8", "student", "student_int8")


class DataChangeConfig(Strict):
    # What a retraining flags in its report of the data since the champion (reports/<p>/data_change.json).
    # Rows added plus removed, as a share of the champion's rows.
    rows_changed: Annotated[float, Field(ge=0)] = 0.25
    # Total variation distance between the label (or length) distributions: 0 the same, 1 disjoint.
    distribution_shift: Annotated[float, Field(ge=0, le=1)] = 0.1
    # Share of the new text's pieces that the champion's tokenizer has no piece for (unknown or bytes).
    unknown_pieces: Annotated[float, Field(ge=0, le=1)] = 0.02


class ExportConfig(Strict):
    # Which variant compress made is exported and registered, or the most accurate one whose batch-1
    # CPU latency (median, measured by compress) is within latency_budget_ms.
    variant: Literal["full", "int8", "pruned", "pruned_int8", "student", "student_int8", "ort_fp32", "ort_int8",
                     "best_under_latency"] = "full"
    # Batch-1 median CPU latency budget in milliseconds; required by variant best_under_latency, refused otherwise.
    latency_budget_ms: PositiveFloat | None = None
    # Also write the exported model as ONNX (seq2seq: two graphs), checked against PyTorch under ONNX Runtime.
    onnx: bool = True
    # ONNX opset version the graph is exported with.
    onnx_opset: Annotated[int, Field(ge=14, le=23)] = 18
    # Largest absolute difference allowed between ONNX Runtime's and PyTorch's outputs; above it export fails.
    onnx_atol: PositiveFloat = 1e-4
    # A champion whose model cannot be loaded to score it on the new test data (deleted artifacts,
    # an incompatible format) is kept, or replaced by the new version; the reason says which.
    unloadable_champion: Literal["keep", "promote"] = "keep"
    data_change: DataChangeConfig = DataChangeConfig()

    @model_validator(mode="after")
    def _budget(self):
        if self.variant.startswith("ort_"):
            raise ValueError(
                f"export.variant {self.variant!r} cannot be served: the registered model runs PyTorch. Export one of "
                f"{', '.join(EXPORTABLE)} or best_under_latency (the exported folder holds the ONNX graph as well)")
        if self.variant == "best_under_latency" and self.latency_budget_ms is None:
            raise ValueError("export.variant is best_under_latency but export.latency_budget_ms is not set; "
                             "give the batch-1 latency budget in milliseconds")
        if self.variant != "best_under_latency" and self.latency_budget_ms is not None:
            raise ValueError(f"export.latency_budget_ms is set but export.variant is {self.variant!r}; the budget "
                             "is used only with variant: best_under_latency (remove it or change the variant)")
        return self


class ProjectBase(Strict):
    # The named preset whose values fill every key the project block does not set (pipelines/config/presets.yaml).
    preset: str = DEFAULT_PRESET
    clean: CleanConfig = CleanConfig()
    split: SplitConfig = SplitConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    compress: CompressConfig = CompressConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()

    @model_validator(mode="after")
    def _checkpoint_exists(self, info: ValidationInfo):
        init = self.model.init
        if init != "scratch" and _looks_like_path(init) and _check_paths(info) and not Path(init).is_dir():
            raise ValueError(
                f"model.init {init!r} looks like a local folder but does not exist; "
                "give an existing folder holding a saved model, a hub id, or 'scratch'"
            )
        return self

    @model_validator(mode="after")
    def _compression_fits_the_model(self):
        """Compression settings that cannot work with this model, and an export of a variant compress
        does not make. The model sizes in params describe the teacher only when it is built here
        (init: scratch); a checkpoint's own sizes are checked when compress runs."""
        problems = []
        comp, m = self.compress, self.model
        d, pr = comp.distillation, comp.pruning
        if self.model.from_scratch:
            if pr.heads and pr.heads >= m.num_heads:
                problems.append(f"compress.pruning.heads ({pr.heads}) must be below model.num_heads ({m.num_heads}): "
                                "at least one head per attention module must stay")
            if d.enabled:
                for key, teacher_key in self._student_keys():
                    value, limit = getattr(d, key), getattr(m, teacher_key)
                    if value is not None and value != "half" and value > limit:
                        problems.append(f"compress.distillation.{key} ({value}) is larger than the teacher's "
                                        f"model.{teacher_key} ({limit}); a student must not be larger")
                width = d.hidden_size or m.hidden_size
                heads = d.num_heads or m.num_heads
                if width % heads:
                    problems.append(f"the student's width ({width}) must be divisible by its number of heads "
                                    f"({heads}); set compress.distillation.hidden_size / num_heads")
        variant = self.export.variant
        if variant != "best_under_latency" and variant not in comp.variants():
            problems.append(f"export.variant is {variant!r} but compress makes only {', '.join(comp.variants())}; "
                            "enable it in the compress block or export another variant")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _model_fits_in_memory(self):
        if self.model.from_scratch:
            count = self.estimated_parameters()
            if count > MAX_SCRATCH_PARAMETERS:
                m = self.model
                raise ValueError(
                    f"model: built from scratch with hidden_size {m.hidden_size}, num_layers {m.num_layers}, "
                    f"intermediate_size {m.intermediate_size} and tokenizer.vocab_size {self.tokenizer.vocab_size}, "
                    f"the model would have about {count / 1e9:.1f} billion parameters, above the limit of "
                    f"{MAX_SCRATCH_PARAMETERS / 1e9:.0f} billion for a model pretrained here; make it smaller, or "
                    "start from a checkpoint (model.init)")
        return self

    def estimated_parameters(self) -> int:
        """Parameters of the model built from scratch, to the leading terms (embeddings and blocks)."""
        m, t = self.model, self.tokenizer
        block = 4 * m.hidden_size ** 2 + 2 * m.hidden_size * m.intermediate_size
        return t.vocab_size * m.hidden_size + t.max_length * m.hidden_size + m.num_layers * block

    def _student_keys(self) -> list[tuple[str, str]]:
        return [("num_layers", "num_layers"), ("hidden_size", "hidden_size"), ("num_heads", "num_heads"),
                ("intermediate_size", "intermediate_size")]


class ClassificationProject(ProjectBase):
    # Required in every project block: a classification project labels texts (BERT; primary metric accuracy).
    task: Literal["classification"] = "classification"
    data: ClassificationData = ClassificationData()

    @model_validator(mode="after")
    def _no_source_to_ignore(self):
        if self.finetune.min_source_gain is not None:
            raise ValueError("finetune.min_source_gain checks that a sequence-to-sequence model reads its source; "
                             "a classifier has none: remove the key")
        return self

    @model_validator(mode="after")
    def _post_norm_only(self):
        if self.model.layer_norm != "post":
            raise ValueError("model.layer_norm: 'pre' exists for the sequence-to-sequence projects (MBart); the "
                             "classifier's encoder is BERT, which normalises after each block: use 'post'")
        return self


class Seq2SeqProject(ProjectBase):
    evaluate: GenerationEvaluateConfig = GenerationEvaluateConfig()

    def _student_keys(self) -> list[tuple[str, str]]:
        return super()._student_keys() + [("num_decoder_layers", "num_decoder_layers")]

    @model_validator(mode="after")
    def _generation_fits_the_positions(self):
        # The position table of a model built here is sized by the tokenizer block, which pretraining
        # declares; decoding settings are not an input of pretraining, so they must fit the table.
        table = position_table_size(self.tokenizer)
        if self.model.from_scratch and self.evaluate.max_new_tokens + 1 > table:
            raise ValueError(
                f"evaluate.max_new_tokens ({self.evaluate.max_new_tokens}) does not fit the model's position table "
                f"of {table} (from tokenizer.max_length {self.tokenizer.max_length} and "
                f"tokenizer.max_target_length {self.tokenizer.max_target_length}); raise "
                "tokenizer.max_target_length (tokenize and pretraining run again) or lower evaluate.max_new_tokens")
        return self

    def estimated_parameters(self) -> int:
        # Decoder blocks add cross-attention (four more h x h matrices); two vocabularies, two embeddings.
        m, t = self.model, self.tokenizer
        vocabularies = 1 if t.shared_vocab else 2
        encoder = 4 * m.hidden_size ** 2 + 2 * m.hidden_size * m.intermediate_size
        decoder = 8 * m.hidden_size ** 2 + 2 * m.hidden_size * m.intermediate_size
        positions = (t.max_length + t.max_target_length) * m.hidden_size
        return (vocabularies * t.vocab_size * m.hidden_size + positions + m.num_layers * encoder
                + m.num_decoder_layers * decoder)

    @model_validator(mode="after")
    def _pre_norm_needs_one_vocabulary(self):
        if self.model.layer_norm == "pre" and not self.tokenizer.shared_vocab:
            raise ValueError("model.layer_norm 'pre' builds an MBart, which has one vocabulary; with "
                             "tokenizer.shared_vocab false the model is a post-LN Marian: set layer_norm to "
                             "'post' or shared_vocab to true")
        return self


class TranslationProject(Seq2SeqProject):
    # Required in every project block: a translation project maps source to target text (primary metric BLEU).
    task: Literal["translation"] = "translation"
    data: TranslationData = TranslationData()


class SummarizationProject(Seq2SeqProject):
    # Required in every project block: a summarization project summarises documents (primary metric ROUGE-L).
    task: Literal["summarization"] = "summarization"
    data: SummarizationData = SummarizationData()


ProjectConfig = Union[ClassificationProject, TranslationProject, SummarizationProject]


def _task_of(value: Any) -> str | None:
    return value.get("task") if isinstance(value, dict) else getattr(value, "task", None)


class Params(Strict):
    common: CommonConfig = CommonConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    tracking: TrackingConfig = TrackingConfig()
    # name -> project; the name is the user's, the project's `task:` says what it is.
    projects: dict[str, Annotated[Union[Annotated[ClassificationProject, Tag("classification")],
                                        Annotated[TranslationProject, Tag("translation")],
                                        Annotated[SummarizationProject, Tag("summarization")]],
                                  Discriminator(_task_of)]] = {}

    def project(self, name: str) -> ProjectConfig:
        """The block of one project; a clear error when it is absent."""
        block = self.projects.get(name)
        if block is None:
            close = difflib.get_close_matches(name, list(self.projects), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"params.yaml has no project {name!r}{hint} Projects: "
                              f"{', '.join(self.projects) or 'none'}. Add a block under 'projects:' (see README) "
                              "to run it")
        return block


def position_table_size(tokenizer: TokenizerConfig) -> int:
    """Positions of an encoder-decoder built here: the longest input, or the longest label after the
    decoder's start token, rounded up to a multiple of 8."""
    longest = max(tokenizer.max_length, tokenizer.max_target_length + 1)
    return max(32, -(-longest // 8) * 8)


# --------------------------------------------------------------------------- loading
def _looks_like_path(value: str) -> bool:
    # A hub id has at most one slash ("org/name"); anything else with a slash is a folder.
    return value.startswith((".", "/", "~")) or value.count("/") > 1


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Walk a pydantic model class along an error location; None if it leaves the models."""
    import typing

    cur: Any = model
    for part in loc:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        field = cur.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        candidates = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        cur = candidates[0] if candidates else ann
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


TASK_CLASSES: dict[str, type[ProjectBase]] = {"classification": ClassificationProject,
                                              "translation": TranslationProject,
                                              "summarization": SummarizationProject}
_PROJECT_KEYS = frozenset(ProjectBase.model_fields) | {"task", "data"}


def _describe(model: type[BaseModel], err: dict) -> str:
    # pydantic puts union member tags into the location: class names, and under projects.<name> the
    # task that picked the project's model. Drop both.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
    project_model = None
    if len(loc) >= 3 and loc[0] == "projects" and loc[2] in TASK_CLASSES:
        project_model = TASK_CLASSES[loc[2]]
        loc = loc[:2] + loc[3:]
    key = ".".join(str(p) for p in loc) or "(top level)"
    etype = err["type"]
    value = err.get("input")
    if etype == "extra_forbidden":
        if project_model is not None:
            parent = _model_at(project_model, loc[2:-1])
        else:
            parent = _model_at(model, loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        msg = f"{key}: unknown key"
        if hint:
            msg += f"; did you mean '{'.'.join(map(str, loc[:-1] + (hint[0],)))}'?"
        if allowed:
            msg += f" Allowed keys here: {', '.join(allowed)}"
        if len(loc) == 1 and isinstance(value, dict) and "data" in value:
            msg += f". A project goes under 'projects:', with a task (projects: {{{loc[0]}: {{task: ..., ...}}}})"
        return msg
    if etype == "value_error":
        # Validators word their messages from the project block down ("model.init ..."): prefix the project.
        text = str(err.get("msg", "")).removeprefix("Value error, ")
        if project_model is not None or (len(loc) == 2 and loc[0] == "projects"):
            where = f"projects.{loc[1]}"
            return f"{where}.{text}" if text.split(".", 1)[0] in _PROJECT_KEYS else f"{where}: {text}"
        return text
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{key}: {err['msg']} (got {shown})"


def _check_paths(info: ValidationInfo) -> bool:
    return not (info.context or {}).get("training_paths_absent", False)


def load_presets(path: Path = PRESETS_FILE) -> dict[str, dict[str, dict]]:
    """task -> preset name -> the preset's project block. Every preset of a task starts from the
    task's ``demo`` preset and changes what it lists."""
    presets = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    out = {}
    for task, by_name in presets.items():
        by_name = {name: block or {} for name, block in (by_name or {}).items()}
        demo = by_name.get(DEFAULT_PRESET, {})
        out[task] = {name: block if name == DEFAULT_PRESET else merged(demo, block) for name, block in by_name.items()}
    return out


def merged(base: Any, over: Any) -> Any:
    """``over`` on top of ``base``: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = merged(base.get(key), value) if key in base else value
        return out
    return over


def resolve_projects(raw_projects: Any, problems: list[str]) -> dict[str, dict]:
    """Check the project names and tasks, and fill each block from its preset. Problems are added
    to ``problems``; the projects that could be resolved are returned."""
    if raw_projects is None:
        problems.append("no projects; add a 'projects:' block with at least one project (see README)")
        return {}
    if not isinstance(raw_projects, dict):
        problems.append(f"projects must map project names to blocks, got {type(raw_projects).__name__}")
        return {}
    presets = load_presets()
    seen: dict[str, str] = {}
    out = {}
    for name, block in raw_projects.items():
        if not isinstance(name, str) or not PROJECT_NAME.match(name):
            problems.append(f"projects.{name}: a project name must start with a letter or digit and hold only "
                            "letters, digits, '_' and '-' (at most 64): it names folders, DVC stages, MLflow "
                            "models and deployments")
            continue
        if name.lower() in seen:
            problems.append(f"projects.{name} and projects.{seen[name.lower()]} differ only in case; their folders "
                            "would be one on a case-insensitive disk: rename one")
            continue
        seen[name.lower()] = name
        if not isinstance(block, dict):
            problems.append(f"projects.{name} must be a block of settings with a task, got "
                            f"{type(block).__name__}")
            continue
        task = block.get("task")
        if task not in TASK_CLASSES:
            said = "has no task" if task is None else f"task {task!r} is not one of the tasks"
            problems.append(f"projects.{name}.task: the project {said}; set task: to one of "
                            f"{', '.join(TASK_CLASSES)}")
            continue
        preset = block.get("preset", DEFAULT_PRESET)
        available = presets.get(task, {})
        if not isinstance(preset, str) or preset not in available:
            problems.append(f"projects.{name}.preset: {preset!r} is not a {task} preset; choose one of "
                            f"{', '.join(available)} (pipelines/config/presets.yaml)")
            continue
        out[name] = merged(available[preset], block)
    return out


def parse_params(raw: Any, source: str = DEFAULT_PARAMS, *, training_paths_absent: bool = False) -> Params:
    """Validate an already-loaded params mapping; raise ConfigError naming every problem.

    Each project's block is laid over the preset it names (``preset:``, default ``demo``), key by key.
    ``training_paths_absent``: skip the checks that the data source and the checkpoint folder exist,
    for a machine that only predicts with a model trained elsewhere."""
    if raw is None:
        raise ConfigError(f"{source} is empty; start from the 'projects:' block in the README's Concepts "
                          "section (more in docs/projects.md)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must hold a mapping of blocks at the top level, got {type(raw).__name__}")
    problems: list[str] = []
    resolved = {**raw, "projects": resolve_projects(raw.get("projects"), problems)}
    try:
        params = Params.model_validate(resolved, context={"training_paths_absent": training_paths_absent})
    except ValidationError as exc:
        problems.extend(_describe(Params, e) for e in exc.errors(include_url=False))
        params = None
    if params is not None and not params.projects and not problems:
        problems.append("projects is empty; add at least one project (a name, a task and a data source)")
    if problems:
        lines = "\n".join(f"  - {p}" for p in dict.fromkeys(problems))
        raise ConfigError(f"{source} has {len(problems)} problem(s):\n{lines}")
    return params


def load_params(path: str | os.PathLike = DEFAULT_PARAMS, *, training_paths_absent: bool = False) -> Params:
    """Read and validate params.yaml (``training_paths_absent``: see :func:`parse_params`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found; run from the repository root or pass --params PATH")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: byte {data[exc.start]:#04x} on line {line} is not UTF-8 (the file was saved in "
                          "another encoding, such as latin-1); save it as UTF-8") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_params(raw, str(path), training_paths_absent=training_paths_absent)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key written twice in one mapping, as DVC's own parser does
    (PyYAML alone keeps the last value, so `check` and `dvc repro` would read different settings)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges are resolved by the base constructor
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, typing.Hashable):
                continue  # the base constructor reports unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"key {key!r} appears twice (lines {seen[key].line + 1} and {key_node.start_mark.line + 1}); "
                    "keep one", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten nested params to dotted keys, for logging every setting with the run."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump()
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix.rstrip(".")] = obj
    return out
