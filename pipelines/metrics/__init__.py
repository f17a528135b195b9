"""The project's own metric modules, loaded by path through Hugging Face ``evaluate``.

``evaluate.load("sacrebleu")`` and friends fetch their scripts from the Hub, which fails offline.
Each metric here is a local ``evaluate.Metric`` in ``pipelines/metrics/<name>/<name>.py``, loaded
with ``evaluate.load(<path>)``: no network, and the usual ``compute`` / ``add_batch`` API.

- ``classification_report``: accuracy, macro / weighted F1, per-class scores, confusion matrix.
- ``sacrebleu_scores``: corpus BLEU and chrF from sacrebleu, with their signatures.
- ``rouge_scores``: ROUGE-1/2/L/Lsum from rouge-score, best reference per example.

``evaluate`` is imported only when a metric is loaded, so importing this package stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import evaluate

METRICS_DIR = Path(__file__).resolve().parent


def available_metrics() -> list[str]:
    """Names of the metric modules shipped in this package, sorted."""
    return sorted(p.name for p in METRICS_DIR.iterdir() if p.is_dir() and (p / f"{p.name}.py").is_file())


def metric_path(name: str) -> Path:
    """Path of the metric script ``<name>/<name>.py``; ValueError naming the available ones if unknown."""
    available = available_metrics()
    # Checking against the listing (not just the file system) also rejects names such as "../x".
    if name not in available:
        raise ValueError(f"unknown metric {name!r}; available metrics: {', '.join(available)}")
    return METRICS_DIR / name / f"{name}.py"


def load_metric(name: str, **load_kwargs: Any) -> "evaluate.EvaluationModule":
    """Load a project metric offline; ``load_kwargs`` go to ``evaluate.load`` (e.g. ``experiment_id``)."""
    path = metric_path(name)
    import evaluate  # here, not at module level: evaluate pulls in datasets and pyarrow

    return evaluate.load(str(path), **load_kwargs)


def compute(name: str, **kwargs: Any) -> dict:
    """Load metric ``name`` and compute it in one call: ``compute("rouge_scores", predictions=..., references=...)``."""
    return load_metric(name).compute(**kwargs)
