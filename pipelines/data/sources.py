"""Where a project's raw examples come from: ``builtin``, a local path, or ``hf:<id>[:<config>]``.

Every source yields records with the task's canonical field names (``text`` / ``label``,
``source`` / ``target``, ``document`` / ``summary``) and, when the source brings its own splits,
a ``split`` field (train, validation or test).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.core.errors import DataError
from pipelines.data.files import SPLIT_ALIASES, SUFFIXES, _places, _read, _split_files
from pipelines.config.tasks import TaskSpec
from pipelines.data.text import label_text

logger = logging.getLogger(__name__)

@dataclass
class RawData:
    records: list[dict]
    # facts for the ingest report: source, bad bytes replaced, rows skipped and why
    stats: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- field mapping
_KIND = {list: "a list", dict: "an object"}


def _value_problems(rows: list[dict], task: TaskSpec, mapping: dict[str, str], place) -> list[str]:
    """What makes the values of the mapped columns unusable, one sentence per column."""
    problems = []
    for canon, col in mapping.items():
        attr = task.fields[canon]
        if canon in task.text_fields:
            # Numbers are converted to text (and counted); a list or an object would become its repr.
            bad = [(i, v) for i, v in enumerate(row.get(col) for row in rows) if isinstance(v, (list, dict))]
            if bad:
                keys = sorted({k for _, v in bad if isinstance(v, dict) for k in v})
                hint = f" Its objects have the keys {', '.join(map(repr, keys[:10]))}: put the text you mean " \
                       "in a column of its own." if keys else ""
                problems.append(
                    f"{len(bad)} of {len(rows)} rows have a {col!r} (data.{attr}) value that is not text: "
                    f"{_places([f'{place(i)}: {_KIND[type(v)]} {str(v)[:40]}' for i, v in bad])}. "
                    f"Give one string per row, or point data.{attr} at the column that holds it.{hint}"
                )
            continue
        bad, kinds = [], {"true/false": [], "other": []}
        for i, row in enumerate(rows):
            val = row.get(col)
            try:
                if label_text(val):
                    kinds["true/false" if isinstance(val, bool) else "other"].append(i)
            except ValueError as exc:
                bad.append(f"{place(i)}: {exc}")
        if bad:
            problems.append(
                f"{len(bad)} of {len(rows)} rows have a {col!r} (data.{attr}) value that is not one class: "
                f"{_places(bad)}. A classification label is one string or integer per row (a list means several "
                "labels, a fraction a score): keep one label per text (a row per label if a text has several), or "
                f"point data.{attr} at the column that holds the class"
            )
        elif kinds["true/false"] and kinds["other"]:
            problems.append(
                f"the {col!r} column (data.{attr}) mixes true/false with other labels (true/false at "
                f"{_places([place(i) for i in kinds['true/false']])}; others at "
                f"{_places([place(i) for i in kinds['other']])}), so true and 1 would be two classes; "
                "use one kind of label throughout"
            )
    return problems


def canonicalize(rows: list[dict], task: TaskSpec, data_cfg, where: str, stats: dict,
                 lines: list[int] | None = None) -> list[dict]:
    """Rename the user's columns to the task's canonical names; a missing column is an error, and so
    is a value no stage can use (a list as text or as a label, a fraction as a label).

    ``lines`` gives the line each row starts on, for messages; without it rows are named by index.
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
    place = (lambda i: f"line {lines[i]}") if lines else (lambda i: f"index {i}")
    problems = _value_problems(rows, task, mapping, place)
    if problems:
        raise DataError(f"{where}: " + "; ".join(problems))
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
    rows = task.builtin(data_cfg.builtin_size, seed)
    # builtin data uses the canonical names; map them to the configured ones only if they differ
    records = [{canon: r.get(canon) for canon in task.fields} for r in rows]
    return RawData(records, {"source": "builtin", "generator": f"pipelines.tasks.{task.name}.builtin"})


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
            rows, lines = _read(f, data_cfg.on_bad_utf8, stats)
            rows = canonicalize(rows, task, data_cfg, str(f), stats, lines)
            records.extend({**r, "split": split} for r in rows)
            stats[f"rows_{split}"] = len(rows)
    else:
        rows, lines = _read(path, data_cfg.on_bad_utf8, stats)
        records = canonicalize(rows, task, data_cfg, str(path), stats, lines)
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


def load_eval_set(task: TaskSpec, data_cfg) -> RawData:
    """The fixed evaluation set of ``data.eval_source`` (a file, or every data file of a folder),
    read with the source's column names; every record is marked as the test split."""
    path = Path(data_cfg.eval_source).expanduser()
    if not path.exists():
        raise DataError(f"data.eval_source {data_cfg.eval_source!r}: no such file or folder; give a "
                        ".jsonl/.json/.csv/.parquet file or a folder of them, or remove the key")
    files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise DataError(f"data.eval_source {str(path)!r} holds no {'/'.join(SUFFIXES)} file")
    stats: dict[str, Any] = {"source": str(path)}
    records: list[dict] = []
    for f in files:
        rows, lines = _read(f, data_cfg.on_bad_utf8, stats)
        records.extend({**r, "split": "test"} for r in canonicalize(rows, task, data_cfg, str(f), stats, lines))
    if not records:
        raise DataError(f"data.eval_source {str(path)!r} gave no records")
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
