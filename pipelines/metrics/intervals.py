"""How much a score moves by chance: bootstrap confidence intervals over test examples, and the
paired test that answers "is A better than B on these examples, and by how much".

Both resample the test examples with replacement and score each resample with the task's own
metric code (a ``scorer``: indices of examples -> {metric: value}), so a corpus metric such as BLEU
is recomputed from its summed sufficient statistics, not averaged per sentence. The resampling is
sacrebleu's own (``sacrebleu.significance``): the same seeded index matrix, the same percentile
interval, and for the paired test the same p-value (the share of resampled differences, centred on
their mean, at least as large as the observed one; Koehn 2004). A test holds that this module and
sacrebleu agree on BLEU.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

Scorer = Callable[[np.ndarray], Mapping[str, float]]

CONFIDENCE = 0.95
# The examples of one index matrix at most (rows of resamples x examples); beyond it the resamples
# are drawn in blocks, which keeps memory flat on a large test split.
MAX_INDEX_CELLS = 20_000_000


def resample_indices(n: int, samples: int, seed: int):
    """Blocks of resampled example indices, ``samples`` rows in all, each a resample of ``n``
    examples with replacement; one block (sacrebleu's matrix exactly) unless that is too large."""
    rng = np.random.default_rng(seed)
    rows = max(1, MAX_INDEX_CELLS // max(n, 1))
    done = 0
    while done < samples:
        block = min(rows, samples - done)
        yield rng.choice(n, size=(block, n), replace=True)
        done += block


def interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central ``confidence`` percentile interval of resampled values."""
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def _resampled(scorers: list[Scorer], n: int, samples: int, seed: int) -> list[dict[str, np.ndarray]]:
    found: list[dict[str, list[float]]] = [{} for _ in scorers]
    for block in resample_indices(n, samples, seed):
        for row in block:
            for out, scorer in zip(found, scorers):
                for name, value in scorer(row).items():
                    out.setdefault(name, []).append(float(value))
    return [{name: np.asarray(vals) for name, vals in out.items()} for out in found]


def confidence_intervals(scorer: Scorer, n: int, samples: int, seed: int,
                         confidence: float = CONFIDENCE) -> dict[str, list[float]]:
    """{metric: [low, high]}: each metric's ``confidence`` interval over ``samples`` resamples of the
    ``n`` test examples. Empty when there is nothing to resample (no examples or no resamples)."""
    if n == 0 or samples <= 0:
        return {}
    (values,) = _resampled([scorer], n, samples, seed)
    return {name: list(interval(vals, confidence)) for name, vals in values.items()}


def paired_comparison(scorer_a: Scorer, scorer_b: Scorer, n: int, metric: str, samples: int, seed: int,
                      greater_is_better: bool = True, confidence: float = CONFIDENCE) -> dict:
    """Is A better than B on the same ``n`` examples, by ``metric``, and by how much.

    Returns the observed difference A - B, its ``confidence`` interval, the two-sided p-value of
    the paired bootstrap, and ``verdict``: "better", "worse" (in the metric's direction, at
    1 - confidence) or "no significant difference"."""
    everything = np.arange(n)
    a, b = float(scorer_a(everything)[metric]), float(scorer_b(everything)[metric])
    observed = a - b
    if n == 0 or samples <= 0:
        return {"metric": metric, "a": a, "b": b, "difference": observed, "ci95": None, "p_value": None,
                "verdict": "not tested", "samples": 0, "examples": n}
    values_a, values_b = _resampled([lambda idx: {metric: scorer_a(idx)[metric]},
                                     lambda idx: {metric: scorer_b(idx)[metric]}], n, samples, seed)
    diffs = values_a[metric] - values_b[metric]
    # sacrebleu's statistic: |A - B| per resample, centred on its mean, against the observed |A - B|.
    spread = np.abs(diffs)
    centred = spread - spread.mean()
    p_value = float(((centred >= abs(observed)).sum() + 1) / (len(centred) + 1))
    lo, hi = interval(diffs, confidence)
    significant = p_value < 1 - confidence
    if not significant or observed == 0:
        verdict = "no significant difference"
    else:
        verdict = "better" if (observed > 0) == greater_is_better else "worse"
    return {"metric": metric, "a": a, "b": b, "difference": observed, "ci95": [lo, hi], "p_value": p_value,
            "verdict": verdict, "samples": int(samples), "examples": n}


def describe(comparison: dict, a: str, b: str) -> str:
    """One sentence: "int8 is no significantly different from full: accuracy -0.0027 (95 % CI -0.0110
    to 0.0050, p = 0.62)"."""
    metric, diff = comparison["metric"], comparison["difference"]
    if comparison.get("ci95") is None:
        return f"{a} - {b}: {metric} {diff:+.4f} (not tested: no examples)"
    lo, hi = comparison["ci95"]
    verdict = {"better": "better than", "worse": "worse than"}.get(comparison["verdict"], "not significantly "
                                                                                             "different from")
    return (f"{a} is {verdict} {b}: {metric} {comparison['a']:.4f} against {comparison['b']:.4f}, "
            f"difference {diff:+.4f} (95 % CI {lo:+.4f} to {hi:+.4f}, p = {comparison['p_value']:.3g})")
