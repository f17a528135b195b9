"""The blocks at the top of params.yaml that every project shares: common, runtime, tracking."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipelines.config.base import MAX_SEED, Strict


class CommonConfig(Strict):
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 42
    """Seeds every random choice: the builtin data, the split, weight initialisation, masking and batch order."""


class RuntimeConfig(Strict):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto picks CUDA when present. PIPELINES_DEVICE overrides it per machine without a re-run."""


# Registered model names end up in `models:/<name>@alias` URIs and in artifact paths: MLflow refuses
# '/', ':' and '%' there, and names that need quoting in a URI make for models no one can load.
REGISTRY_NAME = re.compile(r"^[A-Za-z0-9_.-]*$")


class TrackingConfig(Strict):
    experiment_prefix: Annotated[str, Field(min_length=1, max_length=200)] = "nlp-pipelines"
    """Each project's runs go to the MLflow experiment `<experiment_prefix>-<project>`."""
    registered_model_prefix: Annotated[str, Field(max_length=200)] = ""
    """Each project's model is registered as `<registered_model_prefix><project>`."""
    register_model: bool = True
    """export registers a version and moves `champion` (true), or writes the export folder only (false)."""
    registry_required: bool = True
    """Fail an export when the registry update fails (True), or keep the exported files and warn."""

    @model_validator(mode="after")
    def _names(self):
        if not REGISTRY_NAME.match(self.registered_model_prefix):
            raise ValueError(
                f"tracking.registered_model_prefix {self.registered_model_prefix!r} would make registered model "
                "names the MLflow registry refuses or that cannot be written in a models:/ URI; use letters, "
                "digits, '_', '-' and '.' only (for example 'team-')")
        if not self.experiment_prefix.strip() or any(ch in self.experiment_prefix for ch in "\n\r\t"):
            raise ValueError(f"tracking.experiment_prefix {self.experiment_prefix!r} must be a non-empty name on "
                             "one line")
        return self

