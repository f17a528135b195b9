"""Reading a table of examples from a file: JSON Lines, JSON, CSV or Parquet, in whatever text
encoding it was saved in, with every unreadable row counted and the reason reported."""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
import unicodedata
from pathlib import Path

from pipelines.core.errors import DataError
from pipelines.core.io import iter_jsonl

logger = logging.getLogger(__name__)

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
}


# --------------------------------------------------------------------------- reading files
# Byte-order marks and the encodings they announce; UTF-32-LE's mark begins with UTF-16-LE's, so it
# is tried first. The UTF-8 mark is dropped by decoding as utf-8-sig.
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32-LE"),
    (codecs.BOM_UTF32_BE, "UTF-32-BE"),
    (codecs.BOM_UTF16_LE, "UTF-16-LE"),
    (codecs.BOM_UTF16_BE, "UTF-16-BE"),
)
# Files that are not text whatever their name says; re-encoding cannot help, converting can.
_NOT_TEXT = (
    (b"\x1f\x8b", "a gzip archive; decompress it first (gunzip)"),
    (b"PK\x03\x04", "a zip archive (or an .xlsx / .docx file); unzip it, or save the sheet as CSV"),
    (b"\xfd7zXZ\x00", "an xz archive; decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive; decompress it first (unzstd)"),
    (b"PAR1", "a Parquet file; give it the .parquet suffix"),
    (b"SQLite format 3\x00", "an SQLite database; export the table as CSV or JSON Lines"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file (.xls / .doc); save the sheet as CSV"),
    (b"%PDF-", "a PDF document; extract its text into CSV or JSON Lines"),
)
# Above this share of undecodable characters the file is in another encoding, not UTF-8 with a few
# damaged bytes: replacing them would train on U+FFFD. Latin-1 French or German stays far below it,
# a Cyrillic, Greek or CJK code page far above.
MAX_REPLACED_SHARE = 0.2
# Control bytes other than tab, line feed, vertical tab, form feed and carriage return. Scraped text
# carries a few (a stray NUL from a C string, an escape code), and clean drops them; a binary file
# is full of them (about one byte in nine of random data). Up to this share, or this many, of a
# file's bytes, a file with NUL bytes is text with strays: they are removed and counted.
_CONTROL_BYTES = bytes(range(0x00, 0x09)) + bytes(range(0x0E, 0x20)) + b"\x7f"
MAX_STRAY_CONTROL_SHARE = 0.01
STRAY_CONTROL_HANDFUL = 5
# How many offending lines a message lists before it only counts the rest.
SHOW = 5


def _places(places: list[str]) -> str:
    """'line 3, line 9 and 4 more': the first few places a problem occurs, and how many others."""
    shown = ", ".join(places[:SHOW])
    return shown + (f" and {len(places) - SHOW} more" if len(places) > SHOW else "")


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _wide_text_encoding(data: bytes) -> str | None:
    """UTF-32 or UTF-16 (and its byte order) when ``data`` decodes as text in it, else None.

    A file of UTF-16 text has NUL bytes on one side of every byte pair (ASCII letters, digits,
    separators and line ends have a zero high byte), and its 0x0A bytes are line ends; a binary
    file has NUL bytes anywhere, and decodes to U+0000, unpaired surrogates or control characters;
    a UTF-8 file with a few stray NUL bytes keeps its 0x0A bytes outside any line end."""
    sample = data[: 1 << 16]
    line_feeds = sample.count(b"\n")
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    utf16 = "UTF-16-LE" if odd > even else "UTF-16-BE"
    if max(odd, even) < 0.01 * len(sample) / 2 or min(odd, even) > 0.1 * max(odd, even):
        utf16 = None  # a few stray NUL bytes, or NUL bytes on both sides: not UTF-16 text
    for name in ("UTF-32-LE", "UTF-32-BE", utf16):
        if name is None:
            continue
        width = 4 if "32" in name else 2
        text = sample[: len(sample) // width * width].decode(name.lower(), errors="replace")
        junk = sum(ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\t\n\r") for ch in text)
        if text and "\x00" not in text and junk <= 0.01 * len(text) and text.count("\n") >= 0.5 * line_feeds:
            return name
    return None


def _decode(data: bytes, path: Path, on_bad: str, stats: dict) -> str:
    for magic, what in _NOT_TEXT:
        if data.startswith(magic):
            raise DataError(f"{path} is not a text file: it is {what}")
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom):].decode(name.lower())
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}: starts with a {name} byte-order mark, but the bytes at offset {exc.start + len(bom)} "
                    f"are not {name}; re-encode the file as UTF-8"
                ) from None
            stats["encoding"] = f"{name} (byte-order mark)"
            return text
    nul = data.find(b"\x00")
    if nul >= 0:
        wide = _wide_text_encoding(data)
        if wide:
            raise DataError(
                f"{path} looks like {wide} text without a byte-order mark (NUL bytes between the characters); "
                f"re-encode it as UTF-8, e.g. iconv -f {wide[:-3]}{wide[-2:]} -t UTF-8 {path.name} > utf8-{path.name}"
            )
        controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
        if controls > max(STRAY_CONTROL_HANDFUL, MAX_STRAY_CONTROL_SHARE * len(data)):
            raise DataError(
                f"{path}: NUL byte at offset {nul} (line {_line_of(data, nul)}): this is a binary file, not "
                f"{path.suffix} text ({controls} of {len(data)} bytes are NUL or other control bytes). Give a "
                "UTF-8 text file; if it is text, remove the NUL and control bytes"
            )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if on_bad == "error":
            raise DataError(
                f"{path}: bytes at offset {exc.start} (line {_line_of(data, exc.start)}) are not UTF-8; re-encode "
                "the file as UTF-8, or set data.on_bad_utf8: replace to replace and count them"
            ) from None
        text = data.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
        if bad > MAX_REPLACED_SHARE * len(text):
            raise DataError(
                f"{path}: {bad} of {len(text)} characters ({bad / len(text):.0%}) are not UTF-8, the first at line "
                f"{_line_of(data, exc.start)}: the file is in another encoding (a code page such as cp1251, cp1252 "
                "or Shift-JIS), and replacing them would leave little text. Re-encode it as UTF-8, e.g. "
                f"iconv -f CP1251 -t UTF-8 {path.name} > utf8-{path.name}"
            ) from None
        stats["bad_utf8_replaced"] = stats.get("bad_utf8_replaced", 0) + bad
        text = text.removeprefix("\ufeff")
    if nul >= 0:
        # Removed after decoding, so the offsets in the messages above are those of the file. A NUL
        # is valid UTF-8, but JSON refuses it inside a string and clean would drop it anyway.
        stats["nul_bytes_removed"] = stats.get("nul_bytes_removed", 0) + text.count("\x00")
        text = text.replace("\x00", "")
    return text


_LONE_CR = re.compile(r"\r(?!\n)")


def _misquoted(row_text: str) -> bool:
    """Whether the quotes of one row's text go wrong: a quoted field still open at the end of the
    file, or a quote that closes a field and is followed by more of it. An unclosed quote shows the
    second way when a later field's opening quote closes it, after it has swallowed the rows between."""
    try:
        for _ in csv.reader(io.StringIO(row_text, newline=""), strict=True):
            pass
    except csv.Error:
        return True
    return False


def _read_csv(text: str, path: Path, stats: dict) -> tuple[list[dict], list[int]]:
    """Rows of a CSV file (header first) and the line each row starts on."""
    if "\n" in text:
        # The rows end in \n or \r\n, so a lone \r sits inside a field (text pasted from an old Mac
        # editor); csv would end the row there and shift the rest into a row of its own. Clean folds
        # it into a space anyway.
        lone = len(_LONE_CR.findall(text))
        if lone:
            text = _LONE_CR.sub(" ", text)
            stats["csv_lone_cr_replaced"] = stats.get("csv_lone_cr_replaced", 0) + lone
    # newline="" hands csv the line ends as they are, so it reads \r (classic Mac), \n and \r\n rows.
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[dict] = []
    lines: list[int] = []
    too_many: list[int] = []
    unclosed: list[int] = []
    raw_lines: list[str] | None = None  # the lines as csv reads them, for a second look at a row
    try:
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            if not fields:  # a blank line
                continue
            if header is None:
                header = fields
                dup = sorted({c for c in header if header.count(c) > 1})
                if dup:
                    raise DataError(f"{path}: the header names column(s) {', '.join(map(repr, dup))} more than once; "
                                    "give every column its own name")
                continue
            if len(fields) > len(header) and any(f.strip() for f in fields[len(header):]):
                too_many.append(start)
            elif len(fields) < len(header) and reader.line_num > start:
                # A short row over several lines is valid when a quoted field holds line breaks and
                # trailing optional columns are left out; only quotes that go wrong mean one is unclosed.
                if raw_lines is None:
                    raw_lines = io.StringIO(text, newline="").readlines()
                if _misquoted("".join(raw_lines[start - 1:reader.line_num])):
                    unclosed.append(start)
            rows.append({c: fields[i] if i < len(fields) else None for i, c in enumerate(header)})
            lines.append(start)
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc}); fix that line") from None
    problems = []
    if too_many:
        problems.append(
            f"{len(too_many)} row(s) have more fields than the header's {len(header)} ({', '.join(header)}): "
            f"{_places([f'line {n}' for n in too_many])}. Quote a field that holds a comma (\"a, b\"); a file "
            "separated by ; or tabs must be saved with commas"
        )
    if unclosed:
        problems.append(
            f"{len(unclosed)} row(s) run over several lines and end with fewer fields than the header, with a "
            "quoted field that runs to the end of the file or into the rows below: "
            f"{_places([f'line {n}' for n in unclosed])}. A quote (\") there is probably not closed; close it, or "
            "write a quote inside a quoted field as two (\"\")"
        )
    if problems:
        raise DataError(f"{path}: " + "; ".join(problems))
    if not rows:
        raise DataError(f"{path}: no rows below the CSV header")
    return rows, lines


def _read_jsonl(text: str, path: Path) -> tuple[list[dict], list[int]]:
    # Universal newlines, not str.splitlines(): that also splits at U+2028, U+0085 and form feeds,
    # which JSON strings may hold unescaped.
    try:
        numbered = list(iter_jsonl(io.StringIO(text, newline=None), path, DataError))
    except DataError as err:
        # A pretty-printed JSON document fails on its first line; say what the file is instead.
        try:
            doc = json.loads(text)
        except json.JSONDecodeError:
            raise err from None
        if not isinstance(doc, (list, dict)) or "\n" not in text.strip():
            raise err from None
        what = "a list" if isinstance(doc, list) else "one object"
        raise DataError(
            f"{path} holds one JSON document ({what}), not JSON Lines: give it the .json suffix if it is a list of "
            "objects, or write one object per line"
        ) from None
    if not numbered:
        raise DataError(f"{path} holds no records")
    return [rec for _, rec in numbered], [n for n, _ in numbered]


def _read_json(text: str, path: Path) -> tuple[list[dict], list[int] | None]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several documents one after another: JSON Lines named .json
            return _read_jsonl(text, path)
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); fix the file, "
                        "or give JSON Lines (one object per line)") from None
    expected = "expected a list of objects ([{...}, {...}]) or JSON Lines (one object per line)"
    if isinstance(doc, dict):
        lists = [k for k, v in doc.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)]
        # One object on one line is JSON Lines with one record, unless it holds objects: then it
        # wraps the records (under "data", or one key per split) and reading it as a record would
        # only report its keys as missing columns.
        holds_objects = any(isinstance(v, dict) or (isinstance(v, list) and any(isinstance(r, dict) for r in v))
                            for v in doc.values())
        if not any(end in text.strip() for end in "\r\n") and not holds_objects:
            return _read_jsonl(text, path)
        hint = f"; its key {lists[0]!r} holds a list of {len(doc[lists[0]])} objects: save that list alone" \
            if lists else ""
        raise DataError(f"{path} holds one JSON object, not a list of objects: {expected}{hint}")
    if not isinstance(doc, list):
        raise DataError(f"{path} holds a single JSON value ({type(doc).__name__}): {expected}")
    bad = [i for i, r in enumerate(doc) if not isinstance(r, dict)]
    if bad:
        raise DataError(f"{path}: {len(bad)} of {len(doc)} list elements are not objects: "
                        f"{_places([f'index {i} ({type(doc[i]).__name__})' for i in bad])}; {expected}")
    if not doc:
        raise DataError(f"{path} holds no records")
    return doc, None


def _read(path: Path, on_bad_utf8: str, stats: dict) -> tuple[list[dict], list[int] | None]:
    """Rows of one file and the line each starts on (None where lines mean nothing: JSON, Parquet)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; give a file with at least one example")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist(), None
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise DataError(f"{path}: cannot read as Parquet ({exc})") from None
    text = _decode(path.read_bytes(), path, on_bad_utf8, stats)
    if suffix == ".csv":
        return _read_csv(text, path, stats)
    if suffix == ".json":
        return _read_json(text, path)
    return _read_jsonl(text, path)


def read_table(path: Path, on_bad_utf8: str = "replace", stats: dict | None = None) -> list[dict]:
    """Read one JSON Lines / JSON / CSV / Parquet file into a list of dicts."""
    return _read(path, on_bad_utf8, stats if stats is not None else {})[0]


def _split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in SUFFIXES and f.stem.lower() in SPLIT_ALIASES:
            split = SPLIT_ALIASES[f.stem.lower()]
            if split in found:
                raise DataError(f"{folder}: two files for the {split} split ({found[split].name}, {f.name}); keep one")
            found[split] = f
    return found
