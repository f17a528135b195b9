"""Translation: a text in one language in, its translation out (primary metric BLEU, with chrF).

An encoder-decoder of :mod:`pipelines.tasks.seq2seq`; this module is the task's declaration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pipelines.config.blocks import DataConfig
from pipelines.config.tasks import Metric, TaskSpec, register_task
from pipelines.tasks.seq2seq import Seq2SeqProject, implementation

PIPELINES = Path(__file__).resolve().parents[2]


class TranslationData(DataConfig):
    source_field: str = "source"
    """The column of the source that holds the text to translate."""
    target_field: str = "target"
    """The column that holds its translation."""
    source_lang: str = "en"
    """Language code of the source side: recorded with the run's settings and in export.json; no stage reads it."""
    target_lang: str = "de"
    """Language code of the target side: recorded like source_lang; no stage reads it."""


class TranslationProject(Seq2SeqProject):
    task: Literal["translation"] = "translation"
    """Required in every project block: a translation project maps source to target text (primary metric BLEU)."""
    data: TranslationData = TranslationData()


def _builtin(size: int, seed: int) -> list[dict]:
    from pipelines.data.builtin.translation import generate

    return generate(size, seed)


TASK = register_task(TaskSpec(
    name="translation",
    config=TranslationProject,
    fields={"source": "source_field", "target": "target_field"},
    kinds={"source": "text", "target": "text"},
    input_field="source",
    target_field="target",
    metrics=(Metric("bleu"), Metric("chrf"), Metric("bleu_brevity_penalty", key="bp", validation=False)),
    primary_metric="bleu",
    metric_module="sacrebleu_scores",
    output_key="translation",
    model=implementation,
    builtin=_builtin,
    presets=PIPELINES / "presets" / "translation.yaml",
    plot_template=PIPELINES / "plots" / "translation.json",
    intended_use="translates text of the source language of its training pairs into their target language",
    metric_records=("bleu_signature", "chrf_signature"),
    metric_lowercase=True,
    pair_rule="length_ratio",
))
