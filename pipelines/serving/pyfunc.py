"""The MLflow pyfunc model that serves an exported model on raw text.

``mlflow models serve -m "models:/<project>@champion" --env-manager local`` answers
``{"inputs": ["some text", ...]}``, ``{"inputs": {"text": [...]}}``, or a ``dataframe_split`` /
``dataframe_records`` with the project's input column (``text``, ``source`` or ``document``) with
labels and every label's probability, translations or summaries. A request of a translation or
summarization model may set ``params`` (``num_beams``, ``length_penalty``, ``max_new_tokens``; the
exported model's decoding settings are the defaults, and the signature lists them). In Python,
``mlflow.pyfunc.load_model(uri).predict`` takes a DataFrame or a dict with that column. A request the model cannot serve gets HTTP 400 and the
reason; the reason quotes at most the first ``QUOTE_CHARS`` characters of a value and never the request.

The model is logged from code (``model_code.py``, with this package beside it), not pickled, so
loading a version unpickles nothing, and it loads with ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false``
(set that where models are served, and a pickled model put in the store is refused). Loading still
runs those ``.py`` files from the artifact store: they can be read and diffed there, but whoever can
write the artifact store can still change what the serving host runs, so only the jobs that export
should have write access to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd  # loaded by mlflow.pyfunc already; the predict annotation names it
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from pipelines.core.inputs import BadRequest

EXPORT_INFO = "export.json"
# The file MLflow runs to get the model (models-from-code); export logs it in place of a pickle.
MODEL_CODE = Path(__file__).with_name("model_code.py")
# The longest piece of a request an error message quotes: enough to recognise a value, and a
# 10 MB text is not sent back.
QUOTE_CHARS = 80


class RefusedRequest(MlflowException):
    """A BadRequest as MLflow's scoring server reports it: HTTP 400 with the message as the body."""

    def __init__(self, reason: str):
        super().__init__(reason, error_code=INVALID_PARAMETER_VALUE)

    # The scoring server rewrites the message of an MlflowException raised by predict to
    # "Failed to predict data '<the whole parsed request>'. Error: ...", which would send every
    # input back in the error body; the message stays the reason given here.
    @property
    def message(self) -> str:
        return self._reason

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_reason"):
            self._reason = value


def brief(value: Any) -> str:
    """``value`` quoted for an error message, cut to its first QUOTE_CHARS characters."""
    if isinstance(value, str):
        return repr(value[:QUOTE_CHARS]) + ("..." if len(value) > QUOTE_CHARS else "")
    shown = repr(value)
    return shown if len(shown) <= QUOTE_CHARS else shown[:QUOTE_CHARS] + "..."


def brief_list(values, limit: int = 5) -> str:
    """The first ``limit`` of ``values``, each quoted with brief, and how many more there are."""
    values = list(values)
    shown = ", ".join(brief(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


# The most beams a request may ask for: each beam multiplies a request's time and memory.
MAX_BEAMS = 16


def decoding_params(cfg) -> dict:
    """The decoding settings a request may set (``params`` of a request), with the exported model's
    values as defaults; none for a model that does not generate."""
    from pipelines.tasks import get_task

    return dict(get_task(cfg.task).impl().serving_params(cfg))


def with_decoding(cfg, overrides: dict | None, model=None):
    """``cfg`` with a request's decoding ``overrides`` in its evaluate block, checked as params.yaml
    values are and bounded (at most MAX_BEAMS beams, no more new tokens than the model has positions);
    BadRequest names the setting and what it may be."""
    from pydantic import ValidationError

    allowed = decoding_params(cfg)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        known = ", ".join(allowed) or "none: this model does not generate"
        raise BadRequest(f"unknown params {brief_list(unknown)}; a request may set {known}")
    if not overrides:
        return cfg
    try:
        ev = cfg.evaluate.model_validate({**cfg.evaluate.model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadRequest(f"params {first['loc'][0]}: {first['msg']}") from None
    if ev.num_beams > MAX_BEAMS:
        raise BadRequest(f"params num_beams is {ev.num_beams}; at most {MAX_BEAMS}")
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if positions and ev.max_new_tokens > positions - 2:
        raise BadRequest(f"params max_new_tokens is {ev.max_new_tokens}; this model writes at most {positions - 2}")
    return cfg.model_copy(update={"evaluate": ev})


def model_signature(task: str, cfg=None):
    """The input the served model declares: the task's input column, holding any JSON values, and
    with ``cfg`` the decoding settings a request may set (``params``), with their defaults.

    Without a signature the scoring server turns ``{"inputs": ["fine", 3]}`` into an array of
    strings before the model sees it, so 3 would be answered as the text "3". A column of AnyType is
    handed over as sent, and the task's validate_inputs refuses what it does not take. The column is optional so
    that a request without it gets validate_inputs' message rather than MLflow's, which quotes the
    whole request.
    """
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    from pipelines.tasks import get_task

    params = None
    if cfg is not None and decoding_params(cfg):
        kinds = {int: "long", float: "double"}
        params = ParamSchema([ParamSpec(name, kinds[type(value)], value)
                              for name, value in decoding_params(cfg).items()])
    return ModelSignature(inputs=Schema([ColSpec(AnyType(), get_task(task).input_field, required=False)]),
                          params=params)


def _texts(model_input: Any, column: str) -> list:
    """Raw values from what pyfunc hands over: a DataFrame, a dict, a list or array, or one string."""
    import numpy as np
    import pandas as pd

    hint = (f'send {{"inputs": ["a text", ...]}} (a list, even of one text), {{"inputs": {{"{column}": [...]}}}} '
            f"or a dataframe with a {column!r} column")
    if isinstance(model_input, pd.DataFrame):
        if column not in model_input.columns:
            got = f"; got columns {brief_list(model_input.columns)}" if len(model_input.columns) else ""
            raise BadRequest(f"expected a column named {column!r}{got}: {hint}")
        values = model_input[column].tolist()
        # The signature's schema enforcement puts a list of strings ({"inputs": [...]}) into one row.
        if len(values) == 1 and isinstance(values[0], (list, tuple, np.ndarray)):
            values = list(values[0])
    elif isinstance(model_input, dict):
        if column not in model_input:
            raise BadRequest(f"expected a field named {column!r}; got fields {brief_list(model_input)}: {hint}")
        values = model_input[column]
        values = [values] if isinstance(values, str) else list(values)
    elif isinstance(model_input, str):
        values = [model_input]
    elif isinstance(model_input, np.ndarray):
        if model_input.ndim > 1:
            raise BadRequest(f"expected a list of texts; got a {model_input.ndim}-dimensional array: {hint}")
        values = model_input.reshape(-1).tolist()
    elif isinstance(model_input, (list, tuple)):
        values = list(model_input)
    else:
        raise BadRequest(f"expected a list of texts; got {type(model_input).__name__}: {hint}")
    # A value of a list of objects ({"inputs": [{"text": ...}]}) arrives as a 0-d array.
    return [v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v for v in values]


def export_settings(folder: Path):
    """The export's ``export.json`` and the project settings it was trained and decodes with."""
    from pipelines.config import parse_params

    info = json.loads((Path(folder) / EXPORT_INFO).read_text())
    settings = dict(info["settings"])
    # The training machine's data source need not exist where the model is served.
    settings["data"] = {**settings["data"], "source": "builtin", "eval_source": None}
    return info, parse_params({"projects": {info["project"]: settings}}).project(info["project"])


class TextModel(mlflow.pyfunc.PythonModel):
    """Loads the exported transformers model and its tokenizer(s) and predicts on raw text."""

    @classmethod
    def from_export(cls, folder: Path) -> "TextModel":
        """The model of an export folder, loaded as MLflow loads a registered version."""
        from types import SimpleNamespace

        model = cls()
        model.load_context(SimpleNamespace(artifacts={"export": str(folder)}))
        return model

    def load_context(self, context):
        from pipelines.models.files import load_hf_model
        from pipelines.tasks import get_task
        from pipelines.data.tokenization import load_tokenizers

        folder = Path(context.artifacts["export"])
        self.info, self.cfg = export_settings(folder)
        task = get_task(self.info["task"])
        self.task = task.name
        self.column = task.input_field
        self.max_chars = self.cfg.clean.max_chars
        self.impl = task.impl()
        self.model = load_hf_model(folder / "hf")
        self.tokenizers = load_tokenizers(folder / "hf")

    # Annotated with a type MLflow infers no schema from: the served model keeps its declared signature,
    # and MLflow stops warning on every load that predict has no type hints.
    def predict(self, context, model_input: pd.DataFrame, params=None):
        try:
            texts = self.impl.validate_inputs(_texts(model_input, self.column), self.cfg)
            cfg = with_decoding(self.cfg, params, self.model)
        except BadRequest as exc:
            raise RefusedRequest(str(exc)) from None
        return pd.DataFrame(self.impl.predict_texts(self.model, self.tokenizers, texts, cfg, "cpu"))
