"""Training subword tokenizers with the ``tokenizers`` library, saved as transformers fast tokenizers."""

from __future__ import annotations

import logging
from typing import Iterable

logger = logging.getLogger(__name__)

# Special tokens by model family: BERT-style encoders, BART-style encoder-decoders.
SPECIALS = {
    "encoder": {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                "mask_token": "[MASK]"},
    "seq2seq": {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>",
                "mask_token": "<mask>"},
}


def train_tokenizer(texts: Iterable[str], tok_cfg, family: str, max_length: int | None = None):
    """Train a WordPiece, BPE or Unigram tokenizer on ``texts``; return a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS[family]
    # pad first so its id is 0; the order is fixed so vocabularies are reproducible.
    order = ["pad_token", "unk_token", "cls_token", "sep_token", "bos_token", "eos_token", "mask_token"]
    special_list = [specials[k] for k in order if k in specials]
    unk = specials["unk_token"]

    norm = [normalizers.NFKC()]
    if tok_cfg.lowercase:
        norm.append(normalizers.Lowercase())

    if tok_cfg.type == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=unk, max_input_chars_per_word=100))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        trainer = trainers.WordPieceTrainer(vocab_size=tok_cfg.vocab_size, special_tokens=special_list,
                                            min_frequency=2, show_progress=False)
    elif tok_cfg.type == "bpe":
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=tok_cfg.vocab_size, special_tokens=special_list, min_frequency=2,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    else:  # unigram
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=tok_cfg.vocab_size, special_tokens=special_list,
                                          unk_token=unk, show_progress=False)
    tok.normalizer = normalizers.Sequence(norm)
    tok.train_from_iterator(texts, trainer=trainer)

    if family == "encoder":
        cls, sep = specials["cls_token"], specials["sep_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))],
        )
    else:
        eos = specials["eos_token"]
        # BART-style: the encoder input and the labels end with </s>; the decoder start is added by the model.
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tok.token_to_id(eos))],
        )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length or tok_cfg.max_length,
                                   **specials)
    logger.info("trained %s tokenizer: %d tokens", tok_cfg.type, len(fast))
    return fast


def load_checkpoint_tokenizer(name: str):
    """The tokenizer of a checkpoint (hub id or local folder), with a clear error when out of reach."""
    from transformers import AutoTokenizer

    from .errors import ConfigError

    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as exc:
        raise ConfigError(
            f"model.init {name!r}: cannot load its tokenizer ({type(exc).__name__}: {str(exc).splitlines()[0]}). "
            "Give a local folder holding a saved model, a hub id reachable from this machine, or 'scratch'."
        ) from None


def save_tokenizers(tokenizers: dict, folder) -> None:
    """The main tokenizer at the top of ``folder``, any other (a target-language one) in a subfolder."""
    from pathlib import Path

    for name, tok in tokenizers.items():
        tok.save_pretrained(str(folder if name == "tokenizer" else Path(folder) / name))


def load_tokenizers(folder) -> dict:
    """Load what :func:`save_tokenizers` wrote."""
    from pathlib import Path

    from transformers import AutoTokenizer

    folder = Path(folder)
    out = {"tokenizer": AutoTokenizer.from_pretrained(str(folder))}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "tokenizer_config.json").exists()):
        out[sub.name] = AutoTokenizer.from_pretrained(str(sub))
    return out
