"""Scorers for resampling: the project's metrics on any subset of the test examples (a row of
indices, repeats allowed), computed the way the metric modules compute them on the whole split.

Each ``*_scorer`` does the expensive part once (per-example confusion cells, sacrebleu's sentence
statistics, per-example ROUGE) and returns ``score(indices) -> {metric: value}`` that only sums or
averages, so a thousand resamples cost a fraction of the evaluation they bound.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def classification_scorer(references: Sequence[int], predictions: Sequence[int], n_labels: int):
    """Accuracy, macro F1 and weighted F1 over every label id (a class with no example and no
    prediction in a resample counts 0, as ``zero_division=0`` does in the classification report)."""
    ref = np.asarray(references, dtype=np.int64)
    pred = np.asarray(predictions, dtype=np.int64)
    cell = ref * n_labels + pred  # the confusion-matrix cell of each example

    def score(idx: np.ndarray) -> dict[str, float]:
        cm = np.bincount(cell[idx], minlength=n_labels * n_labels).reshape(n_labels, n_labels)
        tp = np.diag(cm).astype(float)
        support, predicted = cm.sum(1), cm.sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = np.where(support > 0, tp / support, 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        total = support.sum()
        return {"accuracy": float(tp.sum() / total), "macro_f1": float(f1.mean()),
                "weighted_f1": float((f1 * support).sum() / total)}

    return score


def _streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Reference lists per example as sacrebleu's reference streams (None where one has fewer)."""
    most = max(len(r) for r in references)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(most)]


def sacrebleu_scorer(predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: str = "13a",
                     lowercase: bool = False):
    """Corpus BLEU and chrF from summed sentence statistics, as sacrebleu's own bootstrap does."""
    from sacrebleu.metrics import BLEU, CHRF

    streams = _streams(references)
    metrics = {"bleu": BLEU(tokenize=tokenize, lowercase=lowercase), "chrf": CHRF(lowercase=lowercase)}
    stats = {name: np.asarray(m._extract_corpus_statistics(list(predictions), streams), dtype="float32")
             for name, m in metrics.items()}

    def score(idx: np.ndarray) -> dict[str, float]:
        return {name: float(metrics[name]._compute_score_from_stats(stats[name][idx].sum(0)).score)
                for name in metrics}

    return score


def mean_scorer(per_example: Sequence[dict], keys: Sequence[str]):
    """The mean of per-example scores (ROUGE F-measures: the corpus figure is their mean)."""
    table = {k: np.asarray([row[k] for row in per_example], dtype=float) for k in keys}

    def score(idx: np.ndarray) -> dict[str, float]:
        return {k: float(values[idx].mean()) for k, values in table.items()}

    return score
