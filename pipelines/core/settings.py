"""Per-machine settings read from the environment: every ``PIPELINES_*`` variable the product reads.

They change where and how a run happens, never its results, so they are not DVC params. Each is
validated by :func:`check` when a command starts, so a typo (``PIPELINES_NUM_WORKERS=auto``) stops
the command at once with a message naming the variable and what it allows, instead of failing
minutes later inside a stage.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable

from pipelines.core.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    allowed: str  # what a message says the variable accepts
    parse: Callable[[str], object]
    help: str


def _choice(*values: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in values:
            raise ValueError
        return value
    return parse


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if value < low:
            raise ValueError
        return value
    return parse


def _float_at_least(low: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not (value >= low) or value == float("inf"):  # also refuses NaN
            raise ValueError
        return value
    return parse


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError
    return value


def _processes(raw: str) -> int | str:
    # auto stays a word here: counting GPUs imports torch, which a command that trains nothing skips.
    value = raw.strip().lower()
    return value if value == "auto" else _int_at_least(1)(value)


def _optional_threads(raw: str) -> int | None:
    return None if not raw.strip() else _int_at_least(1)(raw)


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _machine_name(raw: str) -> str:
    # It names a Prefect concurrency limit and a folder of lock files.
    value = raw.strip()
    if value and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
        raise ValueError
    return value


def _gpu_slots(raw: str) -> tuple[str, ...] | None:
    """GPU ids (``0,2``: two slots, on GPUs 0 and 2), or ``cpu`` / ``cpu:N`` for a machine that
    trains on its processor, one run (or N) at a time; None when unset (the flows then use the
    visible GPUs)."""
    raw = raw.strip().lower()
    if not raw:
        return None
    if raw == "cpu" or raw.startswith("cpu:"):
        count = _int_at_least(1)(raw.partition(":")[2] or "1")
        return tuple(f"cpu-{i}" for i in range(count))
    ids = tuple(part.strip() for part in raw.split(","))
    if not all(part.isdigit() for part in ids) or len(set(ids)) != len(ids):
        raise ValueError
    return ids


SETTINGS = {s.name: s for s in (
    Setting("PIPELINES_ROOT", "", "a folder (unset: the working directory)", str,
            "the project folder the stages read and write"),
    Setting("PIPELINES_DEVICE", "", "auto, cpu or cuda (unset: runtime.device of params.yaml)",
            lambda raw: _choice("auto", "cpu", "cuda")(raw) if raw.strip() else None,
            "device for training and evaluation on this machine"),
    Setting("PIPELINES_NUM_WORKERS", "0", "a whole number, 0 or more", _int_at_least(0),
            "data-loader worker processes of training"),
    Setting("PIPELINES_NUM_PROCESSES", "1", "a whole number, 1 or more, or auto (one per visible GPU)", _processes,
            "processes pretrain and finetune train on, each with the params' batch size (pipelines/training/distributed.py)"),
    Setting("PIPELINES_LOG_LEVEL", "INFO", ", ".join(LOG_LEVELS), _log_level, "log level of the commands"),
    Setting("PIPELINES_PROGRESS", "1", "1 (show progress bars) or 0", _flag, "progress bars of long steps"),
    Setting("PIPELINES_LATENCY_THREADS", "", "a whole number, 1 or more, or unset for every core",
            _optional_threads, "threads of latency measurements"),
    Setting("PIPELINES_FLOW_RETRIES", "1", "a whole number, 0 or more", _int_at_least(0),
            "retries of a failed stage in a flow"),
    Setting("PIPELINES_FLOW_RETRY_DELAY", "30", "seconds, 0 or more", _float_at_least(0.0),
            "wait between retries of a stage in a flow"),
    # Scale-out: what a worker machine offers the flow runs it takes (flows/gpu_slots.py).
    Setting("PIPELINES_GPU_SLOTS", "", "a comma list of GPU ids (0,1), or cpu or cpu:N (unset: the "
            "visible GPUs, else cpu)", _gpu_slots, "GPU slots of this machine; a flow run trains on one at a time"),
    Setting("PIPELINES_MACHINE", "", "letters, digits, '.', '_' and '-' (unset: the host name)", _machine_name,
            "the machine whose GPU slots a flow run takes; workers sharing GPUs share it"),
    Setting("PIPELINES_CHECKOUT", "", "a folder (unset: the folder the deployment was created from)", str,
            "this worker's checkout of the repository, where its flow runs work"),
    Setting("PIPELINES_PRODUCTION_BRANCHES", "main,master", "git branch names, comma-separated (* for all)", str,
            "the branches whose exports may move champion; an export inside `dvc exp run` never does"),
    Setting("PIPELINES_REGISTRY_SETTLE_SECONDS", "2", "seconds, 0 or more", _float_at_least(0.0),
            "wait before an export re-reads the champion alias it set on a tracking server (another "
            "machine's export may have set it at the same moment)"),
    # Set by `python -m pipelines sweep` for the finetune stage of each trial, not by hand.
    Setting("PIPELINES_SWEEP_STORAGE", "", "the Optuna storage URL of a sweep", str, "the sweep a trial reports to"),
    Setting("PIPELINES_SWEEP_STUDY", "", "a sweep's name", str, "the sweep a trial reports to"),
    Setting("PIPELINES_SWEEP_TRIAL_ID", "", "a trial id of the sweep", str, "the trial a finetune run is"),
    Setting("PIPELINES_SWEEP_PRUNER", "none", "median, halving or none", _choice("median", "halving", "none"),
            "how a sweep stops trials that trail"),
    Setting("PIPELINES_SWEEP_PARENT_RUN", "", "an MLflow run id", str, "the sweep's MLflow run"),
)}


# What the product sets for itself and the libraries it runs, unless the user set it: no telemetry
# calls from an offline pipeline, and no library chatter in stage logs. Every entry point applies
# these (the stages' CLI, the flows' CLI, the environment flows give stages, the test suite).
ENVIRONMENT_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GRADIO_ANALYTICS_ENABLED": "False",  # the demo page: no usage reports, no version check
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}


def apply_environment_defaults(env: dict | None = None, **extra: str) -> dict:
    """Set ENVIRONMENT_DEFAULTS (and ``extra``) in ``env`` (default: this process's environment)
    where they are not set already; returns ``env``."""
    target = os.environ if env is None else env
    for key, value in {**ENVIRONMENT_DEFAULTS, **extra}.items():
        target.setdefault(key, value)
    return target


def progress(iterable, desc: str, **kwargs):
    """``iterable`` with a progress bar (tqdm, as training's), unless PIPELINES_PROGRESS=0."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=not get("PIPELINES_PROGRESS"), **kwargs)


def get(name: str):
    """The parsed value of one setting; a ConfigError naming the variable when it is malformed."""
    setting = SETTINGS[name]
    raw = os.environ.get(name, "")
    if not raw.strip():  # unset or empty: the default, as for any variable set to nothing
        raw = setting.default
    try:
        return setting.parse(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not valid; allowed: {setting.allowed} "
                          f"({setting.help}). Fix or unset it") from None


def check() -> None:
    """Validate every setting at once; one ConfigError lists all malformed variables."""
    problems = []
    for name in SETTINGS:
        try:
            get(name)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems) if len(problems) == 1 else
                          f"{len(problems)} environment variables are not valid:\n" +
                          "\n".join(f"  - {p}" for p in problems))
