"""A tokenizer trained twice on the same text is the same file, in every process.

The `tokenizers` trainers iterate hash maps that Rust seeds afresh per process; without care the
WordPiece and Unigram vocabularies came out under different ids on each run, so the encoded data,
the model and the metrics of a re-run (or of a resumed training) changed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.data.builtin.classification import generate
from tests.tiny import REPO

SCRIPT = """
import json, sys
from types import SimpleNamespace
from pipelines.data.builtin.classification import generate
from pipelines.data.tokenization import BART_SPECIALS, BERT_SPECIALS, train_tokenizer
texts = [r["text"] for r in generate(600, 3, dirty=False)]
cfg = SimpleNamespace(type=sys.argv[1], vocab_size=300, min_frequency=2, lowercase=True, max_length=64)
tok = train_tokenizer(texts, cfg, BERT_SPECIALS if sys.argv[1] == "wordpiece" else BART_SPECIALS)
sys.stdout.write(tok.backend_tokenizer.to_str())
"""


def _train_in_a_new_process(kind: str) -> str:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, kind], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=True)
    return proc.stdout


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "unigram"])
def test_training_is_deterministic_across_processes(kind):
    first, second = _train_in_a_new_process(kind), _train_in_a_new_process(kind)
    assert first and first == second


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_renumbering_keeps_the_segmentation(kind, monkeypatch):
    """The canonical ids change no split of a text into tokens, only the numbers given to them."""
    from types import SimpleNamespace

    from tokenizers import Tokenizer

    from pipelines.data import tokenization

    texts = [r["text"] for r in generate(600, 3, dirty=False)]
    cfg = SimpleNamespace(type=kind, vocab_size=300, min_frequency=2, lowercase=True, max_length=64)
    family = tokenization.BERT_SPECIALS if kind == "wordpiece" else tokenization.BART_SPECIALS
    original = {}
    real = tokenization._canonical

    def keep_original(tok, k, n):
        original["tok"] = Tokenizer.from_str(tok.to_str())
        return real(tok, k, n)

    monkeypatch.setattr(tokenization, "_canonical", keep_original)
    canonical = tokenization.train_tokenizer(texts, cfg, family).backend_tokenizer
    for text in texts[:200] + ["Zürich's façade, 42 times!"]:
        assert original["tok"].encode(text).tokens == canonical.encode(text, add_special_tokens=False).tokens


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_min_frequency_decides_whether_rare_words_stay_whole(kind):
    """tokenizer.min_frequency 1 lets a word seen once in training become one token; 2 splits it."""
    from types import SimpleNamespace

    from pipelines.data import tokenization

    texts = [r["text"] for r in generate(300, 3, dirty=False)] + ["an unforgettably zestful film"]
    family = tokenization.BERT_SPECIALS if kind == "wordpiece" else tokenization.BART_SPECIALS
    pieces = {}
    for min_frequency in (1, 2):
        cfg = SimpleNamespace(type=kind, vocab_size=5000, min_frequency=min_frequency, lowercase=True, max_length=64)
        tok = tokenization.train_tokenizer(texts, cfg, family)
        pieces[min_frequency] = tok.tokenize("zestful")
    assert len(pieces[1]) == 1, pieces
    assert len(pieces[2]) > 1, pieces
