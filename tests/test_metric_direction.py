"""Every decision a metric makes follows the metric's direction.

A task whose primary metric is lower-is-better (an error rate) is registered for these tests only;
each place where a score decides something is asked to decide between a lower and a higher value
and must prefer the lower: the registry's champion rule, early stopping and the best checkpoint,
a sweep's study and --apply best, the export's best_under_latency, the summary line and the demo's
worst examples. The same decisions for the shipped tasks (higher is better) are the other tests'.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Literal

import pytest

from pipelines.config import tasks as task_registry
from pipelines.config.tasks import Metric, TaskSpec
from pipelines.tasks.classification import TASK as CLASSIFICATION
from pipelines.tasks.classification import ClassificationProject

NAME = "error-rate-toy"


class ToyProject(ClassificationProject):
    task: Literal["error-rate-toy"] = "error-rate-toy"


def _toy_model():
    from pipelines.tasks.classification.model import ClassificationModel

    return ClassificationModel()


@pytest.fixture
def toy(monkeypatch):
    """A task like classification whose primary metric is an error rate: lower is better."""
    spec = TaskSpec(
        name=NAME, config=ToyProject, fields=CLASSIFICATION.fields, kinds=CLASSIFICATION.kinds,
        input_field="text", target_field="label",
        metrics=(Metric("error_rate", greater_is_better=False), Metric("accuracy")), primary_metric="error_rate",
        metric_module="classification_report", output_key="label", model=_toy_model,
        builtin=CLASSIFICATION.builtin, presets=CLASSIFICATION.presets, plot_template=CLASSIFICATION.plot_template,
        intended_use="labels a text")
    task_registry.registered_tasks()  # the shipped tasks first, so that discovery does not run again inside the patch
    monkeypatch.setitem(task_registry._REGISTRY, NAME, spec)
    return spec


def test_the_spec_gives_each_metric_its_direction(toy):
    assert toy.greater_is_better() is False
    assert toy.greater_is_better("validation error_rate") is False and toy.greater_is_better("eval_accuracy")
    assert toy.primary.better(0.1, 0.2) and not toy.primary.better(0.2, 0.1)
    with pytest.raises(KeyError, match="error_rate, accuracy"):
        toy.greater_is_better("bleu")


def test_a_project_of_the_registered_task_validates(toy):
    from pipelines.config import parse_params

    params = parse_params({"projects": {"p": {"task": NAME}}})
    assert type(params.project("p")) is ToyProject


def test_the_champion_moves_to_the_lower_error_and_stays_against_a_higher_one(toy):
    from pipelines.tracking.registry import Score, _verdict

    lower = toy.greater_is_better()
    moved, why = _verdict(2, 0.10, 1, Score(0.20, "recorded"), "error_rate", "keep", lower)
    assert moved and "<= champion's 0.2000 (lower is better)" in why
    kept, why = _verdict(2, 0.30, 1, Score(0.20, "recorded"), "error_rate", "keep", lower)
    assert not kept and "> champion's" in why
    # the same numbers under a higher-is-better metric decide the other way
    assert not _verdict(2, 0.10, 1, Score(0.20, "recorded"), "accuracy", "keep", True)[0]


def test_early_stopping_and_the_best_checkpoint_minimise_it(toy, tmp_path):
    from pipelines.tasks.contract import TaskModel
    from pipelines.training.harness import build_args

    best = toy.impl().metric_for_best_model(SimpleNamespace(task=NAME))
    assert best == ("error_rate", False)
    assert TaskModel.metric_for_best_model(toy.impl(), SimpleNamespace(task="classification")) == ("accuracy", True)
    args = build_args(ToyProject().finetune, tmp_path, "cpu", "fp32", 1, evaluate=True, best_metric=best)
    assert args.metric_for_best_model == "error_rate" and args.greater_is_better is False
    assert args.load_best_model_at_end


def test_a_sweep_keeps_or_applies_by_the_lower_value(toy):
    from pipelines.sweep.study import keep_or_apply

    greater = toy.impl().metric_for_best_model(SimpleNamespace(task=NAME))[1]
    baseline = {"value": 0.30, "examples": 100, "margin": 0.01}
    assert keep_or_apply({"experiment": "e1", "value": 0.20}, baseline, "error_rate", greater, None)["applied"] == "e1"
    kept = keep_or_apply({"experiment": "e2", "value": 0.40}, baseline, "error_rate", greater, None)
    assert kept["applied"] is None and kept["kept"] == "workspace"


def test_best_under_latency_exports_the_lowest_error_within_the_budget(toy):
    from pipelines.stages.export import choose_variant

    table = {"full": {"error_rate": 0.10, "latency_ms": 9.0}, "int8": {"error_rate": 0.12, "latency_ms": 3.0},
             "student": {"error_rate": 0.30, "latency_ms": 2.0}}
    cfg = SimpleNamespace(variant="best_under_latency", latency_budget_ms=5.0)
    assert choose_variant(cfg, table, "error_rate", toy.greater_is_better())[0] == "int8"
    assert choose_variant(cfg, table, "error_rate", True)[0] == "student"  # what "higher is better" would pick


def _write_reports(root, project: str, greater: bool):
    reports = root / "reports" / project
    reports.mkdir(parents=True)
    table = {"full": {"error_rate": 0.10}, "int8": {"error_rate": 0.11, "speedup_batch1": 2.0},
             "pruned": {"error_rate": 0.40, "speedup_batch1": 3.0}, "student": {"error_rate": 0.105,
                                                                              "speedup_batch1": 2.5}}
    (reports / "variants.json").write_text(json.dumps({"primary_metric": "error_rate", "greater_is_better": greater,
                                                       "variants": table}))
    rows = [{"example": i, "input": f"text {i}", "reference": "a", "prediction": "b", "score": s}
            for i, s in enumerate([0.0, 1.0, 0.5, 0.9, 0.1])]
    (reports / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return reports


def test_the_summary_line_names_the_fastest_variant_within_a_point_in_the_metrics_direction(toy, tmp_path):
    from pipelines.cli.summary import project_line

    _write_reports(tmp_path, "p", greater=False)
    line = project_line("p", tmp_path)
    # pruned is fastest but 30 points worse; student keeps within a point (lower is better)
    assert "best compressed: student 0.105" in line, line


def test_the_demos_worst_examples_are_the_highest_scores_of_a_lower_is_better_metric(toy, tmp_path):
    from pipelines.serving.demo import results

    _write_reports(tmp_path, "p", greater=False)
    worst = [r["example"] for r in results("p", tmp_path)["worst"]]
    assert worst[:2] == [1, 3], worst
    (tmp_path / "reports" / "p" / "variants.json").unlink()
    _write_reports(tmp_path / "higher", "p", greater=True)
    assert [r["example"] for r in results("p", tmp_path / "higher")["worst"]][:2] == [0, 4]
