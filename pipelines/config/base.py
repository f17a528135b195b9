"""The strict base of every params block, and the value types the blocks share."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


def _takes_bool(annotation: Any) -> bool:
    """Whether a field's type admits a boolean (``bool``, ``bool | None``, a block...)."""
    if annotation is bool:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_takes_bool(a) for a in typing.get_args(annotation))


class Strict(BaseModel):
    """Base for every block: unknown keys are errors, values are not silently coerced, and the docstring
    under each field is its description (docs/params.md is made from them).

    Numbers may be written as YAML strings (``1e-3`` is a string to YAML 1.1), but a boolean is
    never a number, and no float accepts NaN or an infinity: none of these settings means anything
    at either."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True, allow_inf_nan=False,
                              use_attribute_docstrings=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name and not _takes_bool(cls.model_fields[info.field_name].annotation):
            raise PydanticCustomError("bool_type_mismatch", "a boolean is not allowed here; give a value of the "
                                      "documented type (true/false are taken only by on/off settings)")
        return value


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]

# numpy, torch and the data generators all take 32-bit unsigned seeds.
MAX_SEED = 2**32 - 1
# Upper bounds of the model sizes: far above anything trained here, low enough that a typo (an extra
# zero, 10**7) fails at config time instead of asking the allocator for terabytes.
Width = Annotated[int, Field(gt=0, le=16_384)]
Depth = Annotated[int, Field(gt=0, le=128)]
Heads = Annotated[int, Field(gt=0, le=256)]
FfnWidth = Annotated[int, Field(gt=0, le=131_072)]


def check_paths(info: ValidationInfo) -> bool:
    """Whether validation checks that local paths (data, checkpoints) exist: not on a machine that
    only predicts with a model trained elsewhere."""
    return not (info.context or {}).get("training_paths_absent", False)


def looks_like_path(value: str) -> bool:
    """A hub id has at most one slash ("org/name"); anything else with a slash is a folder."""
    return value.startswith((".", "/", "~")) or value.count("/") > 1
