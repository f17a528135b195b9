"""What differs between the three tasks, kept in one place per task.

Stages ask :func:`get_task` for the task of a project and never branch on the task name.
The light description here (canonical fields, metric names) imports nothing heavy; the model
code lives in :mod:`pipelines.tasks.classification` and :mod:`pipelines.tasks.seq2seq`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str
    # canonical field -> attribute of the project's data block naming the user's column
    fields: dict[str, str]
    input_field: str
    target_field: str
    # fields that must be non-empty text after cleaning
    text_fields: tuple[str, ...]
    primary_metric: str
    # module holding the model code (build, train, predict)
    module: str
    # optional list-valued field carried through (several references per example)
    extra_fields: dict[str, str] | None = None

    def impl(self):
        """The task's model code (imports torch and transformers)."""
        return importlib.import_module(self.module)


TASKS = {
    "classification": TaskSpec(
        name="classification",
        fields={"text": "text_field", "label": "label_field"},
        input_field="text",
        target_field="label",
        text_fields=("text",),
        primary_metric="accuracy",
        module="pipelines.tasks.classification",
    ),
    "translation": TaskSpec(
        name="translation",
        fields={"source": "source_field", "target": "target_field"},
        input_field="source",
        target_field="target",
        text_fields=("source", "target"),
        primary_metric="bleu",
        module="pipelines.tasks.seq2seq",
    ),
    "summarization": TaskSpec(
        name="summarization",
        fields={"document": "document_field", "summary": "summary_field"},
        input_field="document",
        target_field="summary",
        text_fields=("document", "summary"),
        primary_metric="rougeL",
        module="pipelines.tasks.seq2seq",
        extra_fields={"references": "references_field"},
    ),
}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}") from None
