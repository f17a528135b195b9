"""Bad data stops ingest / clean / split with a message that names the problem and the fix, and
leaves no output behind; what can be repaired (bytes that are not UTF-8) is repaired and counted.

The stages run in-process against a temporary project root (PIPELINES_ROOT).
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from pipelines.config import parse_params
from pipelines.errors import DataError
from pipelines.io import write_jsonl
from pipelines.paths import ProjectPaths
from pipelines.stages import clean, ingest, split
from tests.tiny import REPO

RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def params(project: str = "classification", **data):
    raw = copy.deepcopy(RAW)
    raw[project]["data"].update(data)
    return parse_params(raw)


@pytest.fixture(autouse=True)
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINES_ROOT", str(tmp_path / "project"))
    (tmp_path / "project").mkdir()
    return tmp_path / "project"


def leftovers(project: str = "classification") -> list[str]:
    paths = ProjectPaths.of(project)
    return [str(p) for p in (paths.raw, paths.clean, paths.splits) if p.exists()]


def test_missing_column_lists_the_columns_found(tmp_path):
    src = tmp_path / "reviews.csv"
    src.write_text("review,sentiment\na fine film,pos\na dull film,neg\n")
    with pytest.raises(DataError) as err:
        ingest.run(params(source=str(src)), "classification")
    msg = str(err.value)
    assert "'text'" in msg and "columns found: 'review', 'sentiment'" in msg and "text_field" in msg
    assert leftovers() == []
    # naming the columns fixes it
    info = ingest.run(params(source=str(src), text_field="review", label_field="sentiment"), "classification")
    assert info["rows"] == 2


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_input_is_an_error_and_writes_nothing(tmp_path, content):
    src = tmp_path / "empty.jsonl"
    src.write_bytes(content)
    with pytest.raises(DataError, match="empty|no records|no examples"):
        ingest.run(params(source=str(src)), "classification")
        clean.run(params(source=str(src)), "classification")  # blank lines only: clean finds no records
    assert ProjectPaths.of("classification").clean.exists() is False


def test_bytes_that_are_not_utf8_are_replaced_and_counted_or_refused(tmp_path):
    src = tmp_path / "latin1.jsonl"
    rows = [json.dumps({"text": "caf\u00e9 au lait", "label": "pos"}, ensure_ascii=False).encode("latin-1"),
            json.dumps({"text": "plain text", "label": "neg"}).encode()]
    src.write_bytes(b"\n".join(rows) + b"\n")
    with pytest.raises(DataError) as err:
        ingest.run(params(source=str(src), on_bad_utf8="error"), "classification")
    assert "not UTF-8" in str(err.value) and "on_bad_utf8: replace" in str(err.value)
    assert leftovers() == []
    info = ingest.run(params(source=str(src), on_bad_utf8="replace"), "classification")
    assert info["bad_utf8_replaced"] == 1 and info["rows"] == 2
    report = json.loads((ProjectPaths.of("classification").raw / "source.json").read_text())
    assert report["bad_utf8_replaced"] == 1


def _write_clean(records: list[dict], project: str = "classification") -> None:
    paths = ProjectPaths.of(project)
    paths.clean.mkdir(parents=True)
    write_jsonl(paths.clean / "data.jsonl", records)


def _given(split_name: str, n: int, label_of=lambda i: "pos" if i % 2 else "neg", prefix: str = "row") -> list[dict]:
    return [{"text": f"{prefix} {split_name} number {i}", "label": label_of(i), "split": split_name} for i in range(n)]


def test_label_in_test_but_not_in_train_fails_split_and_names_it():
    records = _given("train", 20) + _given("validation", 4) + _given("test", 4, label_of=lambda i: "mixed")
    _write_clean(records)
    with pytest.raises(DataError) as err:
        split.run(params(), "classification")
    assert "['mixed']" in str(err.value) and "never in train" in str(err.value)
    assert not ProjectPaths.of("classification").splits.exists()


@pytest.mark.parametrize("max_leakage,fails", [(0.0, True), (0.5, False)])
def test_leakage_above_the_threshold_fails_with_the_offending_texts(max_leakage, fails):
    test = _given("test", 4)
    test[0]["text"] = "The SAME review, word for word"
    records = _given("train", 20) + [{"text": "the same review word for word", "label": "pos", "split": "train"}] \
        + _given("validation", 4) + test
    _write_clean(records)
    raw = copy.deepcopy(RAW)
    raw["classification"]["split"]["max_leakage"] = max_leakage
    if fails:
        with pytest.raises(DataError) as err:
            split.run(parse_params(raw), "classification")
        msg = str(err.value)
        assert "1 of 4 test texts (25.0%)" in msg and "The SAME review" in msg and "split.max_leakage=0.0" in msg
        assert not ProjectPaths.of("classification").splits.exists()
    else:
        report = split.run(parse_params(raw), "classification")
        assert report["leakage"]["test"] == 1


def test_extreme_lengths_are_dropped_and_counted(tmp_path):
    src = tmp_path / "lengths.jsonl"
    rows = [{"text": "a sensible review of a film", "label": "pos"}, {"text": "ok", "label": "neg"},
            {"text": "long " * 2000, "label": "neg"}, {"text": "another sensible review", "label": "neg"}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = params(source=str(src))
    ingest.run(p, "classification")
    out = clean.run(p, "classification")
    assert out["dropped"]["too_short"] == 1 and out["dropped"]["too_long"] == 1 and out["rows_out"] == 2
    report = json.loads(ProjectPaths.of("classification").report("clean").read_text())
    assert report["dropped"]["too_long"] == 1
