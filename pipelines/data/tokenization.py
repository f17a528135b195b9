"""Training subword tokenizers with the ``tokenizers`` library, saved as transformers fast tokenizers."""

from __future__ import annotations

import logging
from typing import Iterable, Mapping

from pipelines.core import settings

logger = logging.getLogger(__name__)

# The special tokens of the two model families built here; a task's model code passes its own
# (a family with other specials passes another mapping of the same keys).
BERT_SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                 "mask_token": "[MASK]"}
BART_SPECIALS = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>",
                 "mask_token": "<mask>"}


def train_tokenizer(texts: Iterable[str], tok_cfg, specials: Mapping[str, str], max_length: int | None = None):
    """Train a WordPiece, BPE or Unigram tokenizer on ``texts`` with the model family's ``specials``
    (``pad_token`` and ``unk_token`` required); return a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    # pad first so its id is 0; the order is fixed so vocabularies are reproducible.
    order = ["pad_token", "unk_token", "cls_token", "sep_token", "bos_token", "eos_token", "mask_token"]
    special_list = [specials[k] for k in order if k in specials]
    unk = specials["unk_token"]
    show = bool(settings.get("PIPELINES_PROGRESS"))  # the trainer's own bar, as training shows one

    norm = [normalizers.NFKC()]
    if tok_cfg.lowercase:
        norm.append(normalizers.Lowercase())

    if tok_cfg.type == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=unk, max_input_chars_per_word=100))
        tok.normalizer = normalizers.Sequence(norm)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        texts = list(texts)
        # The trainer numbers the "##x" symbols in hash-map order and breaks ties between equally
        # frequent merges by those numbers, so the vocabulary itself could differ between runs.
        # Passed first, in code-point order, they get fixed ids (they are in the vocabulary anyway;
        # _canonical makes them ordinary tokens again).
        trainer = trainers.WordPieceTrainer(vocab_size=tok_cfg.vocab_size,
                                            special_tokens=special_list + _continuation_symbols(tok, texts),
                                            min_frequency=tok_cfg.min_frequency, show_progress=show)
    elif tok_cfg.type == "bpe":
        tok = Tokenizer(models.BPE(unk_token=None))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=tok_cfg.vocab_size, special_tokens=special_list,
                                      min_frequency=tok_cfg.min_frequency,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=show)
    else:  # unigram
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=tok_cfg.vocab_size, special_tokens=special_list,
                                          unk_token=unk, show_progress=show)
    tok.normalizer = normalizers.Sequence(norm)
    tok.train_from_iterator(texts, trainer=trainer)
    tok = _canonical(tok, tok_cfg.type, len(special_list))

    # The template follows the specials: [CLS] text [SEP] for an encoder, text </s> for an
    # encoder-decoder (the decoder start is added by the model); none for a family with neither.
    if "cls_token" in specials and "sep_token" in specials:
        cls, sep = specials["cls_token"], specials["sep_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))],
        )
    elif "eos_token" in specials:
        eos = specials["eos_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tok.token_to_id(eos))],
        )
    limit = max_length or tok_cfg.max_length
    if not isinstance(limit, int):  # auto: the tokenize stage sets the derived length; until then, its cap
        limit = tok_cfg.bound("max_length")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=limit,
                                   **specials)
    logger.info("trained %s tokenizer: %d tokens", tok_cfg.type, len(fast))
    return fast


def _continuation_symbols(tok, texts: list[str]) -> list[str]:
    """Every "##" + character that the WordPiece trainer will see (a character inside a word)."""
    chars = set()
    for text in texts:
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)):
            chars.update(word[1:])
    return ["##" + c for c in sorted(chars)]


def _canonical(tok, kind: str, n_special: int):
    """The same tokenizer with ids (and Unigram scores) that do not depend on the process.

    The WordPiece trainer numbers its pieces, and the Unigram trainer orders its pieces and sums
    their scores, in hash-map order, which Rust seeds afresh in every process: two runs on the same
    text gave the same vocabulary under different ids, so the encoded data, the model and every
    metric downstream changed on a re-run. WordPiece looks tokens up by string and Unigram segments
    by score, so renumbering (and rounding away the last bits of a score) changes no segmentation.
    BPE's ids follow its merge order, which is already deterministic.
    """
    import json

    from tokenizers import Tokenizer

    if kind not in ("wordpiece", "unigram"):
        return tok
    spec = json.loads(tok.to_str())
    model = spec["model"]
    if kind == "wordpiece":
        spec["added_tokens"] = [t for t in spec["added_tokens"] if t["id"] < n_special]
        by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
        # The trainer gives the special tokens the first ids, in the order we passed them.
        special, rest = by_id[:n_special], by_id[n_special:]

        def key(token: str):
            bare = token[2:] if token.startswith("##") else token
            return (len(bare), token.startswith("##"), token)

        ordered = [t for t, _ in special] + sorted((t for t, _ in rest), key=key)
        model["vocab"] = {t: i for i, t in enumerate(ordered)}
    else:
        pieces = [[piece, round(score, 9)] for piece, score in model["vocab"]]
        special, rest = pieces[:n_special], sorted(pieces[n_special:], key=lambda ps: (-ps[1], ps[0]))
        # The trainer appends the characters it must cover below every learned piece, with scores
        # stepping down by 1e-4 in hash order: give that tail's scores to its characters in code-point order.
        first = len(rest) - 1
        while (first > 0 and len(rest[first][0]) == len(rest[first - 1][0]) == 1
               and 0 <= rest[first - 1][1] - rest[first][1] < 2e-4):
            first -= 1
        tail = rest[first:]
        if len(tail) > 1:
            scores = [score for _, score in tail]
            rest[first:] = [[piece, score] for (piece, _), score in zip(sorted(tail), scores)]
        model["vocab"] = special + rest
    return Tokenizer.from_str(json.dumps(spec))


def load_checkpoint_tokenizer(name: str):
    """The tokenizer of a checkpoint (hub id or local folder), with a clear error when out of reach."""
    from transformers import AutoTokenizer

    from pipelines.core.errors import ConfigError

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
