"""The inputs a served model refuses, and why: what predict, serving and the demo check before a
model sees a request. A task reads inputs of the kind its spec declares (``TaskModel.validate_inputs``);
text is checked here."""

from __future__ import annotations

import math


class BadRequest(ValueError):
    """The request is malformed; the message says what a good one looks like."""


class BadText(BadRequest):
    """Input ``index`` (from 0) is not an input the model takes; ``reason`` says why, e.g. 'is empty'."""

    def __init__(self, index: int, reason: str):
        super().__init__(f"input {index} {reason}")
        self.index, self.reason = index, reason


def validate_texts(values: list, max_chars: int) -> list[str]:
    """Every input must be a non-empty string of at most ``max_chars`` characters."""
    if not values:
        raise BadRequest("no inputs: send at least one text")
    out = []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            raise BadText(i, "is missing (null); send a string")
        if not isinstance(v, str):
            raise BadText(i, f"is {type(v).__name__}, expected a string")
        if not v.strip():
            raise BadText(i, "is empty; send non-empty text")
        if len(v) > max_chars:
            raise BadText(i, f"has {len(v)} characters; the limit is {max_chars}")
        out.append(str(v))
    return out
