"""What changed in the data since the champion (rows, distributions, the tokenizer's unknown pieces),
and a fixed evaluation set that keeps the test split the same across data changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.tracking import lineage
from pipelines.config import parse_params
from pipelines.core.errors import ConfigError
from pipelines.core.io import content_hash, read_jsonl
from pipelines.core.paths import ProjectPaths
from pipelines.stages import clean, ingest, split
from pipelines.tasks import get_task
from pipelines.data.tokenization import BERT_SPECIALS, train_tokenizer

TASK = get_task("classification")
THRESHOLDS = parse_params({"projects": {"c": {"task": "classification"}}}).project("c").export.data_change


def reviews(n: int, start: int = 0, label_of=lambda i: "pos" if i % 2 else "neg") -> list[dict]:
    words = {"pos": ["good", "great", "warm"], "neg": ["bad", "dull", "flat"], "mixed": ["fine", "so-so", "odd"]}
    return [{"text": f"the film number {i} was {words[label_of(i)][i % 3]} from start to end",
             "label": label_of(i)} for i in range(start, start + n)]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def splits_of(tmp: Path, rows: list[dict]) -> Path:
    folder = tmp / "splits"
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", rows[: len(rows) // 2]), ("validation", rows[len(rows) // 2:][:5]),
                       ("test", rows[len(rows) // 2:][5:])):
        write(folder / f"{name}.jsonl", part)
    return folder


def test_rows_added_and_removed_and_a_label_shift_are_reported_and_flagged(tmp_path):
    old = lineage.profile(splits_of(tmp_path / "old", reviews(100)), TASK, tokenizer_trained_here=False)
    same = lineage.compare((old[0], set(old[1])), old, [], None, THRESHOLDS)
    assert same["rows"] == {"champion": 100, "now": 100, "added": 0, "removed": 0, "changed_share": 0.0}
    assert same["flags"] == [] and same["labels"]["shift"] == 0.0

    # 20 rows gone, 60 new ones that are all "pos", and a label the champion never saw
    new_rows = reviews(80, start=20) + reviews(60, start=1000, label_of=lambda i: "pos") + \
        reviews(3, start=5000, label_of=lambda i: "mixed")
    new = lineage.profile(splits_of(tmp_path / "new", new_rows), TASK, tokenizer_trained_here=False)
    report = lineage.compare((old[0], set(old[1])), new, [], None, THRESHOLDS)
    assert report["rows"]["added"] == 63 and report["rows"]["removed"] == 20
    assert report["labels"]["unseen_by_champion"] == ["mixed"]
    assert report["labels"]["shift"] > THRESHOLDS.distribution_shift
    assert report["tokenizer"] == {"skipped": "the champion's tokenizer comes from its checkpoint, not from its data"}
    flags = " | ".join(report["flags"])
    assert "63 rows added and 20 removed" in flags and "labels the champion never saw: ['mixed']" in flags
    assert "labels distribution shifted" in flags


def test_profile_round_trips_through_the_export_folder(tmp_path):
    prof = lineage.profile(splits_of(tmp_path, reviews(40)), TASK, tokenizer_trained_here=True)
    lineage.write_profile(tmp_path, *prof)
    read = lineage.read_profile(tmp_path)
    assert read[0] == json.loads(json.dumps(prof[0])) and read[1] == set(prof[1])
    assert lineage.read_profile(tmp_path / "elsewhere") is None


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "unigram"])
def test_new_text_in_another_script_is_split_into_unknown_or_byte_pieces(kind):
    cfg = parse_params({"projects": {"c": {"task": "classification",
                                           "tokenizer": {"type": kind, "vocab_size": 200}}}}).project("c")
    english = [r["text"] for r in reviews(300)]
    tok = train_tokenizer(english, cfg.tokenizer, BERT_SPECIALS)
    familiar = lineage.unknown_share(tok, english[:50])
    greek = lineage.unknown_share(tok, ["η ταινία ήταν υπέροχη από την αρχή ως το τέλος"] * 5)
    assert familiar["share"] < 0.01
    assert greek["share"] > 0.3, greek
    old = ({"rows": {}, "lengths": {}, "tokenizer_trained_here": True}, set())
    report = lineage.compare(old, ({"rows": {}, "lengths": {}}, []), ["η ταινία ήταν υπέροχη"] * 5, tok, THRESHOLDS)
    assert any("retrain the tokenizer" in f for f in report["flags"])


# --------------------------------------------------------------------------- a fixed evaluation set
def run_until_split(root: Path, params) -> list[dict]:
    for stage in (ingest, clean, split):
        stage.run(params, "c")
    return read_jsonl(ProjectPaths.of("c", root).splits / "test.jsonl")


def test_a_fixed_evaluation_set_is_the_test_split_whatever_the_source_gains(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINES_ROOT", str(tmp_path))
    fixed = write(tmp_path / "fixed.jsonl", reviews(30, start=9000))
    # The source repeats two of the fixed texts (one with other spacing and case): they must stay
    # out of train and validation.
    repeats = [{"text": "THE film number 9000 was  bad from start to end", "label": "neg"},
               {"text": "the film number 9001 was great from start to end", "label": "pos"}]
    source = write(tmp_path / "source.jsonl", reviews(120) + repeats)
    params = parse_params({"projects": {"c": {"task": "classification",
                                              "data": {"source": str(source), "eval_source": str(fixed)}}}})
    test = run_until_split(tmp_path, params)
    paths = ProjectPaths.of("c", tmp_path)
    assert sorted(r["text"] for r in test) == sorted(r["text"] for r in reviews(30, start=9000))
    seen = [r["text"].lower() for s in ("train", "validation") for r in read_jsonl(paths.splits / f"{s}.jsonl")]
    assert not any("number 9000 " in t or "number 9001 " in t for t in seen)
    assert json.loads((paths.raw / "source.json").read_text())["eval_rows"] == 30
    before = content_hash(paths.splits / "test.jsonl")

    write(source, reviews(200) + repeats)  # new data: the test split does not move
    run_until_split(tmp_path, params)
    assert content_hash(paths.splits / "test.jsonl") == before
    assert len(read_jsonl(paths.splits / "train.jsonl")) > 100


def test_an_evaluation_set_that_is_not_a_local_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.eval_source 'hf:x/y' must be a local file or folder"):
        parse_params({"projects": {"c": {"task": "classification", "data": {"eval_source": "hf:x/y"}}}})
    with pytest.raises(ConfigError, match="does not exist"):
        parse_params({"projects": {"c": {"task": "classification",
                                         "data": {"eval_source": str(tmp_path / "missing.jsonl")}}}})
