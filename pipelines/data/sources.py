"""Where a project's raw examples come from: ``builtin``, a local path, or ``hf:<id>[:<config>]``.

Every source yields records with the task's canonical field names (``text`` / ``label``,
``source`` / ``target``, ``document`` / ``summary``) and, when the source brings its own splits,
a ``split`` field (train, validation or test).
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..io import parse_jsonl
from ..tasks import TaskSpec

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


@dataclass
class RawData:
    records: list[dict]
    # facts for the ingest report: source, bad bytes replaced, rows skipped and why
    stats: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- reading files
def _decode(data: bytes, path: Path, on_bad: str, stats: dict) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if on_bad == "error":
            raise DataError(
                f"{path}: bytes at offset {exc.start} are not UTF-8; re-encode the file as UTF-8, "
                "or set data.on_bad_utf8: replace to replace and count them"
            ) from None
        text = data.decode("utf-8", errors="replace")
        stats["bad_utf8_replaced"] = stats.get("bad_utf8_replaced", 0) + text.count("\ufffd")
        return text.removeprefix("\ufeff")


def read_table(path: Path, on_bad_utf8: str = "replace", stats: dict | None = None) -> list[dict]:
    """Read one JSON Lines / JSON / CSV / Parquet file into a list of dicts."""
    stats = stats if stats is not None else {}
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; give a file with at least one example")
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise DataError(f"{path}: cannot read as Parquet ({exc})") from None
    text = _decode(path.read_bytes(), path, on_bad_utf8, stats)
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows:
            raise DataError(f"{path}: no rows below the CSV header")
        return rows
    if suffix == ".json":
        stripped = text.lstrip()
        if stripped.startswith("["):
            try:
                rows = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
            if not all(isinstance(r, dict) for r in rows):
                raise DataError(f"{path}: expected a JSON list of objects")
            return rows
    rows = parse_jsonl(text.splitlines(), path, DataError)
    if not rows:
        raise DataError(f"{path} holds no records")
    return rows


def _split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in SUFFIXES and f.stem.lower() in SPLIT_ALIASES:
            split = SPLIT_ALIASES[f.stem.lower()]
            if split in found:
                raise DataError(f"{folder}: two files for the {split} split ({found[split].name}, {f.name}); keep one")
            found[split] = f
    return found


# --------------------------------------------------------------------------- field mapping
def canonicalize(rows: list[dict], task: TaskSpec, data_cfg, where: str, stats: dict) -> list[dict]:
    """Rename the user's columns to the task's canonical names; a missing column is an error.

    An optional list field (summarization's references) may be absent from some files: AESLC has
    extra references only in its validation and test files. Absent everywhere is an error in load()."""
    mapping = {canon: getattr(data_cfg, attr) for canon, attr in task.fields.items()}
    extras = {canon: getattr(data_cfg, attr) for canon, attr in (task.extra_fields or {}).items()}
    extras = {k: v for k, v in extras.items() if v}
    columns = list(rows[0].keys()) if rows else []
    missing = [(canon, col) for canon, col in mapping.items() if col not in rows[0]]
    if missing:
        wanted = ", ".join(f"{col!r} (data.{(task.fields | (task.extra_fields or {}))[canon]})" for canon, col in missing)
        raise DataError(
            f"{where}: column(s) {wanted} not found; columns found: {', '.join(map(repr, columns))}. "
            "Set the field names in params.yaml to the columns your data has."
        )
    for canon, col in extras.items():
        if col not in rows[0]:
            stats.setdefault("optional_field_absent", []).append(f"{col!r} in {where}")
    out = []
    not_text = 0
    for row in rows:
        rec = {}
        for canon, col in mapping.items():
            val = row.get(col)
            if canon in task.text_fields and val is not None and not isinstance(val, str):
                not_text += 1
                val = str(val)
            rec[canon] = val
        for canon, col in extras.items():
            val = row.get(col)
            if isinstance(val, str):
                val = [val]
            rec[canon] = list(val) if val is not None else None
        out.append(rec)
    if not_text:
        stats["non_text_values_converted"] = stats.get("non_text_values_converted", 0) + not_text
    return out


# --------------------------------------------------------------------------- sources
def load_builtin(task: TaskSpec, data_cfg, seed: int) -> RawData:
    module = importlib.import_module(f"pipelines.data.builtin_{task.name}")
    rows = module.generate(data_cfg.builtin_size, seed)
    # builtin data uses the canonical names; map them to the configured ones only if they differ
    records = [{canon: r.get(canon) for canon in task.fields} for r in rows]
    return RawData(records, {"source": "builtin", "generator": module.__name__})


def load_path(task: TaskSpec, data_cfg) -> RawData:
    path = Path(data_cfg.source).expanduser()
    stats: dict[str, Any] = {"source": str(path)}
    if not path.exists():
        raise DataError(
            f"data.source {data_cfg.source!r}: no such file or folder. Give a .jsonl/.json/.csv/.parquet file, "
            "a folder with train/validation/test files, 'builtin', or 'hf:<dataset id>'"
        )
    records: list[dict] = []
    if path.is_dir():
        files = _split_files(path)
        if "train" not in files:
            present = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
            raise DataError(
                f"{path}: a data folder needs a train file (train.jsonl, train.csv, ...); found: {present}"
            )
        for split, f in files.items():
            rows = canonicalize(read_table(f, data_cfg.on_bad_utf8, stats), task, data_cfg, str(f), stats)
            records.extend({**r, "split": split} for r in rows)
            stats[f"rows_{split}"] = len(rows)
    else:
        records = canonicalize(read_table(path, data_cfg.on_bad_utf8, stats), task, data_cfg, str(path), stats)
    return RawData(records, stats)


def load_hf(task: TaskSpec, data_cfg) -> RawData:
    spec = data_cfg.source[3:]
    name, _, config = spec.partition(":")
    try:
        import datasets

        dsd = datasets.load_dataset(name, config or None)
    except Exception as exc:  # offline, unknown id, gated: all end here
        raise DataError(
            f"data.source {data_cfg.source!r}: could not load {name!r} from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Without network access use 'builtin' or a local path."
        ) from None
    stats: dict[str, Any] = {"source": data_cfg.source}
    records = []
    for split_name, ds in dsd.items():
        split = SPLIT_ALIASES.get(split_name.lower())
        if split is None:
            stats.setdefault("splits_ignored", []).append(split_name)
            continue
        rows = canonicalize(ds.to_list(), task, data_cfg, f"{data_cfg.source}[{split_name}]", stats)
        records.extend({**r, "split": split} for r in rows)
        stats[f"rows_{split}"] = len(rows)
    return RawData(records, stats)


def load(task: TaskSpec, data_cfg, seed: int) -> RawData:
    """Load a project's raw records from the configured source."""
    kind = data_cfg.kind
    if kind == "builtin":
        raw = load_builtin(task, data_cfg, seed)
    elif kind == "hf":
        raw = load_hf(task, data_cfg)
    else:
        raw = load_path(task, data_cfg)
    if not raw.records:
        raise DataError(f"data.source {data_cfg.source!r} gave no records")
    for canon, attr in (task.extra_fields or {}).items():
        col = getattr(data_cfg, attr)
        if col and kind != "builtin" and all(r.get(canon) is None for r in raw.records):
            raise DataError(f"data.{attr} {col!r}: no file of data.source {data_cfg.source!r} has that column; "
                            f"set data.{attr}: null or name the column that holds them")
    return raw
