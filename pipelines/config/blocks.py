"""The blocks of a project, one per concern: data, clean, split, tokenizer, model, pretrain, finetune,
evaluate, export (compress has its own module). A task subclasses a block where its objective needs
settings of its own (pipelines/tasks/<task>/__init__.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, model_validator

from pipelines.config.base import Depth, FfnWidth, Fraction, Heads, PositiveFloat, PositiveInt, Strict, Width, check_paths
from pipelines.core.variants import EXPORTABLE

HF_SOURCE = re.compile(r"^hf:[^:\s]+(:[^:\s]+)?$")


class DataConfig(Strict):
    source: str = "builtin"
    """builtin | a local file or folder | hf:<dataset id>[:<config>]"""
    builtin_size: Annotated[int, Field(ge=50, le=1_000_000)] = 4000
    """Examples the builtin generator makes (data.source: builtin only)."""
    on_bad_utf8: Literal["replace", "error"] = "replace"
    """Replace undecodable bytes (and count them) or stop with an error."""
    eval_source: str | None = None
    """A fixed evaluation set (a local file or folder, with the same columns as the source): it is the test split
    whatever the source holds, so every version is scored on the same examples across data changes; rows of the
    source that repeat one of its texts are kept out of train and validation."""

    @model_validator(mode="after")
    def _check_source(self, info: ValidationInfo):
        if self.eval_source is not None:
            ev = self.eval_source.strip()
            if not ev or ev == "builtin" or ev.startswith("hf:"):
                raise ValueError(f"data.eval_source {self.eval_source!r} must be a local file or folder of examples "
                                 "(remove the key to carve the test split from data.source)")
            if check_paths(info) and not Path(ev).expanduser().exists():
                raise ValueError(f"data.eval_source {ev!r} does not exist; give a .jsonl/.json/.csv/.parquet file or a "
                                 "folder of them with the same columns as data.source")
            if Path(ev).expanduser().resolve() == Path(self.source.strip()).expanduser().resolve():
                raise ValueError(f"data.eval_source is data.source ({ev!r}): every row would be a test row and none "
                                 "left to train on; point eval_source at a separate file of held-out examples, or "
                                 "remove it to carve the test split from the source")
        src = self.source.strip()
        if not src:
            raise ValueError("data.source is empty; use 'builtin', a local path or 'hf:<dataset id>'")
        if src.startswith("hf:") and not HF_SOURCE.match(src):
            raise ValueError(f"data.source {src!r} is not of the form 'hf:<dataset id>[:<config>]'")
        if self.kind == "path" and check_paths(info) and not Path(src).expanduser().exists():
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



class CleanConfig(Strict):
    unicode_form: Literal["NFC", "NFKC"] = "NFKC"
    """Unicode normal form of every text; NFKC also folds compatibility forms (ligatures, full-width letters)."""
    strip_html: bool = True
    """Remove HTML tags and decode HTML entities in every text field."""
    min_chars: Annotated[int, Field(ge=0)] = 3
    """Drop a row when any of its text fields is shorter than this many characters after cleaning."""
    max_chars: PositiveInt = 2000
    """Drop a row when any of its text fields is longer than this many characters after cleaning."""
    max_length_ratio: Annotated[float, Field(gt=1)] = 4.0
    """For pairs (translation, summarization): longest / shortest side in characters."""
    min_compression: Annotated[float, Field(gt=0)] = 1.0
    """Summaries must be shorter than documents; only used by summarization."""

    @model_validator(mode="after")
    def _range(self):
        if self.min_chars >= self.max_chars:
            raise ValueError(f"clean.min_chars ({self.min_chars}) must be below clean.max_chars ({self.max_chars})")
        return self


class SplitConfig(Strict):
    validation_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    """Share of the examples carved out (stratified by label) as validation when the source brings none."""
    test_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    """Share carved out (stratified by label) as test when the source brings none and data.eval_source is unset."""
    max_leakage: Fraction = 0.0
    """Fraction of test (or validation) texts also found in train above which split fails."""


class TokenizerConfig(Strict):
    type: Literal["wordpiece", "bpe", "unigram"] = "wordpiece"
    """Subword algorithm of the tokenizer trained on the train split (model.init: scratch; a checkpoint brings its
    own)."""
    vocab_size: Annotated[int, Field(ge=100, le=500_000)] = 4000
    """Target size of each vocabulary trained here, in tokens."""
    min_frequency: Annotated[int, Field(ge=1)] = 2
    """WordPiece and BPE: a merge must occur this often in the training text to enter the vocabulary. 1 lets every
    training word become one token (on SST-2 that lifted accuracy, docs/benchmark-findings.md); the Unigram trainer
    has no such threshold."""
    lowercase: bool = True
    """The tokenizer trained here lowercases its input; while true, translation's BLEU and chrF ignore case."""
    max_length: Annotated[int, Field(ge=8, le=8192)] | Literal["auto"] = "auto"
    """Inputs are truncated to this many tokens; it also sizes a scratch model's position table. auto: the tokenize
    stage derives it from the train split's input lengths (auto_percentile, rounded up to a multiple of 8), at most
    auto_max_length and the checkpoint's positions, and records it in reports/<project>/tokenize.json."""
    shared_vocab: bool = True
    """Sequence-to-sequence only: one vocabulary for input and target (BART, MBart), or one each (Marian)."""
    max_target_length: Annotated[int, Field(ge=4, le=8192)] | Literal["auto"] = "auto"
    """Sequence-to-sequence only: targets are truncated to this many tokens, and validation generates up to it.
    auto: derived from the train split's target lengths as max_length is, at most auto_max_target_length."""
    auto_percentile: Annotated[float, Field(ge=50, le=100)] = 99
    """auto lengths: the share of training examples (in %) that must fit untruncated; 100 fits the longest."""
    auto_max_length: Annotated[int, Field(ge=8, le=8192)] = 512
    """auto max_length never exceeds this: the cost limit of the preset (longer inputs are truncated to it, and
    tokenize warns when that cuts more than a few percent of them)."""
    auto_max_target_length: Annotated[int, Field(ge=4, le=8192)] = 128
    """auto max_target_length never exceeds this (sequence-to-sequence only)."""

    def bound(self, key: str) -> int:
        """The most tokens ``key`` (max_length or max_target_length) can come to: its value, or its auto cap."""
        value = getattr(self, key)
        return getattr(self, f"auto_{key}") if value == "auto" else value


class ModelConfig(Strict):
    init: str = "scratch"
    """scratch, or a checkpoint: a hub id (needs the hub) or a local folder."""
    hidden_size: Width = 128
    """Width of the hidden states (embedding size) of a model built from scratch; a multiple of num_heads."""
    num_layers: Depth = 2
    """Transformer blocks of the encoder built from scratch (the classifier's BERT, or the seq2seq encoder)."""
    num_decoder_layers: Depth = 2
    """Sequence-to-sequence only: transformer blocks of the decoder built from scratch."""
    num_heads: Heads = 2
    """Attention heads in every attention module of a model built from scratch."""
    intermediate_size: FfnWidth = 256
    """Inner width of each block's feed-forward layer in a model built from scratch."""
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """Dropout probability in a model built from scratch (a checkpoint keeps its own)."""
    attention: Literal["sdpa", "eager"] = "sdpa"
    """Attention kernel: sdpa (PyTorch's scaled_dot_product_attention) or eager (plain matrix products)."""
    layer_norm: Literal["post", "pre"] = "post"
    """Where the encoder-decoder built from scratch normalises: post (BART, as published) or pre (MBart: layer norm
    before each block, steadier at higher learning rates). The classifier's encoder is BERT, post only; a checkpoint
    (init) brings its own."""

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
    epochs: Annotated[float, Field(gt=0, le=1000)] = 1
    """Passes over the training split; a fraction stops part-way through (max_steps above 0 overrides it)."""
    batch_size: PositiveInt = 32
    """Examples per micro-batch on each process (one step: batch_size x accumulation steps x processes)."""
    learning_rate: PositiveFloat = 5e-4
    """Peak AdamW learning rate, reached after warmup and decayed linearly to 0."""
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    """AdamW weight decay (biases and layer norms are not decayed)."""
    warmup_ratio: Fraction = 0.1
    """Share of the optimizer steps over which the learning rate rises linearly from 0."""
    gradient_accumulation_steps: PositiveInt = 1
    """Micro-batches whose gradients are summed into one optimizer step."""
    max_grad_norm: PositiveFloat = 1.0
    """The gradient's norm is clipped to this value before each optimizer step."""
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    """fp32, or bf16 / fp16 autocast (fp16 needs CUDA, bf16 on CPU a processor that has it); auto: bf16 on CUDA where
    supported, else fp16; fp32 on CPU."""
    precision_fallback: bool = False
    """What to do when precision cannot be used on this device: error, or fall back to fp32 and warn."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass instead of keeping them: less memory, slower steps."""
    group_by_length: bool = False
    """Batches of examples of similar length (less padding) instead of random batches."""
    auto_batch_size: bool = False
    """On out of memory, halve batch_size and double the accumulation steps (same effective batch); one process only."""
    save_steps: PositiveInt = 50
    """Saves a resumable checkpoint every this many optimizer steps (and at each epoch end)."""
    logging_steps: PositiveInt = 10
    """Logs the training loss and learning rate (MLflow, the loss curve) every this many optimizer steps."""
    max_steps: int = -1
    """Stop after this many optimizer steps, whatever epochs says; -1: train for epochs."""


class StageTrainConfig(TrainConfig):
    """The training of the pretrain and finetune stages, whose amount follows the size of the data."""

    min_steps: Annotated[int, Field(ge=0)] = 0
    """Train at least this many optimizer steps: where epochs passes over a small training split make fewer (a few
    hundred rows give a dozen steps an epoch), the epochs are raised to whole passes that reach it, and the report
    says so (epochs_derived); early stopping waits for the floor, then ends training when validation stops improving
    (the best epoch is kept). 0: epochs as given."""


class PretrainConfig(StageTrainConfig):
    """Self-supervised pretraining of a model built here; a task adds the settings of its objective."""


class FinetuneConfig(StageTrainConfig):
    early_stopping_patience: Annotated[int, Field(ge=0)] = 2
    """Stop after this many epochs without a better validation primary metric (the best is kept); 0: never."""
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Share of the target probability spread over the whole vocabulary or label set; 0: plain cross-entropy."""



class EvaluateConfig(Strict):
    batch_size: PositiveInt = 64
    """Examples per batch when evaluate, serving and predict run the model."""
    sample_predictions: Annotated[int, Field(ge=0)] = 20
    """The first this many test predictions go to the MLflow run's evaluate/sample_predictions.json."""
    max_examples: int = -1
    """Score only the first this many test examples; -1 (or 0): the whole test split."""
    bootstrap_samples: Annotated[int, Field(ge=0, le=100_000)] = 1000
    """Resamples of the test examples behind every 95 % confidence interval and paired comparison (the model against
    the full one, against the trivial baseline); 0 turns intervals off, and with them the rule that a model must beat
    the baseline to become champion."""



# Runtime variants are measured only (the served model runs PyTorch).
EXPORTABLE = ("full", "int8", "pruned", "pruned_int8", "student", "student_int8")


class DataChangeConfig(Strict):
    rows_changed: Annotated[float, Field(ge=0)] = 0.25
    """What a retraining flags in its report of the data since the champion (reports/<p>/data_change.json). Rows added
    plus removed, as a share of the champion's rows."""
    distribution_shift: Annotated[float, Field(ge=0, le=1)] = 0.1
    """Total variation distance between the label (or length) distributions: 0 the same, 1 disjoint."""
    unknown_pieces: Annotated[float, Field(ge=0, le=1)] = 0.02
    """Share of the new text's pieces that the champion's tokenizer has no piece for (unknown or bytes)."""


class ExportConfig(Strict):
    variant: Literal["full", "int8", "pruned", "pruned_int8", "student", "student_int8", "ort_fp32", "ort_int8",
                     "best_under_latency"] = "full"
    """Which variant compress made is exported and registered, or the most accurate one whose batch-1 CPU latency
    (median, measured by compress) is within latency_budget_ms."""
    latency_budget_ms: PositiveFloat | None = None
    """Batch-1 median CPU latency budget in milliseconds; required by variant best_under_latency, refused otherwise."""
    onnx: bool = True
    """Also write the exported model as ONNX (seq2seq: two graphs), checked against PyTorch under ONNX Runtime."""
    onnx_opset: Annotated[int, Field(ge=14, le=23)] = 18
    """ONNX opset version the graph is exported with."""
    onnx_atol: PositiveFloat = 1e-4
    """Largest absolute difference allowed between ONNX Runtime's and PyTorch's outputs; above it export fails."""
    unloadable_champion: Literal["keep", "promote"] = "keep"
    """A champion whose model cannot be loaded to score it on the new test data (deleted artifacts, an incompatible
    format) is kept, or replaced by the new version; the reason says which."""
    promote: Literal["not_worse", "better", "significantly_better"] = "not_worse"
    """When a new version takes champion, judged by the paired bootstrap of the two on the same test examples: not_worse
    (unless it is significantly worse: a scheduled retraining on fresh data replaces a champion that is not demonstrably
    better), better (its score at least the champion's, whatever the noise) or significantly_better. Versions without
    answers per example to pair (exported before they were kept) are compared by score (at least as good moves)."""
    beat_baseline: bool = True
    """A version becomes champion only when it is significantly better than the task's trivial baseline (the majority
    class, the source copied, the leading sentences) on the same test examples (evaluate.json's baseline); otherwise it
    stays candidate and the reason gives both scores. false: the baseline is reported, not enforced."""
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
