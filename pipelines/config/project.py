"""What every project block holds, whatever its task; a task subclasses it (pipelines/tasks/<task>)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationInfo, model_validator

from pipelines.config.base import Strict, check_paths, looks_like_path
from pipelines.config.blocks import (CleanConfig, EvaluateConfig, ExportConfig, FinetuneConfig, ModelConfig,
                                     PretrainConfig, SplitConfig, TokenizerConfig)
from pipelines.config.compress import CompressConfig

DEFAULT_PRESET = "demo"
# A model built from scratch above this many parameters needs more than 32 GB for its fp32 weights and
# Adam state alone; that is a model to start from a checkpoint, not to pretrain in this pipeline.
MAX_SCRATCH_PARAMETERS = 2_000_000_000



# What from_pretrained needs in a local folder: the model's config, its weights in a format PyTorch loads
# (one file or a sharded index), and the tokenizer the checkpoint was trained with.
CHECKPOINT_PARTS = {
    "config.json": ("config.json",),
    "weights (model.safetensors or pytorch_model.bin)": ("model.safetensors", "pytorch_model.bin",
                                                        "model.safetensors.index.json", "pytorch_model.bin.index.json"),
    "tokenizer (tokenizer.json, vocab.txt, spiece.model or vocab.json)": (
        "tokenizer.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model", "source.spm", "vocab.json"),
}


def checkpoint_gaps(folder: Path) -> list[str]:
    """The parts a saved-model folder lacks, named for the user (empty when it has them all)."""
    return [what for what, names in CHECKPOINT_PARTS.items() if not any((folder / n).is_file() for n in names)]


def decoder_only_architectures(folder: Path) -> list[str]:
    """The causal language-model (GPT-style) architectures a saved model's config.json names; empty for
    encoders and encoder-decoders, and for a config that cannot be read (its loader says why)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(config, dict) or config.get("is_encoder_decoder"):
        return []
    return [a for a in config.get("architectures") or [] if isinstance(a, str)
            and a.endswith(("ForCausalLM", "LMHeadModel"))]


class ProjectBase(Strict):
    preset: str = DEFAULT_PRESET
    """The named preset whose values fill every key the project block does not set (pipelines/presets/<task>.yaml)."""
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
        if init != "scratch" and looks_like_path(init) and check_paths(info) and not Path(init).is_dir():
            raise ValueError(
                f"model.init {init!r} looks like a local folder but does not exist; "
                "give an existing folder holding a saved model, a hub id, or 'scratch'"
            )
        if init != "scratch" and check_paths(info) and Path(init).is_dir():
            missing = checkpoint_gaps(Path(init))
            if missing:
                held = sorted(p.name for p in Path(init).iterdir())
                raise ValueError(
                    f"model.init {init!r} is not a saved model: it has no {' and no '.join(missing)}; it holds "
                    f"{', '.join(held[:12]) or 'nothing'}{' ...' if len(held) > 12 else ''}. Save the model and its "
                    "tokenizer with save_pretrained() into that folder, or name another")
            causal = decoder_only_architectures(Path(init))
            if causal:
                # Such a model has no padding token, no classification head here and no prompt format
                # for translation or summarization: it would fail stages later, after minutes of work.
                raise ValueError(
                    f"model.init {init!r} is a decoder-only (GPT-style) model ({causal[0]}); projects fine-tune "
                    "encoders (BERT-style) for classification and encoder-decoders (BART, T5, Marian) for "
                    "translation and summarization. Name such a checkpoint, or set model.init: scratch")
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

    def with_lengths(self, lengths: dict[str, int]):
        """These settings with the tokenizer's lengths the tokenize stage derived (``auto`` resolved)."""
        return self.model_copy(update={"tokenizer": self.tokenizer.model_copy(update=lengths)})

    def estimated_parameters(self) -> int:
        """Parameters of the model built from scratch, to the leading terms (embeddings and blocks)."""
        m, t = self.model, self.tokenizer
        block = 4 * m.hidden_size ** 2 + 2 * m.hidden_size * m.intermediate_size
        return t.vocab_size * m.hidden_size + t.bound("max_length") * m.hidden_size + m.num_layers * block

    def _student_keys(self) -> list[tuple[str, str]]:
        return [("num_layers", "num_layers"), ("hidden_size", "hidden_size"), ("num_heads", "num_heads"),
                ("intermediate_size", "intermediate_size")]
