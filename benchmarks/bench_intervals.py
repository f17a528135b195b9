"""What the 95 % intervals cost and how wide they are on the shared sets' test splits.

    python -m benchmarks.run intervals

For each shared set: the test split, answered by the task's trivial baseline (the majority class,
the source copied, the leading sentences) and by a stand-in model (the references with a share of
the answers spoiled), so that no training is needed; then what evaluate adds per variant: the
interval of every metric, the paired change from the full model and the paired comparison with the
baseline, each with the default 1,000 resamples. Reports seconds per variant, the widths, and the
verdicts.
"""

from __future__ import annotations

import json
import random
import time

import numpy as np

from .common import SHARED, save

SAMPLES = 1000
SEED = 42


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _spoil_text(text: str, rng: random.Random, share: float) -> str:
    words = text.split()
    kept = [w for w in words if rng.random() > share]
    return " ".join(kept or words[:1])


def _case(task: str, records, train, cfg):
    from pipelines.tasks import get_task

    impl = get_task(task).impl()
    rng = random.Random(SEED)
    if task == "classification":
        labels = sorted({r["label"] for r in train} | {r["label"] for r in records})
        # a stand-in model right on about 85 % of the examples
        pairs = [(r["label"], r["label"] if rng.random() < 0.85 else rng.choice(labels)) for r in records]
        model = {"pairs": pairs, "labels": labels}
    else:
        from pipelines.tasks.seq2seq.scoring import result_from_outputs

        target = get_task(task).target_field
        model = result_from_outputs(records, [_spoil_text(r[target], rng, 0.3) for r in records], cfg)
    name, baseline = impl.baseline_result(records, train, model, cfg)
    return impl, model, name, baseline


def measure(task: str, folder) -> dict:
    from pipelines.config import parse_params
    from pipelines.metrics import intervals
    from pipelines.tasks import get_task

    cfg = parse_params({"projects": {"p": {"task": task}}}).project("p")
    spec = get_task(task)
    records, train = _read(folder / "test.jsonl"), _read(folder / "train.jsonl")  # the tasks' own field names
    impl, model, name, baseline = _case(task, records, train, cfg)
    primary, n = spec.primary_metric, len(records)
    t0 = time.perf_counter()
    scorer = impl.resample_scorer(model, cfg)
    base = impl.resample_scorer(baseline, cfg)
    prepared = time.perf_counter() - t0
    t0 = time.perf_counter()
    ci = intervals.confidence_intervals(scorer, n, SAMPLES, SEED)
    interval_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    versus = intervals.paired_comparison(scorer, base, n, primary, SAMPLES, SEED, spec.greater_is_better())
    paired_seconds = time.perf_counter() - t0
    point = scorer(np.arange(n))
    return {"test_examples": n, "primary_metric": primary, "stand_in_model": round(point[primary], 4),
            "ci95": {m: [round(lo, 4), round(hi, 4)] for m, (lo, hi) in ci.items()},
            "ci95_width": {m: round(hi - lo, 4) for m, (lo, hi) in ci.items()},
            "baseline": name, "baseline_score": round(versus["b"], 4), "versus_baseline": versus["verdict"],
            "seconds_prepare": round(prepared, 3), "seconds_intervals": round(interval_seconds, 3),
            "seconds_one_paired_test": round(paired_seconds, 3),
            # what evaluate adds per variant: its scorer (half of the prepared pair), its intervals, its change
            # from full and its comparison with the baseline
            "seconds_per_variant": round(prepared / 2 + interval_seconds + 2 * paired_seconds, 3)}


CASES = {
    "sst2": ("classification", "classification/sst2"),
    "multi30k_en_de": ("translation", "translation/multi30k_en_de"),
    "aeslc": ("summarization", "summarization/aeslc"),
}


def main(skip_real: bool = False) -> dict:
    found = {}
    for name, (task, rel) in CASES.items():
        folder = SHARED / rel
        if not (folder / "test.jsonl").exists():
            found[name] = {"skipped": f"{folder} not found"}
            continue
        found[name] = measure(task, folder)
    out = {"samples": SAMPLES, "sets": found}
    save("intervals", out)
    return out
