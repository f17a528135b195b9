"""Run an exported or registered model over a file of inputs.

    python -m pipelines predict <project> INPUT [--model models/<project>/export | models:/<name>@champion]

INPUT is a JSON Lines or CSV file with the project's input column (``text``, ``source`` or
``document``, or the field name set in params.yaml), or a ``.txt`` file with one input per line.
Outputs go next to it, as ``<input>.predictions.jsonl``: each input record with the model's output
fields added (label and score, translation, or summary). The file is written whole or not at all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import SimpleNamespace

from .errors import DataError
from .io import atomic_file, read_jsonl
from .serving import BadRequest, TextModel, validate_texts

logger = logging.getLogger(__name__)


def load_model(model: str):
    """A TextModel from an export folder, or a pyfunc model from an MLflow URI (models:/, runs:/)."""
    if "://" in model or model.startswith(("models:/", "runs:/")):
        from . import tracking

        return tracking.load_pyfunc(model)
    folder = Path(model)
    if not (folder / "export.json").exists():
        raise DataError(f"--model {model!r}: not an export folder (no export.json inside); run `dvc repro "
                        "export@<project>` first, or give a registered model such as models:/<name>@champion")
    tm = TextModel()
    tm.load_context(SimpleNamespace(artifacts={"export": str(folder)}))
    return SimpleNamespace(predict=lambda frame: tm.predict(None, frame), column=tm.column)


def read_inputs(path: Path, column: str, aliases: tuple[str, ...]) -> list[dict]:
    """Records holding the input text under ``column``; ``.txt`` lines become records."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() == ".txt":
        lines = path.read_text(encoding="utf-8").splitlines()
        records = [{column: line} for line in lines]
    elif path.suffix.lower() == ".jsonl":
        records = read_jsonl(path)
    else:
        from .data.sources import read_table

        records = read_table(path)
    if not records:
        raise DataError(f"{path} holds no inputs")
    for name in (column, *aliases):
        if name in records[0]:
            return [{**r, column: r.get(name)} for r in records]
    raise DataError(f"{path}: no input column; expected one of {', '.join(map(repr, (column, *aliases)))}, "
                    f"found {', '.join(map(repr, records[0]))}")


def run(project: str, input_path: str, model: str | None = None, batch_size: int = 32,
        output: str | None = None, max_chars: int = 100_000) -> dict:
    import pandas as pd
    from tqdm.auto import tqdm

    from .tasks import get_task

    task = get_task(_task_of(project))
    column = task.input_field
    model_ref = model or str(Path("models") / project / "export")
    loaded = load_model(model_ref)
    path = Path(input_path)
    records = read_inputs(path, column, aliases=_aliases(project))
    try:
        validate_texts([r[column] for r in records], max_chars)
    except BadRequest as exc:
        raise DataError(f"{path}: {exc} (inputs are numbered from 0)") from None
    out_path = Path(output) if output else path.with_name(path.name + ".predictions.jsonl")
    show = os.environ.get("PIPELINES_PROGRESS", "1") != "0"
    rows = []
    for start in tqdm(range(0, len(records), batch_size), desc=f"predict {project}", unit="batch", disable=not show):
        chunk = records[start:start + batch_size]
        frame = pd.DataFrame({column: [r[column] for r in chunk]})
        preds = loaded.predict(frame)
        rows.extend({**r, **p} for r, p in zip(chunk, preds.to_dict(orient="records")))
    import json

    with atomic_file(out_path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    logger.info("wrote %d predictions to %s", len(rows), out_path)
    return {"model": model_ref, "inputs": len(rows), "output": str(out_path)}


def _task_of(project: str) -> str:
    """The project's task from params.yaml when there is one, else the project name itself."""
    try:
        from .config import load_params

        return load_params("params.yaml").project(project).task
    except Exception:
        return project


def _aliases(project: str) -> tuple[str, ...]:
    """The user's own column name for the input, from params.yaml's data block, if readable."""
    try:
        from .config import load_params
        from .tasks import get_task

        cfg = load_params("params.yaml").project(project)
        task = get_task(cfg.task)
        attr = task.fields[task.input_field]
        return (getattr(cfg.data, attr),)
    except Exception:
        return ()
