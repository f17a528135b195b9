"""The clean and split rules users rely on: dirt removed and counted, no leakage between splits."""

from __future__ import annotations

import json
import random

import pytest

from pipelines.tasks.classification import ClassificationProject
from pipelines.tasks.translation import TranslationProject
from pipelines.stages.clean import clean_records
from pipelines.stages.split import assign_splits, leakage
from pipelines.tasks import get_task
from pipelines.data.text import clean_text, dedupe_key

CLS = get_task("classification")


def test_clean_text_rules():
    text, changed = clean_text("<p>Caf\u0065\u0301 &amp; bar</p>\u200b\x07  ok\n\n")
    assert text == "Café & bar ok"
    assert changed == {"html_stripped", "unicode_normalized", "control_chars_removed", "whitespace_folded"}
    assert clean_text("ＦＵＬＬ width")[0] == "FULL width"


def test_dedupe_key_folds_case_punctuation_and_space():
    assert dedupe_key("Hello,   World!") == dedupe_key("hello world")
    assert dedupe_key("hello world") != dedupe_key("hello worlds")


def test_dedupe_key_keeps_texts_without_words_apart():
    texts = ["😀😀😢 😢😀😀", "😢😢😀 😀😢😢", ":) !!!", ":( !!!", "..."]
    assert len({dedupe_key(t) for t in texts}) == len(texts)
    # spacing still folds when there is no word to key on
    assert dedupe_key(" :)  !!! ") == dedupe_key(":) !!!")


def test_clean_drops_and_counts():
    cfg = ClassificationProject()
    records = [
        {"text": "a good film", "label": "pos"},
        {"text": "A good film!", "label": "pos"},  # normalised duplicate
        {"text": "a good film", "label": "neg"},  # exact duplicate with another label
        {"text": "   ", "label": "pos"},
        {"text": "ab", "label": "pos"},
        {"text": "x" * 5000, "label": "neg"},
        {"text": "no label here", "label": None},
        {"text": "<b>fine</b> acting", "label": "pos"},
    ]
    kept, report = clean_records(records, CLS, cfg)
    assert [r["text"] for r in kept] == ["a good film", "fine acting"]
    assert report["dropped"] == {"duplicate_exact": 1, "duplicate_normalized": 1, "empty": 1, "missing_label": 1,
                                 "too_long": 1, "too_short": 1}
    assert report["duplicates_with_other_target"] == 1
    assert report["rows_in"] == 8 and report["rows_out"] == 2


def test_clean_keeps_the_test_copy_of_a_duplicate():
    cfg = ClassificationProject()
    records = [{"text": "same text", "label": "a", "split": "train"},
               {"text": "Same text.", "label": "a", "split": "test"}]
    kept, _ = clean_records(records, CLS, cfg)
    assert [r["split"] for r in kept] == ["test"]


def test_clean_pairs_length_ratio_and_empty_side():
    cfg = TranslationProject()
    task = get_task("translation")
    records = [{"source": "two words", "target": "ein sehr langer satz " * 10},
               {"source": "a dog", "target": ""},
               {"source": "the dog runs", "target": "der Hund läuft"}]
    kept, report = clean_records(records, task, cfg)
    assert len(kept) == 1 and report["dropped"] == {"empty": 1, "length_ratio": 1}


def _dataset(n=600, labels=("a", "b", "c"), seed=0):
    rng = random.Random(seed)
    return [{"text": f"example {i} " + " ".join(rng.choice("xyzw") for _ in range(5)), "label": labels[i % 3]}
            for i in range(n)]


def test_split_is_stratified_disjoint_and_deterministic():
    cfg = ClassificationProject()
    records = _dataset()
    a = assign_splits([dict(r) for r in records], CLS, cfg.split, seed=1)
    shuffled = [dict(r) for r in records]
    random.Random(5).shuffle(shuffled)
    b = assign_splits(shuffled, CLS, cfg.split, seed=1)
    for s in ("train", "validation", "test"):
        assert sorted(r["text"] for r in a[s]) == sorted(r["text"] for r in b[s]), "order of input changed a split"
    assert len(a["test"]) == 60 and len(a["validation"]) == 60 and len(a["train"]) == 480
    for s in ("validation", "test"):
        counts = {lab: sum(r["label"] == lab for r in a[s]) for lab in "abc"}
        assert counts == {"a": 20, "b": 20, "c": 20}
    keys = {s: {dedupe_key(r["text"]) for r in a[s]} for s in a}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"]
    c = assign_splits([dict(r) for r in records], CLS, cfg.split, seed=2)
    assert {r["text"] for r in c["test"]} != {r["text"] for r in a["test"]}, "the seed must matter"


def test_split_keeps_given_splits_and_carves_validation():
    cfg = ClassificationProject()
    records = [dict(r, split="train") for r in _dataset(300)] + [
        {"text": f"held out {i}", "label": "abc"[i % 3], "split": "test"} for i in range(30)]
    out = assign_splits(records, CLS, cfg.split, seed=0)
    assert sorted(r["text"] for r in out["test"]) == sorted(f"held out {i}" for i in range(30))
    assert len(out["validation"]) == 30 and len(out["train"]) == 270


def test_leakage_detects_normalised_copies():
    by_split = {"train": [{"text": "The film."}], "validation": [], "test": [{"text": "the FILM"}]}
    assert leakage(by_split, "text")["test"] == ["the FILM"]


def test_optional_references_may_be_absent_from_some_files_but_not_all(tmp_path):
    from pipelines.tasks.summarization import SummarizationProject
    from pipelines.data import sources
    from pipelines.core.errors import DataError

    task = get_task("summarization")
    row = {"document": "A long enough email body. It has two sentences.", "summary": "Email"}
    (tmp_path / "train.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "test.jsonl").write_text(json.dumps({**row, "refs": ["Mail", "An email"]}) + "\n")
    cfg = SummarizationProject.model_validate({"data": {"source": str(tmp_path), "references_field": "refs"}})
    raw = sources.load(task, cfg.data, 0)
    by_split = {r["split"]: r for r in raw.records}
    assert by_split["train"]["references"] is None and by_split["test"]["references"] == ["Mail", "An email"]
    assert any("train.jsonl" in w for w in raw.stats["optional_field_absent"])

    cfg = SummarizationProject.model_validate({"data": {"source": str(tmp_path), "references_field": "refz"}})
    with pytest.raises(DataError, match="data.references_field 'refz'.*null"):
        sources.load(task, cfg.data, 0)
