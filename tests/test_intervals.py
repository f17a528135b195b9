"""Confidence intervals and paired tests (pipelines.metrics.intervals): they cover known values on
synthetic data, agree with sacrebleu's own paired bootstrap, respect a metric's direction, and the
export rule that a model must beat the task's trivial baseline."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.metrics import intervals
from pipelines.metrics.resample import classification_scorer, mean_scorer, sacrebleu_scorer


def mean_of(values):
    values = np.asarray(values, dtype=float)
    return lambda idx: {"score": float(values[idx].mean())}


def test_the_interval_of_a_coin_covers_its_bias_and_has_the_textbook_width():
    rng = np.random.default_rng(0)
    for bias in (0.3, 0.7, 0.9):
        flips = rng.random(600) < bias
        (lo, hi), = intervals.confidence_intervals(mean_of(flips), len(flips), 2000, seed=1).values()
        assert lo < bias < hi
        textbook = 2 * 1.96 * (flips.mean() * (1 - flips.mean()) / len(flips)) ** 0.5  # normal approximation
        assert (hi - lo) == pytest.approx(textbook, rel=0.15)


def test_a_known_difference_is_found_in_the_metrics_direction_and_noise_is_not():
    rng = np.random.default_rng(3)
    a = rng.random(800) < 0.80
    b = a.copy()
    b[rng.choice(800, 80, replace=False)] = False  # B loses up to 10 points on the same examples
    truth = a.mean() - b.mean()
    found = intervals.paired_comparison(mean_of(a), mean_of(b), 800, "score", 1000, seed=7)
    assert found["difference"] == pytest.approx(truth)
    assert found["ci95"][0] < truth < found["ci95"][1] and found["ci95"][0] > 0
    assert found["verdict"] == "better" and found["p_value"] < 0.01
    assert intervals.paired_comparison(mean_of(b), mean_of(a), 800, "score", 1000, seed=7)["verdict"] == "worse"
    # the same numbers as a loss (lower is better): A's higher value is worse
    assert intervals.paired_comparison(mean_of(a), mean_of(b), 800, "score", 1000, seed=7,
                                       greater_is_better=False)["verdict"] == "worse"
    # two systems that differ on 3 of 800 examples, both ways: no significant difference
    c = a.copy()
    c[np.flatnonzero(a)[:2]] = False
    c[np.flatnonzero(~a)[:1]] = True
    same = intervals.paired_comparison(mean_of(a), mean_of(c), 800, "score", 1000, seed=7)
    assert same["verdict"] == "no significant difference" and same["p_value"] > 0.05
    assert same["ci95"][0] <= 0 <= same["ci95"][1]
    assert "not significantly different" in intervals.describe(same, "A", "C")


def test_the_paired_bootstrap_agrees_with_sacrebleus():
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import _paired_bs_test

    refs = [f"the {c} {a} sat on the {p} number {i}" for i, (c, a, p) in enumerate(
        zip(["red", "big", "old", "small"] * 10, ["cat", "dog", "bird", "fox"] * 10, ["mat", "rug", "sofa"] * 14))]
    good = [r if i % 3 else r.replace("sat", "lay") for i, r in enumerate(refs)]
    poor = [" ".join(r.split()[:4]) for r in refs]
    bleu = BLEU()
    base_stats = bleu._extract_corpus_statistics(poor, [refs])
    _, found = _paired_bs_test({"BLEU": (base_stats, bleu._aggregate_and_compute(base_stats))}, "good", good,
                               [refs], {"BLEU": bleu}, n_samples=500, seed=11)
    ours = intervals.paired_comparison(sacrebleu_scorer(good, [[r] for r in refs]),
                                       sacrebleu_scorer(poor, [[r] for r in refs]), len(refs), "bleu", 500, seed=11)
    assert ours["a"] == pytest.approx(found["BLEU"].score)
    assert ours["p_value"] == pytest.approx(found["BLEU"].p_value)
    # sacrebleu's interval is the mean of the resamples +- the half width of the 95 % percentiles
    (lo, hi) = intervals.confidence_intervals(sacrebleu_scorer(good, [[r] for r in refs]), len(refs), 500,
                                              seed=11)["bleu"]
    assert (hi - lo) / 2 == pytest.approx(found["BLEU"].ci, rel=1e-6)


def test_the_scorers_reproduce_the_metric_modules_on_the_whole_split():
    from pipelines.metrics import compute

    refs, preds = [0, 0, 1, 2, 2, 2, 1, 0], [0, 1, 1, 2, 0, 2, 1, 1]
    whole = classification_scorer(refs, preds, 4)(np.arange(len(refs)))  # label 3: no example, no prediction
    report = compute("classification_report", predictions=preds, references=refs, labels=["a", "b", "c", "d"])
    for key in ("accuracy", "macro_f1", "weighted_f1"):
        assert whole[key] == pytest.approx(report[key])

    hyps = ["the cat sat on the mat", "a dog ran", "birds fly south in winter"]
    references = [["the cat sat on a mat"], ["the dog ran fast"], ["birds fly south for the winter", "birds go south"]]
    scores = compute("sacrebleu_scores", predictions=hyps, references=references)
    whole = sacrebleu_scorer(hyps, references)(np.arange(3))
    assert whole["bleu"] == pytest.approx(scores["bleu"]) and whole["chrf"] == pytest.approx(scores["chrf"])

    rouge = compute("rouge_scores", predictions=hyps, references=references, per_example=True)
    whole = mean_scorer(rouge["per_example"], ["rouge1", "rougeL"])(np.arange(3))
    assert whole["rouge1"] == pytest.approx(rouge["rouge1"]) and whole["rougeL"] == pytest.approx(rouge["rougeL"])


def test_each_task_has_a_trivial_baseline_scored_like_its_model():
    from pipelines.config import parse_params
    from pipelines.tasks import get_task
    from tests.tiny import tiny_params

    params = parse_params(tiny_params({"c": "classification", "t": "translation", "s": "summarization"}))
    train = [{"text": "x", "label": "pos"}, {"text": "y", "label": "neg"}, {"text": "z", "label": "pos"}]
    records = [{"text": "a", "label": "neg"}, {"text": "b", "label": "pos"}]
    name, result = get_task("classification").impl().baseline_result(records, train, {"labels": ["neg", "pos"]},
                                                                        params.project("c"))
    assert name == "majority class ('pos')" and result["metrics"]["accuracy"] == 0.5

    cfg = params.project("t")
    records = [{"source": "das haus", "target": "the house"}, {"source": "hallo welt", "target": "hello world"}]
    name, result = get_task("translation").impl().baseline_result(records, [], {}, cfg)
    assert name == "the source copied" and result["predictions"] == ["das haus", "hallo welt"]
    assert 0 <= result["metrics"]["bleu"] < 10

    cfg = params.project("s")
    doc = "First sentence here. Second one follows! Third is last."
    train = [{"document": doc, "summary": "four words long summary"}]
    name, result = get_task("summarization").impl().baseline_result(
        [{"document": doc, "summary": "first sentence"}], train, {}, cfg)
    assert name == "leading sentences (at least 4 words)"
    assert result["predictions"] == ["First sentence here. Second one follows!"]
    scorer = get_task("summarization").impl().resample_scorer(result, cfg)
    assert scorer(np.arange(1))["rougeL"] == pytest.approx(result["metrics"]["rougeL"])


def test_a_model_no_better_than_the_baseline_is_not_made_champion():
    from pipelines.stages.export import baseline_gate

    chance = intervals.paired_comparison(mean_of([1, 0, 1, 0] * 75), mean_of([1, 1, 0, 0] * 75), 300, "score", 500,
                                         seed=1)
    evaluation = {"baseline": {"name": "majority class ('pos')", "comparisons": {"full": {**chance,
                                                                                          "metric": "accuracy"}}}}
    reason = baseline_gate(evaluation, "full")
    assert reason.startswith("not significantly better than the trivial baseline, majority class ('pos'): full is")
    assert "accuracy 0.5000 against 0.5000" in reason and "stays candidate" in reason
    better = intervals.paired_comparison(mean_of([1] * 300), mean_of([1, 0] * 150), 300, "score", 500, seed=1)
    assert baseline_gate({"baseline": {"name": "m", "comparisons": {"full": better}}}, "full") is None
    assert baseline_gate({}, "full") is None  # intervals turned off: nothing to enforce


def test_a_speedup_within_the_noise_of_the_timings_is_no_measurable_change():
    from pipelines.compression.measurement import speedup_interval

    rng = np.random.default_rng(5)
    base = list(10 + rng.exponential(2.0, 60))  # call times of one model, noisy, with a long tail
    same = list(np.asarray(base) * rng.normal(1.0, 0.15, 60))  # the same speed, measured in turns
    lo, hi = speedup_interval(base, same)
    assert lo <= 1.0 <= hi
    lo, hi = speedup_interval(base, list(np.asarray(same) / 2))  # twice as fast
    assert 1.6 < lo < 2.0 < hi < 2.5
    assert speedup_interval(base, base[:10]) is None  # not paired: nothing to say
