"""Errors a user can act on. The CLI prints their message (no traceback) and exits non-zero."""


class PipelineError(Exception):
    """Base: the message says what is wrong and how to fix it."""

    exit_code = 1


class ConfigError(PipelineError, ValueError):
    """params.yaml is invalid; the message lists every problem."""

    exit_code = 2


class DataError(PipelineError, ValueError):
    """Input data is missing, empty, malformed, or fails a validation rule."""

    exit_code = 3


class TrainingError(PipelineError, RuntimeError):
    """Training finished but the model fails a check that params ask for (nothing is saved)."""

    exit_code = 5


class TrackingError(PipelineError, RuntimeError):
    """MLflow cannot be reached or refused an update."""

    exit_code = 4
