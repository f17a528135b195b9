"""Text classification: a text in, one of the labels of the training data out (a BERT-style encoder,
pretrained here by masked language modelling or taken from a checkpoint; primary metric accuracy).

This module is the task's declaration, light to import; the model code is :mod:`.model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipelines.config.blocks import DataConfig, PretrainConfig
from pipelines.config.project import ProjectBase
from pipelines.config.tasks import Metric, TaskSpec, register_task

PIPELINES = Path(__file__).resolve().parents[2]


class ClassificationData(DataConfig):
    text_field: str = "text"
    """The column of the source that holds the text to classify."""
    label_field: str = "label"
    """The column that holds the class: one string or integer per row."""




class MaskedLMPretrain(PretrainConfig):
    mlm_probability: Annotated[float, Field(gt=0, lt=1)] = 0.15
    """Share of tokens the masked-language-model pretraining masks and predicts."""


class ClassificationProject(ProjectBase):
    task: Literal["classification"] = "classification"
    """Required in every project block: a classification project labels texts (BERT; primary metric accuracy)."""
    data: ClassificationData = ClassificationData()
    pretrain: MaskedLMPretrain = MaskedLMPretrain()

    @model_validator(mode="after")
    def _post_norm_only(self):
        if self.model.layer_norm != "post":
            raise ValueError("model.layer_norm: 'pre' exists for the sequence-to-sequence projects (MBart); the "
                             "classifier's encoder is BERT, which normalises after each block: use 'post'")
        return self


def _model():
    from pipelines.tasks.classification.model import ClassificationModel

    return ClassificationModel()


def _builtin(size: int, seed: int) -> list[dict]:
    from pipelines.data.builtin.classification import generate

    return generate(size, seed)


TASK = register_task(TaskSpec(
    name="classification",
    config=ClassificationProject,
    fields={"text": "text_field", "label": "label_field"},
    kinds={"text": "text", "label": "label"},
    input_field="text",
    target_field="label",
    metrics=(Metric("accuracy"), Metric("macro_f1")),
    primary_metric="accuracy",
    metric_module="classification_report",
    output_key="label",
    model=_model,
    builtin=_builtin,
    presets=PIPELINES / "presets" / "classification.yaml",
    plot_template=PIPELINES / "plots" / "classification.json",
    intended_use="labels a text with one of the classes it was trained on",
))
