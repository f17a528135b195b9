"""The errors a flow reports as its failure message, and which of them a retry may fix."""

from __future__ import annotations

# Exit codes of `python -m pipelines` that a retry cannot fix (pipelines/core/errors.py): a bad
# params.yaml (2), bad input data (3), or a trained model that fails a check params ask for (5: the
# retry resumes from the same checkpoints and fails the same check). Anything else (a lost tracking
# server, a killed process, CUDA out of memory on a shared GPU) may pass on a second try.
PERMANENT_EXIT_CODES = (2, 3, 5)


class FlowError(Exception):
    """A problem the flow reports as its failure message (no traceback needed to act on it)."""


class OverrideError(FlowError):
    """An override is malformed, or params.yaml with it applied does not validate."""


class StageFailed(FlowError):
    """A DVC stage exited non-zero; the message carries the tail of its stderr."""

    def __init__(self, target: str, exit_code: int, tail: str):
        self.target, self.exit_code, self.tail = target, exit_code, tail
        super().__init__(f"{target} failed (exit code {exit_code}):\n{tail}")

    @property
    def transient(self) -> bool:
        """Whether a second try may pass (see PERMANENT_EXIT_CODES)."""
        return self.exit_code not in PERMANENT_EXIT_CODES
