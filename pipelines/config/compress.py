"""The compress block: pruning, distillation, quantization and ONNX Runtime variants of the model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipelines.config.base import Depth, FfnWidth, Fraction, Heads, PositiveInt, Strict, Width
from pipelines.config.blocks import TrainConfig
from pipelines.core.variants import INT8_OF

class PruningConfig(Strict):
    """Magnitude pruning of the fine-tuned model: the ``pruned`` variant exists when any is above 0."""

    sparsity: Fraction = 0.0
    """Global unstructured: this fraction of the transformer blocks' Linear weights set to zero."""
    heads: Annotated[int, Field(ge=0)] = 0
    """Structured: attention heads removed from every attention module (smallest weight norms)."""
    ffn_fraction: Fraction = 0.0
    """Structured: fraction of feed-forward neurons removed from every layer (the model gets narrower)."""
    recovery_epochs: Annotated[float, Field(ge=0, le=100)] = 0.0
    """Distillation epochs from the full model that let the pruned one recover (zeros stay zero); uses the loss
    settings of compress.distillation."""

    @property
    def enabled(self) -> bool:
        return self.sparsity > 0 or self.heads > 0 or self.ffn_fraction > 0


class DistillationConfig(TrainConfig):
    """Knowledge distillation of the fine-tuned model (teacher) into a smaller ``student`` variant,
    trained like every other training (its settings are those of pretrain and finetune)."""

    enabled: bool = False
    """Make the `student` variant."""
    num_layers: Depth | Literal["half"] | None = "half"
    """Student shape; null keeps the teacher's value, `half` takes half the teacher's layers (at least one), whatever
    its depth: a 6-layer checkpoint gets a 3-layer student. Layers are initialised from every k-th teacher layer
    wherever the shapes match (same width)."""
    num_decoder_layers: Depth | Literal["half"] | None = "half"
    """Seq2seq only: the student's decoder blocks; null keeps the teacher's, `half` takes half (at least one)."""
    hidden_size: Width | None = None
    """The student's width; null keeps the teacher's (a narrower student copies no weights from it)."""
    num_heads: Heads | None = None
    """The student's attention heads per module; null keeps the teacher's."""
    intermediate_size: FfnWidth | None = None
    """The student's feed-forward width; null keeps the teacher's."""
    temperature: Annotated[float, Field(gt=0, le=100)] = 2.0
    """Loss: alpha * T^2 * KL(teacher || student at temperature T) + (1 - alpha) * cross-entropy."""
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Weight of the soft (teacher) part of the loss above; 1 - alpha goes to the cross-entropy with the labels."""

    @model_validator(mode="after")
    def _shape(self):
        if self.hidden_size is not None and self.num_heads is not None and self.hidden_size % self.num_heads:
            raise ValueError(f"compress.distillation.hidden_size ({self.hidden_size}) must be divisible by "
                             f"compress.distillation.num_heads ({self.num_heads})")
        return self


class CompressConfig(Strict):
    quantization: Literal["dynamic_int8", "none"] = "dynamic_int8"
    """PyTorch dynamic int8 of Linear layers, applied to each variant in `quantize`; none: no int8 variants."""
    quantize: list[Literal["full", "pruned", "student"]] = ["full"]
    """Which float variants get an int8 copy: full -> int8, pruned -> pruned_int8, student -> student_int8."""
    pruning: PruningConfig = PruningConfig()
    distillation: DistillationConfig = DistillationConfig()
    onnx_runtime: bool = False
    """The fine-tuned model's fp32 ONNX graph under ONNX Runtime (ort_fp32) and ORT's own dynamic int8 quantization of
    it (ort_int8). Seq2seq: two graphs, greedy decoding without a cache."""
    latency_batches: PositiveInt = 20
    """Latency measurement: batch-1 calls (batch 32: a quarter as many, at least 3)."""

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
