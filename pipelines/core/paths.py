"""Where every stage reads and writes: the one place that knows the layout dvc.yaml declares."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def repo_root() -> Path:
    """The project root: PIPELINES_ROOT, else the current directory (dvc runs stages there)."""
    from pipelines.core import settings

    return Path(settings.get("PIPELINES_ROOT") or os.getcwd()).resolve()


@dataclass(frozen=True)
class ProjectPaths:
    """Inputs and outputs of one project's stages, relative to the repository root."""

    project: str
    root: Path

    @classmethod
    def of(cls, project: str, root: Path | None = None) -> "ProjectPaths":
        return cls(project, root or repo_root())

    # configs/<project>/<part>.json: the project's resolved settings, written by the configure stage.
    def config(self, part: str) -> Path:
        return self.root / "configs" / self.project / f"{part}.json"

    # data/<project>/...
    @property
    def data(self) -> Path:
        return self.root / "data" / self.project

    @property
    def raw(self) -> Path:
        return self.data / "raw"

    @property
    def clean(self) -> Path:
        return self.data / "clean"

    @property
    def splits(self) -> Path:
        return self.data / "splits"

    @property
    def tokenizer(self) -> Path:
        return self.data / "tokenizer"

    @property
    def encoded(self) -> Path:
        return self.data / "encoded"

    # models/<project>/...
    @property
    def models(self) -> Path:
        return self.root / "models" / self.project

    @property
    def pretrained(self) -> Path:
        return self.models / "pretrained"

    # Written by pretrain in place of weights when the model starts from a checkpoint: its name.
    INIT_MARKER = "init.json"

    @property
    def init_marker(self) -> Path:
        return self.pretrained / self.INIT_MARKER

    @property
    def pretrain_checkpoints(self) -> Path:
        return self.models / "pretrain-checkpoints"

    @property
    def checkpoints(self) -> Path:
        return self.models / "checkpoints"

    @property
    def compress_checkpoints(self) -> Path:
        """Distillation checkpoints of compress (student, pruned recovery), one folder per variant."""
        return self.models / "compress-checkpoints"

    @property
    def finetuned(self) -> Path:
        return self.models / "finetuned"

    @property
    def compressed(self) -> Path:
        return self.models / "compressed"

    @property
    def manifest(self) -> Path:
        """The variants compress made: kind, folder and source of each (evaluate and export read it)."""
        return self.compressed / "variants.json"

    @property
    def export(self) -> Path:
        return self.models / "export"

    # reports/<project>/<stage>.json: small JSON files DVC shows as metrics.
    def report(self, stage: str) -> Path:
        return self.root / "reports" / self.project / f"{stage}.json"

    @property
    def predictions(self) -> Path:
        """Every test example with the full model's prediction and its own score (evaluate writes it)."""
        return self.root / "reports" / self.project / "predictions.jsonl"

    # plots/<project>/<name>: CSV files the top-level plots section of dvc.yaml draws.
    def plot(self, name: str) -> Path:
        return self.root / "plots" / self.project / name
