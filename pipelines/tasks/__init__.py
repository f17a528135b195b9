"""What differs between the tasks, kept in one place per task.

Stages ask :func:`get_task` for the task of a project and never branch on the task name.
The light description here (canonical fields, metrics, cleaning rules) imports nothing heavy; the
model code lives in :mod:`pipelines.tasks.classification.model` and :mod:`pipelines.tasks.seq2seq.model`, and
:mod:`pipelines.tasks.contract` says what such a module provides. docs/adding-a-task.md says how
to add a task.
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
    # what the model returns per input, under this key (predict, serving)
    output_key: str
    # the local metric module (pipelines/metrics) that scores its outputs, and the names of its
    # results: scored on validation each epoch, reported on test (report name -> result name), and
    # recorded as text (signatures, settings)
    metric_module: str
    validation_metrics: tuple[str, ...]
    test_metrics: dict[str, str]
    metric_records: tuple[str, ...] = ()
    # the metric compares case-insensitively when the tokenizer lowercases
    metric_lowercase: bool = False
    # clean's rule for a pair of texts: "length_ratio" (the sides' lengths within
    # clean.max_length_ratio), "shorter_target" (the target shorter than its input by
    # clean.min_compression), or None (no pair)
    pair_rule: str | None = None
    # optional list-valued field carried through (several references per example)
    extra_fields: dict[str, str] | None = None

    def impl(self):
        """The task's model code (imports torch and transformers), with the contract's defaults."""
        from pipelines.tasks.contract import Implementation

        return Implementation(importlib.import_module(self.module))


TASKS = {
    "classification": TaskSpec(
        name="classification",
        fields={"text": "text_field", "label": "label_field"},
        input_field="text",
        target_field="label",
        text_fields=("text",),
        primary_metric="accuracy",
        module="pipelines.tasks.classification.model",
        output_key="label",
        metric_module="classification_report",
        validation_metrics=("accuracy", "macro_f1"),
        test_metrics={"accuracy": "accuracy", "macro_f1": "macro_f1"},
    ),
    "translation": TaskSpec(
        name="translation",
        fields={"source": "source_field", "target": "target_field"},
        input_field="source",
        target_field="target",
        text_fields=("source", "target"),
        primary_metric="bleu",
        module="pipelines.tasks.seq2seq.model",
        output_key="translation",
        metric_module="sacrebleu_scores",
        validation_metrics=("bleu", "chrf"),
        test_metrics={"bleu": "bleu", "chrf": "chrf", "bleu_brevity_penalty": "bp"},
        metric_records=("bleu_signature", "chrf_signature"),
        metric_lowercase=True,
        pair_rule="length_ratio",
    ),
    "summarization": TaskSpec(
        name="summarization",
        fields={"document": "document_field", "summary": "summary_field"},
        input_field="document",
        target_field="summary",
        text_fields=("document", "summary"),
        primary_metric="rougeL",
        module="pipelines.tasks.seq2seq.model",
        output_key="summary",
        metric_module="rouge_scores",
        validation_metrics=("rouge1", "rouge2", "rougeL", "rougeLsum"),
        test_metrics={"rouge1": "rouge1", "rouge2": "rouge2", "rougeL": "rougeL", "rougeLsum": "rougeLsum"},
        metric_records=("lsum_sentence_split",),
        pair_rule="shorter_target",
        extra_fields={"references": "references_field"},
    ),
}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}") from None
