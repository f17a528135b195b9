"""Bad data stops ingest / clean / split with a message that names the problem and the fix, and
leaves no output behind; what can be repaired (bytes that are not UTF-8) is repaired and counted.

The stages run in-process against a temporary project root (PIPELINES_ROOT).
"""

from __future__ import annotations

import codecs
import copy
import json

import pytest
import yaml

from pipelines.config import parse_params, resolve_projects
from pipelines.core.errors import DataError
from pipelines.core.io import write_jsonl
from pipelines.core.paths import ProjectPaths
from pipelines.stages import clean, ingest, split
from pipelines.tasks import get_task
from pipelines.data.text import label_text
from tests.tiny import REPO

RAW = yaml.safe_load((REPO / "params.yaml").read_text())
RAW["projects"] = resolve_projects(RAW["projects"], [])  # every key present, so tests can change any


def params(project: str = "classification", **data):
    raw = copy.deepcopy(RAW)
    raw["projects"][project]["data"].update(data)
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
    raw["projects"]["classification"]["split"]["max_leakage"] = max_leakage
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


# --------------------------------------------------------------------------- labels, encodings, formats
def _reviews(n: int = 40, label_of=lambda i: "pos" if i % 2 else "neg") -> list[dict]:
    return [{"text": f"review number {i} of a film", "label": label_of(i)} for i in range(n)]


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


@pytest.mark.parametrize("bad,shown", [(["neg", "x"], "a list ['neg', 'x']"), ({"y": 1}, "an object {'y': 1}"),
                                       (0.75, "the fraction 0.75")])
def test_a_label_that_is_not_one_class_fails_ingest_naming_the_lines(tmp_path, bad, shown):
    rows = _reviews()
    for i in (2, 5, 6):
        rows[i]["label"] = bad
    src = tmp_path / "reviews.jsonl"
    src.write_text(_jsonl(rows))
    with pytest.raises(DataError) as err:
        ingest.run(params(source=str(src)), "classification")
    msg = str(err.value)
    assert "reviews.jsonl" in msg and "3 of 40 rows" in msg and "line 3: " + shown in msg and "line 7" in msg
    assert "one string or integer per row" in msg and "data.label_field" in msg
    assert leftovers() == []


def test_a_list_written_into_a_csv_label_cell_is_refused_and_whole_floats_are_integers(tmp_path):
    src = tmp_path / "reviews.csv"
    src.write_text('text,label\na fine film,pos\na dull film,"[""neg"", ""x""]"\n')
    with pytest.raises(DataError, match=r"line 3: the text '\[\"neg\", \"x\"\]', a list or an object written"):
        ingest.run(params(source=str(src)), "classification")
    assert leftovers() == []
    # 1 and 1.0 (a spreadsheet's export) are one class, not two
    kept, _ = clean.clean_records([{"text": "one film", "label": 1}, {"text": "two films", "label": 1.0},
                                   {"text": "three films", "label": 0}], get_task("classification"),
                                  params().project("classification"))
    assert [r["label"] for r in kept] == ["1", "1", "0"]


def test_class_names_in_brackets_are_labels_and_only_text_that_parses_as_a_list_is_refused(tmp_path):
    names = ["[other]", "{neutral}", "pos"]
    rows = _reviews(30, label_of=lambda i: names[i % 3])
    src = tmp_path / "reviews.csv"
    src.write_text("text,label\n" + "".join(f'{r["text"]},{r["label"]}\n' for r in rows))
    p = params(source=str(src))
    assert ingest.run(p, "classification")["rows"] == 30
    assert clean.run(p, "classification")["rows_out"] == 30
    kept = [json.loads(line) for line in (ProjectPaths.of("classification").clean / "data.jsonl").read_text().splitlines()]
    assert sorted({r["label"] for r in kept}) == sorted(names)
    for written in ['["neg", "x"]', "('neg', 'x')", "{'y': 1}", "{'neg', 'x'}"]:
        with pytest.raises(ValueError, match="written as text"):
            label_text(written)


def test_a_single_label_fails_clean_and_split_naming_it(tmp_path):
    src = tmp_path / "reviews.jsonl"
    src.write_text(_jsonl(_reviews(label_of=lambda i: "pos")))
    p = params(source=str(src))
    ingest.run(p, "classification")
    with pytest.raises(DataError) as err:
        clean.run(p, "classification")
    assert "all 40 kept rows have the label 'pos'" in str(err.value) and "data.label_field ('label')" in str(err.value)
    assert not ProjectPaths.of("classification").clean.exists()
    assert not ProjectPaths.of("classification").report("clean").exists()
    # given splits whose train holds one class: split refuses, naming the label
    _write_clean(_given("train", 20, label_of=lambda i: "pos") + _given("validation", 4, label_of=lambda i: "pos")
                 + _given("test", 4, label_of=lambda i: "pos"))
    with pytest.raises(DataError, match=r"all 20 train rows have the label \['pos'\].*at least two classes"):
        split.run(params(), "classification")
    assert not ProjectPaths.of("classification").splits.exists()


@pytest.mark.parametrize("ending", ["\r", "\r\n", "\n"])
def test_csv_rows_end_in_cr_crlf_or_lf_and_a_stray_cr_stays_inside_its_field(tmp_path, ending):
    rows = _reviews(6)
    rows[2]["text"] = "a quoted\rfield"
    body = "text,label" + ending + "".join(f'"{r["text"]}",{r["label"]}{ending}' for r in rows)
    if ending != "\r":  # an unquoted field with a lone \r, in a file whose rows end in \n
        body = body.replace('"review number 4 of a film"', "review number 4\rof a film")
    src = tmp_path / "reviews.csv"
    src.write_bytes(body.encode())
    info = ingest.run(params(source=str(src)), "classification")
    assert info["rows"] == 6 and info.get("csv_lone_cr_replaced", 0) == (0 if ending == "\r" else 2)
    got = [json.loads(line) for line in (ProjectPaths.of("classification").raw / "data.jsonl").read_text().splitlines()]
    assert [r["label"] for r in got] == [r["label"] for r in rows]
    assert got[4]["text"].split() == "review number 4 of a film".split()
    assert got[2]["text"].split() == ["a", "quoted", "field"]


def test_a_quoted_multi_line_field_in_a_row_that_leaves_out_its_last_column_is_read(tmp_path):
    src = tmp_path / "reviews.csv"
    src.write_text('text,label,note\n"first\nsecond",pos\na dull film,neg,seen twice\n"a long\nfine\nfilm",neg\n')
    info = ingest.run(params(source=str(src)), "classification")
    assert info["rows"] == 3
    got = [json.loads(line) for line in (ProjectPaths.of("classification").raw / "data.jsonl").read_text().splitlines()]
    assert [r["text"] for r in got] == ["first\nsecond", "a dull film", "a long\nfine\nfilm"]
    # a quote left open until a later field's quote closes it swallows the rows between: still refused
    src.write_text('text,label,note\n"a film that never ends,pos\nmore,neg\n"a dull film",neg\nfine,pos,x\n')
    with pytest.raises(DataError, match=r"1 row\(s\) run over several lines.*line 2.*probably not closed"):
        ingest.run(params(source=str(src)), "classification")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_few_stray_nul_bytes_in_a_text_file_are_removed_and_counted(tmp_path, suffix):
    rows = _reviews(20)
    rows[3]["text"] = "a scraped@NUL@ review"
    body = _jsonl(rows) if suffix == ".jsonl" else "text,label\n" + "".join(f'{r["text"]},{r["label"]}\n' for r in rows)
    src = tmp_path / f"reviews{suffix}"
    src.write_bytes(body.encode().replace(b"@NUL@", b"\x00"))
    info = ingest.run(params(source=str(src)), "classification")
    assert info["rows"] == 20 and info["nul_bytes_removed"] == 1
    raw = ProjectPaths.of("classification").raw
    assert json.loads((raw / "source.json").read_text())["nul_bytes_removed"] == 1
    assert json.loads((raw / "data.jsonl").read_text().splitlines()[3])["text"] == "a scraped review"


@pytest.mark.parametrize("content,expected", [
    (bytes(range(256)) * 4, r"reviews.csv: NUL byte at offset 0 \(line 1\): this is a binary file"),
    (b"text,label\n" + b"a fine\x00film,pos\n" * 20, r"reviews.csv: NUL byte at offset 17 \(line 2\): this is a binary"),
    (b"\x1f\x8b\x08\x00" + bytes(60), r"reviews.csv is not a text file: it is a gzip archive"),
    (b'text,label\n"a fine film",pos\n"' + b"x" * 200_000 + b'",neg\n', r"reviews.csv:3: not valid CSV \(field larger"),
    (b'text,label\na fine film,pos\n"a film that never ends,neg\nmore,pos\n',
     r"reviews.csv: 1 row\(s\) run over several lines.*line 3.*probably not closed"),
    (b"text,label\na fine, long film,pos\na dull film,neg\n",
     r"reviews.csv: 1 row\(s\) have more fields than the header's 2 \(text, label\): line 2"),
])
def test_a_broken_or_binary_csv_is_a_data_error_naming_the_file_and_line(tmp_path, content, expected):
    src = tmp_path / "reviews.csv"
    src.write_bytes(content)
    with pytest.raises(DataError, match=expected):
        ingest.run(params(source=str(src)), "classification")
    assert leftovers() == []


@pytest.mark.parametrize("bom,codec,reported", [
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16-LE (byte-order mark)"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16-BE (byte-order mark)"),
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32-LE (byte-order mark)"),
    (codecs.BOM_UTF8, "utf-8", None),
])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_byte_order_mark_says_how_to_decode_the_file(tmp_path, bom, codec, reported, suffix):
    rows = _reviews(4)
    rows[0]["text"] = "Ein schöner Film, 很好"
    csv_text = "text,label\n" + "".join(f'"{r["text"]}",{r["label"]}\n' for r in rows)
    text = _jsonl(rows) if suffix == ".jsonl" else csv_text
    src = tmp_path / f"reviews{suffix}"
    src.write_bytes(bom + text.encode(codec))
    info = ingest.run(params(source=str(src)), "classification")
    assert info["rows"] == 4 and info.get("bad_utf8_replaced", 0) == 0 and info.get("encoding") == reported
    first = json.loads((ProjectPaths.of("classification").raw / "data.jsonl").read_text().splitlines()[0])
    assert first == {"text": "Ein schöner Film, 很好", "label": "neg"}


@pytest.mark.parametrize("codec,name", [("utf-16-le", "UTF-16-LE"), ("utf-16-be", "UTF-16-BE")])
def test_utf16_without_a_byte_order_mark_is_named_with_the_fix(tmp_path, codec, name):
    src = tmp_path / "reviews.csv"
    src.write_bytes(("text,label\n" + "".join(f"Отзыв {i} 很好,pos\n" for i in range(8))).encode(codec))
    with pytest.raises(DataError) as err:
        ingest.run(params(source=str(src)), "classification")
    assert f"reviews.csv looks like {name} text without a byte-order mark" in str(err.value)
    assert "re-encode it as UTF-8" in str(err.value)
    assert leftovers() == []


@pytest.mark.parametrize("name,content,expected", [
    ("one.json", json.dumps({"text": "a fine film", "label": "pos"}, indent=2),
     "holds one JSON object, not a list of objects: expected a list of objects"),
    ("wrapped.json", json.dumps({"data": _reviews(3)}, indent=2), "its key 'data' holds a list of 3 objects"),
    ("wrapped-line.json", json.dumps({"data": _reviews(3)}), "its key 'data' holds a list of 3 objects"),
    ("mixed.json", json.dumps(_reviews(3) + [["a", "b"]]), r"1 of 4 list elements are not objects: index 3 \(list\)"),
    ("lines.jsonl", _jsonl(_reviews(3)) + '["a fine film", "pos"]\n', r"lines.jsonl:4: expected one JSON object"),
    ("lines.jsonl", "7\n" + _jsonl(_reviews(3)), r"lines.jsonl:1: expected one JSON object .* got a number"),
    ("pretty.jsonl", json.dumps(_reviews(3), indent=2), r"holds one JSON document \(a list\), not JSON Lines"),
])
def test_json_that_is_not_a_list_of_objects_says_what_was_expected(tmp_path, name, content, expected):
    src = tmp_path / name
    src.write_text(content)
    with pytest.raises(DataError, match=expected):
        ingest.run(params(source=str(src)), "classification")
    assert leftovers() == []


def test_a_json_file_of_one_record_on_one_line_is_that_record(tmp_path):
    src = tmp_path / "one.json"
    src.write_text(json.dumps({"text": "a fine film", "label": "pos"}) + "\n")
    assert ingest.run(params(source=str(src)), "classification")["rows"] == 1
    got = (ProjectPaths.of("classification").raw / "data.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in got] == [{"text": "a fine film", "label": "pos"}]


def test_json_lines_under_a_json_name_and_a_u2028_inside_a_text_are_read(tmp_path):
    rows = _reviews(4)
    rows[1]["text"] = "first line\u2028second line"
    src = tmp_path / "reviews.json"
    src.write_text(_jsonl(rows))
    assert ingest.run(params(source=str(src)), "classification")["rows"] == 4


def test_texts_of_emoji_or_punctuation_only_are_not_duplicates_of_one_another(tmp_path):
    import itertools

    emoji = ["😀", "😢", "😡", "👍", "🎉", ":)", "!!!"]
    texts = [" ".join(c) for c in itertools.product(emoji, repeat=3)][:300]
    src = tmp_path / "emoji.jsonl"
    src.write_text(_jsonl([{"text": t, "label": "pos" if i % 2 else "neg"} for i, t in enumerate(texts)]))
    p = params(source=str(src))
    ingest.run(p, "classification")
    assert clean.run(p, "classification")["rows_out"] == 300
    assert sum(split.run(p, "classification")["rows"].values()) == 300


def _pairs(n: int, identical) -> str:
    return _jsonl([{"source": f"the dog number {i} runs home", "target": f"the dog number {i} runs home"
                    if identical(i) else f"der Hund Nummer {i} läuft nach Hause"} for i in range(n)])


def test_mostly_identical_pairs_are_refused_and_a_few_are_dropped_and_counted(tmp_path):
    src = tmp_path / "pairs.jsonl"
    src.write_text(_pairs(40, lambda i: i % 8 != 0))
    p = params("translation", source=str(src))
    ingest.run(p, "translation")
    with pytest.raises(DataError) as err:
        clean.run(p, "translation")
    msg = str(err.value)
    assert "35 of 40 pairs (88%) have the same text on both sides" in msg and "'the dog number 1 runs home'" in msg
    assert "data.source_field ('source') and data.target_field ('target')" in msg
    assert leftovers("translation") == [str(ProjectPaths.of("translation").raw)]
    assert not ProjectPaths.of("translation").report("clean").exists()

    # identical pairs teach copying: a few are dropped, and counted in the report
    src.write_text(_pairs(40, lambda i: i % 8 == 0))
    ingest.run(p, "translation")
    out = clean.run(p, "translation")
    assert out["dropped"] == {"identical_pair": 5} and out["rows_out"] == 35
    report = json.loads(ProjectPaths.of("translation").report("clean").read_text())
    assert report["identical_pairs"] == 5 and report["dropped"] == {"identical_pair": 5}
