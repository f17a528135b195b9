"""Summarization: a document in, a short summary out (primary metric ROUGE-L, with ROUGE-1, -2
and -Lsum). Validation and test may carry several reference summaries per document.

An encoder-decoder of :mod:`pipelines.tasks.seq2seq`; this module is the task's declaration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pipelines.config.blocks import DataConfig
from pipelines.config.tasks import Metric, TaskSpec, register_task
from pipelines.tasks.seq2seq import Seq2SeqProject, implementation

PIPELINES = Path(__file__).resolve().parents[2]


class SummarizationData(DataConfig):
    document_field: str = "document"
    """The column of the source that holds the document to summarise."""
    summary_field: str = "summary"
    """The column that holds its summary (the training target and the first reference)."""
    references_field: str | None = None
    """A column of further reference summaries (a list or one string per row), scored with the first; null: none."""


class SummarizationProject(Seq2SeqProject):
    task: Literal["summarization"] = "summarization"
    """Required in every project block: a summarization project summarises documents (primary metric ROUGE-L)."""
    data: SummarizationData = SummarizationData()


def _builtin(size: int, seed: int) -> list[dict]:
    from pipelines.data.builtin.summarization import generate

    return generate(size, seed)


TASK = register_task(TaskSpec(
    name="summarization",
    config=SummarizationProject,
    fields={"document": "document_field", "summary": "summary_field"},
    kinds={"document": "text", "summary": "text"},
    input_field="document",
    target_field="summary",
    metrics=(Metric("rouge1"), Metric("rouge2"), Metric("rougeL"), Metric("rougeLsum")),
    primary_metric="rougeL",
    metric_module="rouge_scores",
    output_key="summary",
    model=implementation,
    builtin=_builtin,
    presets=PIPELINES / "presets" / "summarization.yaml",
    plot_template=PIPELINES / "plots" / "summarization.json",
    intended_use="writes a short summary of a document like those it was trained on",
    metric_records=("lsum_sentence_split",),
    metric_lowercase=False,
    pair_rule="shorter_target",
    extra_fields={"references": "references_field"},
))
