"""The MLflow pyfunc model that serves an exported model on raw text.

``mlflow models serve -m "models:/<project>@champion" --env-manager local`` answers
``{"inputs": ["some text", ...]}`` (or a ``dataframe_split`` with a ``text`` column) with labels and
scores, translations or summaries. Bad requests get a clear error, not a stack trace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc

EXPORT_INFO = "export.json"


class BadRequest(ValueError):
    """The request is malformed; the message says what a good one looks like."""


def _texts(model_input: Any, column: str) -> list[str]:
    """Raw texts from what pyfunc hands over: a DataFrame, a list, a dict or a single string."""
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if column in model_input.columns:
            values = model_input[column].tolist()
        elif len(model_input.columns) == 1:
            values = model_input.iloc[:, 0].tolist()
        else:
            raise BadRequest(f"expected a column named {column!r}; got columns {list(model_input.columns)}")
    elif isinstance(model_input, dict):
        if column not in model_input:
            raise BadRequest(f"expected a field named {column!r}; got fields {sorted(model_input)}")
        values = model_input[column]
        values = [values] if isinstance(values, str) else list(values)
    elif isinstance(model_input, str):
        values = [model_input]
    else:
        values = list(model_input)
    return values


def validate_texts(values: list, max_chars: int) -> list[str]:
    """Every input must be a non-empty string of at most ``max_chars`` characters."""
    if not values:
        raise BadRequest("no inputs: send at least one text")
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise BadRequest(f"input {i} is {type(v).__name__}, expected a string")
        if not v.strip():
            raise BadRequest(f"input {i} is empty; send non-empty text")
        if len(v) > max_chars:
            raise BadRequest(f"input {i} has {len(v)} characters; the limit is {max_chars}")
        out.append(v)
    return out


class TextModel(mlflow.pyfunc.PythonModel):
    """Loads the exported transformers model and its tokenizer(s) and predicts on raw text."""

    def load_context(self, context):
        from .compression import load_hf_model
        from .config import parse_params
        from .tasks import get_task
        from .tokenization import load_tokenizers

        folder = Path(context.artifacts["export"])
        self.info = json.loads((folder / EXPORT_INFO).read_text())
        settings = dict(self.info["settings"])
        # The training machine's data source need not exist where the model is served.
        settings["data"] = {**settings["data"], "source": "builtin"}
        self.cfg = parse_params({self.info["project"]: settings}).project(self.info["project"])
        task = get_task(self.info["task"])
        self.column = task.input_field
        self.impl = task.impl()
        self.model = load_hf_model(folder / "hf")
        self.tokenizers = load_tokenizers(folder / "hf")

    def predict(self, context, model_input, params=None):
        import pandas as pd
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        try:
            texts = validate_texts(_texts(model_input, self.column), self.cfg.clean.max_chars)
        except BadRequest as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        return pd.DataFrame(self.impl.predict_texts(self.model, self.tokenizers, texts, self.cfg, "cpu"))
