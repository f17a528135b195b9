"""Run an exported or registered model over a file of inputs.

    python -m pipelines predict <project> INPUT [--model models/<project>/export | models:/<name>@champion]
    cat inputs.txt | python -m pipelines predict <project> - > predictions.jsonl

INPUT is a JSON Lines or CSV file with the project's input column (``text``, ``source`` or
``document``, or the field name set in params.yaml), or a ``.txt`` file with one input per line, all
UTF-8. Outputs go next to it, as ``<input>.predictions.jsonl``: each input record with the model's
output fields added (label and score, translation, or summary). The file is written whole or not at
all: a bad input stops the command naming its line, before the model runs. INPUT ``-`` reads standard
input (JSON Lines when the first line is an object, else one text per line) and writes the
predictions to standard output; ``--output -`` writes them there for a file too.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import logging
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipelines.core import settings
from pipelines.core.errors import ConfigError, DataError
from pipelines.core.io import atomic_file
from pipelines.core.inputs import BadRequest, BadText, validate_texts
from pipelines.serving.pyfunc import TextModel, brief, brief_list

logger = logging.getLogger(__name__)

SUFFIXES = (".txt", ".jsonl", ".csv", ".json", ".parquet")
# Inputs are refused above this length when the model does not say its own limit (clean.max_chars).
DEFAULT_MAX_CHARS = 100_000


@dataclass
class Loaded:
    """A model ready to predict, with what predict checks inputs against."""

    predict: Callable  # DataFrame with the task's input column -> DataFrame of outputs
    max_chars: int | None  # the longest input it takes; None when it does not say
    task: str | None  # the task it was trained for; None when it does not say


def load_model(model: str, project: str = "<project>") -> Loaded:
    """An export folder, or a pyfunc model from an MLflow URI (models:/, runs:/)."""
    if "://" in model or model.startswith(("models:/", "runs:/")):
        from pipelines.tracking import runs as tracking

        pyfunc = tracking.load_pyfunc(model)
        try:
            inner = pyfunc.unwrap_python_model()
        except Exception:  # a pyfunc that is not a PythonModel (another flavour)
            inner = None
        predict = _refusals_as_bad_requests(pyfunc.predict)
        if isinstance(inner, TextModel):
            return Loaded(predict, inner.max_chars, inner.task)
        return Loaded(predict, None, None)
    folder = Path(model)
    if not (folder / "export.json").exists():
        raise DataError(f"--model {model!r}: not an export folder (no export.json inside); run `dvc repro "
                        f"export@{project}` first, or give a registered model such as models:/{project}@champion")
    tm = TextModel.from_export(folder)
    return Loaded(_refusals_as_bad_requests(lambda frame: tm.predict(None, frame)), tm.max_chars, tm.task)


def _refusals_as_bad_requests(predict: Callable) -> Callable:
    """``predict``, raising BadRequest where the model refuses its input (an MLflow invalid-parameter error)."""
    from mlflow.exceptions import MlflowException

    def checked(frame):
        try:
            return predict(frame)
        except MlflowException as exc:
            if exc.error_code != "INVALID_PARAMETER_VALUE":
                raise
            message = exc.message if len(exc.message) <= 300 else exc.message[:300] + "..."
            raise BadRequest(message) from None

    return checked


def _reencode(path: Path, encoding: str) -> str:
    return f"re-encode it as UTF-8, e.g. `iconv -f {encoding} -t UTF-8 {path} > {path.stem}.utf8{path.suffix}`"


def read_text(path: Path) -> str:
    """The file's text; anything but UTF-8 (with or without a byte-order mark) is refused, naming the line."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}, line 1: the file is UTF-16 (it starts with a UTF-16 byte-order mark), and inputs "
                        f"must be UTF-8; {_reencode(path, 'UTF-16')}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}, line {line}: byte 0x{data[exc.start]:02x} (offset {exc.start}) is not UTF-8; the "
                        f"file is in another encoding (latin-1 or cp1252?), and inputs must be UTF-8; "
                        f"{_reencode(path, 'LATIN1')}") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(f"{path}, line {line}: NUL characters, as a UTF-16 file without a byte-order mark has, and "
                        f"inputs must be UTF-8; {_reencode(path, 'UTF-16LE')}")
    return text


def _lines(text: str) -> list[str]:
    # Only \n (and \r\n) end a line: str.splitlines also splits at characters such as U+2028,
    # which may sit inside a text or a JSON string.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


_JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true or false",
               type(None): "null"}


def _records(path: Path, column: str) -> tuple[list[dict], list[str]]:
    """The file's records, and where each one is (``line 3``) for error messages."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        from pipelines.data.files import read_table

        records = read_table(path)
        return records, [f"record {i}" for i in range(1, len(records) + 1)]
    text = read_text(path)
    if suffix == ".txt":
        lines = _lines(text)
        return [{column: line} for line in lines], [f"line {i}" for i in range(1, len(lines) + 1)]
    if suffix == ".jsonl":
        records, where = [], []
        for i, line in enumerate(_lines(text), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {i}: not valid JSON ({exc.msg} at column {exc.colno}); fix or "
                                "remove that line") from None
            if not isinstance(rec, dict):
                kind = _JSON_KINDS.get(type(rec), type(rec).__name__)
                raise DataError(f"{path}, line {i}: expected a JSON object such as {{\"{column}\": \"...\"}}, "
                                f"got {kind}; JSON Lines holds one object per line")
            records.append(rec)
            where.append(f"line {i}")
        return records, where
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        records, where = [], []
        try:
            for row in reader:
                records.append(row)
                where.append(f"line {reader.line_num}")
        except csv.Error as exc:
            raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({exc}); fix that line") from None
        return records, where
    # .json: a list of objects
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}); fix the file, or give one object "
                        "per line as .jsonl") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path}: expected a JSON list of objects such as [{{\"{column}\": \"...\"}}]; or give one "
                        "object per line as .jsonl")
    return records, [f"record {i}" for i in range(1, len(records) + 1)]


def _read(path: Path, column: str, aliases: tuple[str, ...]) -> tuple[list[dict], list[str], str]:
    """The records, where each one is, and the name of their input field."""
    if not path.is_file():
        raise DataError(f"{path} is a folder; give a file of inputs" if path.is_dir() else f"{path}: no such file")
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; give one of {', '.join(SUFFIXES)}")
    try:
        records, where = _records(path, column)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None
    if not records:
        raise DataError(f"{path} holds no inputs")
    candidates = (column, *aliases)
    name = next((n for n in candidates if n in records[0]), None)
    if name is None:
        raise DataError(f"{path}, {where[0]}: no input field; expected one of {brief_list(candidates)}, found "
                        f"{brief_list(records[0])}")
    for rec, at in zip(records, where):
        if name not in rec:
            raise DataError(f"{path}, {at}: no {name!r} field (found {brief_list(rec)}); every record needs one")
    return records, where, name


def _check_texts(path: Path, records: list[dict], where: list[str], name: str, max_chars: int) -> None:
    try:
        validate_texts([r[name] for r in records], max_chars)
    except BadText as exc:
        raise DataError(f"{path}, {where[exc.index]}: {name!r} {exc.reason}") from None


def run(project: str, input_path: str, model: str | None = None, batch_size: int = 32,
        output: str | None = None, max_chars: int | None = None, params_path: str | None = None) -> dict:
    """Predict over ``input_path`` and write the predictions file; a summary of what was written.

    ``params_path`` defines the project (default: ./params.yaml, when there is one).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from pipelines.tasks import get_task

    if batch_size < 1:
        raise ValueError(f"batch_size is {batch_size}; it must be at least 1")
    task_name, aliases = _project(project, params_path)
    column = get_task(task_name).input_field
    if input_path == "-":
        with tempfile.TemporaryDirectory(prefix="predict-") as scratch:
            path = _stdin_file(Path(scratch))
            try:
                return run(project, str(path), model, batch_size, output or "-", max_chars, params_path)
            except DataError as exc:  # the scratch file is gone when the user reads this: name what they gave
                raise DataError(_as_standard_input(str(exc), path)) from None
    path = Path(input_path)
    # The file is checked before the model loads (seconds), and again against the model's own limit.
    records, where, name = _read(path, column, aliases)
    _check_texts(path, records, where, name, max_chars or DEFAULT_MAX_CHARS)
    model_ref = model or str(Path("models") / project / "export")
    loaded = load_model(model_ref, project)
    if loaded.task is not None and loaded.task != task_name:
        raise DataError(f"--model {model_ref!r} is a {loaded.task} model, but project {project!r} is {task_name}; "
                        f"give a {task_name} model")
    if not max_chars and loaded.max_chars:
        _check_texts(path, records, where, name, loaded.max_chars)
    records = [{**r, column: r[name]} for r in records]
    out_path = Path(output) if output else path.with_name(path.name + ".predictions.jsonl")
    show = settings.get("PIPELINES_PROGRESS")
    rows = []
    for start in tqdm(range(0, len(records), batch_size), desc=f"predict {project}", unit="batch", disable=not show):
        chunk = records[start:start + batch_size]
        try:
            preds = loaded.predict(pd.DataFrame({column: [r[column] for r in chunk]}))
        except BadRequest as exc:
            raise DataError(f"{path}, {where[start]} to {where[start + len(chunk) - 1]}: the model refused these "
                            f"inputs ({exc}); nothing was written") from None
        rows.extend({**r, **p} for r, p in zip(chunk, preds.to_dict(orient="records")))
    # default=str: a Parquet input may hold dates or other values JSON has no type for.
    lines = (json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
    if output == "-":
        sys.stdout.writelines(lines)
        sys.stdout.flush()
        return {"model": model_ref, "inputs": len(rows), "output": "-"}
    with atomic_file(out_path) as fh:
        fh.writelines(lines)
    logger.info("wrote %d predictions to %s", len(rows), out_path)
    return {"model": model_ref, "inputs": len(rows), "output": str(out_path)}


def _as_standard_input(message: str, path: Path) -> str:
    """A message about the scratch copy of standard input, about standard input."""
    message = re.sub(r"`iconv -f (\S+) -t UTF-8 \S+ > \S+`", r"`... | iconv -f \1 -t UTF-8 | nlp-pipelines predict <project> -`",
                     message)
    return message.replace(str(path), "standard input")


def _stdin_file(folder: Path) -> Path:
    """Standard input as a file of inputs: JSON Lines when its first line is an object, else one
    text per line."""
    data = sys.stdin.buffer.read()
    first = next((line for line in data.splitlines() if line.strip()), b"")
    path = folder / ("stdin.jsonl" if first.lstrip().startswith(b"{") else "stdin.txt")
    path.write_bytes(data)
    return path


def _project(project: str, params_path: str | None) -> tuple[str, tuple[str, ...]]:
    """The project's task, and the user's own name for its input column (params.yaml's data block).

    Without a params file (a machine that only serves) a project named after its task still works;
    a params file given by name must exist.
    """
    from pipelines.config import load_params
    from pipelines.tasks import get_task, registered_tasks

    path = Path(params_path or "params.yaml")
    if not path.is_file() and params_path is None:
        if project in registered_tasks():
            return project, ()
        exported = sorted(p.parent.parent.name for p in Path("models").glob("*/export/export.json"))
        found = f"; exported projects here: {', '.join(exported)}" if exported else ""
        raise ConfigError(f"{path} not found, so project {brief(project)} cannot be looked up{found}; run from the "
                          f"repository root, pass --params PATH, or name a task ({', '.join(registered_tasks())})")
    # The training data and checkpoint need not exist where a model is used.
    params = load_params(path, training_paths_absent=True)
    if project not in params.projects:
        close = difflib.get_close_matches(project, params.projects, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown project {brief(project)}{hint}; {path} defines "
                          f"{', '.join(params.projects) or 'no projects'}")
    cfg = params.project(project)
    task = get_task(cfg.task)
    alias = getattr(cfg.data, task.fields[task.input_field], None)
    return cfg.task, (alias,) if alias and alias != task.input_field else ()
