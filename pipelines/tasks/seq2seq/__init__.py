"""What translation and summarization share: an encoder-decoder built here (BART, MBart or Marian,
pretrained by denoising) or taken from a checkpoint, fine-tuned to generate the target text.

This module holds the settings of that family, light to import; the model code is :mod:`.model`
(training and decoding) and :mod:`.export` (ONNX, ONNX Runtime, the distillation student).
It registers no task itself: :mod:`pipelines.tasks.translation` and
:mod:`pipelines.tasks.summarization` do, each with its data fields and metrics.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipelines.config.base import PositiveInt
from pipelines.config.blocks import EvaluateConfig, FinetuneConfig, PretrainConfig, TokenizerConfig
from pipelines.config.project import ProjectBase


class DenoisingPretrain(PretrainConfig):
    """BART's text infilling: spans of the input masked, the whole input the target."""

    mask_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.3
    """Fraction of tokens masked, in spans of mean length span_length."""
    span_length: Annotated[float, Field(ge=1)] = 3.0
    """Mean length in tokens of a masked span (Poisson, at least 1)."""


class GenerationFinetune(FinetuneConfig):
    validation_generate_samples: PositiveInt = 200
    """Validation generates on at most this many examples each epoch."""
    min_source_gain: float | None = None
    """Fail the stage, before the model is saved, when the validation loss with another example's source is less
    than this above the loss with its own (the model ignores its input; reported as source_gain). None only warns."""


class GenerationEvaluateConfig(EvaluateConfig):
    """Seq2seq evaluation generates with batched beam search."""

    num_beams: PositiveInt = 4
    """Beams of the beam search (1: greedy); also the exported model's and serving's default."""
    length_penalty: float = 1.0
    """Beam scores are divided by length ** length_penalty: above 0 favours longer outputs, below 0 shorter."""
    max_new_tokens: PositiveInt | Literal["auto"] = "auto"
    """Longest output in tokens; it must fit the position table of a model built from scratch. auto: the target
    length the model was trained with (tokenizer.max_target_length, derived or set)."""
    min_new_tokens: Annotated[int, Field(ge=0)] = 1
    """An empty translation or summary is never right; a young model's first choice is often EOS."""
    no_repeat_ngram_size: Annotated[int, Field(ge=0)] = 0
    """No n-gram of this many tokens appears twice in an output; 0: no such rule."""
    decoder: Literal["auto", "generate"] = "auto"
    """auto: the project's beam search (pipelines/models/decoding.py) where it gives model.generate's outputs, faster
    on CPU; generate: always transformers' model.generate."""


# What export can serve: transformers folders and int8 folders load in the pyfunc model; the ONNX


MIN_POSITIONS = 32
# The least value each length takes (its validator's bound), auto or not.
LEAST_LENGTH = {"max_length": 8, "max_target_length": 4}


def position_table_size(tokenizer: TokenizerConfig) -> int:
    """Positions of an encoder-decoder built here: the longest input, or the longest label after the
    decoder's start token, rounded up to a multiple of 8 (auto lengths: at most their caps, until the
    tokenize stage has derived them)."""
    longest = max(tokenizer.bound("max_length"), tokenizer.bound("max_target_length") + 1)
    return max(MIN_POSITIONS, -(-longest // 8) * 8)


def implementation():
    """The model code of the family (imports torch and transformers)."""
    from pipelines.tasks.seq2seq.implementation import Seq2SeqModel

    return Seq2SeqModel()


class Seq2SeqProject(ProjectBase):
    """A project whose model generates its target text from its input (an encoder-decoder)."""

    pretrain: DenoisingPretrain = DenoisingPretrain()
    finetune: GenerationFinetune = GenerationFinetune()
    evaluate: GenerationEvaluateConfig = GenerationEvaluateConfig()

    def _student_keys(self) -> list[tuple[str, str]]:
        return super()._student_keys() + [("num_decoder_layers", "num_decoder_layers")]

    @model_validator(mode="after")
    def _generation_fits_the_positions(self):
        # The position table of a model built here is sized by the tokenizer block, which pretraining
        # declares; decoding settings are not an input of pretraining, so they must fit the table.
        wanted = self.evaluate.max_new_tokens
        if wanted == "auto" or not self.model.from_scratch:
            return self  # auto: the target length, which the table always holds
        derived = [k for k in ("max_length", "max_target_length") if getattr(self.tokenizer, k) == "auto"]
        if derived:
            # The table is sized once tokenize has derived the lengths: it may be as small as the least they take.
            least = position_table_size(self.tokenizer.model_copy(update={k: LEAST_LENGTH[k] for k in derived}))
            if wanted + 1 > least:
                raise ValueError(
                    f"evaluate.max_new_tokens ({wanted}) may not fit the position table of the model built here, "
                    f"which is sized by the lengths tokenize derives (tokenizer.{derived[0]}: auto) and can have as "
                    f"few as {least} positions; set evaluate.max_new_tokens to auto (the target length) or to at most "
                    f"{least - 1}, or set tokenizer.max_target_length to a number of at least {wanted}")
            return self
        table = position_table_size(self.tokenizer)
        if wanted + 1 > table:
            raise ValueError(
                f"evaluate.max_new_tokens ({wanted}) does not fit the model's position table of {table} (from "
                f"tokenizer.max_length {self.tokenizer.max_length} and tokenizer.max_target_length "
                f"{self.tokenizer.max_target_length}); raise tokenizer.max_target_length (tokenize and pretraining run "
                "again), lower evaluate.max_new_tokens or set it to auto")
        return self

    def with_lengths(self, lengths: dict[str, int]):
        cfg = super().with_lengths(lengths)
        if cfg.evaluate.max_new_tokens != "auto":
            return cfg
        return cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(
            update={"max_new_tokens": cfg.tokenizer.bound("max_target_length")})})

    def estimated_parameters(self) -> int:
        # Decoder blocks add cross-attention (four more h x h matrices); two vocabularies, two embeddings.
        m, t = self.model, self.tokenizer
        vocabularies = 1 if t.shared_vocab else 2
        encoder = 4 * m.hidden_size ** 2 + 2 * m.hidden_size * m.intermediate_size
        decoder = 8 * m.hidden_size ** 2 + 2 * m.hidden_size * m.intermediate_size
        positions = (t.bound("max_length") + t.bound("max_target_length")) * m.hidden_size
        return (vocabularies * t.vocab_size * m.hidden_size + positions + m.num_layers * encoder
                + m.num_decoder_layers * decoder)

    @model_validator(mode="after")
    def _pre_norm_needs_one_vocabulary(self):
        if self.model.layer_norm == "pre" and not self.tokenizer.shared_vocab:
            raise ValueError("model.layer_norm 'pre' builds an MBart, which has one vocabulary; with "
                             "tokenizer.shared_vocab false the model is a post-LN Marian: set layer_norm to "
                             "'post' or shared_vocab to true")
        return self
