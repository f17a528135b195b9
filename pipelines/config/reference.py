"""docs/params.md, generated from the config models: one row per key of params.yaml with its type,
default and meaning (the field's own description: the docstring under it, which pydantic reads).
A test compares the file with what this module renders, so the reference cannot drift from the code.

    python -m pipelines.config.reference > docs/params.md
"""

from __future__ import annotations

import json
import typing

from pydantic import BaseModel

from pipelines import config

HEADER = """# params.yaml reference

Generated from the configuration models' field descriptions (`pipelines/config/` and each task's
`pipelines/tasks/<task>/__init__.py`) by `python -m pipelines.config.reference > docs/params.md` (a test
checks that it is current). Shared blocks sit at the top of params.yaml; every project is a block
under `projects:` whose keys lay over its preset (`pipelines/presets/<task>.yaml`), which lays
over these defaults. A default shown as `-` is required or has no value.
"""


def _type(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(annotation)
        bounds = []
        for m in meta:
            for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
                for item in getattr(m, "metadata", [m]):
                    if getattr(item, attr, None) is not None:
                        bounds.append(f"{sign} {getattr(item, attr)}")
        return _type(base) + (f" ({', '.join(bounds)})" if bounds else "")
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type(a) for a in typing.get_args(annotation))
    if origin in (list, tuple):
        return f"list of {_type(typing.get_args(annotation)[0])}" if typing.get_args(annotation) else "list"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(field) -> str:
    if field.is_required():
        return "-"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(block)"
    return "`" + json.dumps(value, default=str) + "`"


def rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str]]:
    out = []
    notes = {name: " ".join((field.description or "").split()) for name, field in model.model_fields.items()}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        key = f"{prefix}{name}"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if notes.get(name):
                out.append((key, "block", "", notes[name]))
            out += rows(annotation, key + ".")
        else:
            out.append((key, _type(field.metadata and typing.Annotated[(annotation, *field.metadata)] or annotation),
                        _default(field), notes.get(name, "")))
    return out


def _table(entries) -> list[str]:
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for key, kind, default, meaning in entries:
        lines.append(f"| `{key}` | {kind} | {default} | {meaning.replace('|', '/')} |")
    return lines


def render() -> str:
    lines = [HEADER]
    for block, model in (("common", config.CommonConfig), ("runtime", config.RuntimeConfig),
                         ("tracking", config.TrackingConfig)):
        lines += [f"## `{block}`", ""] + _table(rows(model, f"{block}.")) + [""]
    for task, model in config.task_classes().items():
        lines += [f"## A project of task `{task}` (`projects.<name>.…`)", ""] + _table(rows(model, "")) + [""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
