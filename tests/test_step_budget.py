"""finetune.min_steps / pretrain.min_steps: a small training split trains for enough optimizer steps (its epochs
raised to whole passes that reach the floor), a large one as its epochs say, and the report says what was derived."""

from __future__ import annotations

import json

from pipelines.config.blocks import FinetuneConfig
from types import SimpleNamespace

from pipelines.training.harness import early_stopping, with_step_floor
from tests.tiny import int8_only, make_repo_copy, run_stages, tiny_params


def test_a_few_hundred_rows_get_their_epochs_raised_to_reach_the_floor():
    cfg = FinetuneConfig(epochs=3, batch_size=32, min_steps=300)
    raised, derived = with_step_floor(cfg, 300)  # 10 steps an epoch: 3 epochs would be 30 steps
    assert raised.epochs == 30 and cfg.epochs == 3
    assert derived == {"epochs": 30, "set": 3, "steps_per_epoch": 10, "min_steps": 300, "rows": 300}


def test_enough_rows_keep_their_epochs_and_max_steps_still_rules():
    cfg = FinetuneConfig(epochs=3, batch_size=32, min_steps=300)
    assert with_step_floor(cfg, 30_000) == (cfg, None)
    capped = FinetuneConfig(epochs=3, batch_size=32, min_steps=300, max_steps=20)
    assert with_step_floor(capped, 300) == (capped, None)
    assert with_step_floor(FinetuneConfig(epochs=1, min_steps=0), 10) == (FinetuneConfig(epochs=1, min_steps=0), None)


def test_the_floor_counts_whole_optimizer_steps():
    # 100 rows at 8 x 2 accumulation: 7 steps an epoch; 20 steps need 3 whole epochs.
    cfg = FinetuneConfig(epochs=1, batch_size=8, gradient_accumulation_steps=2, min_steps=20)
    raised, derived = with_step_floor(cfg, 100)
    assert (raised.epochs, derived["steps_per_epoch"]) == (3, 7)


def test_early_stopping_waits_for_the_floor_then_stops_on_a_plateau():
    args = SimpleNamespace(metric_for_best_model="accuracy", greater_is_better=True)
    callback = early_stopping(patience=1, min_steps=10)
    state, control = SimpleNamespace(best_metric=0.6, global_step=5), SimpleNamespace(should_training_stop=False)
    callback.on_evaluate(args, state, control, {"eval_accuracy": 0.5})
    assert control.should_training_stop is False  # no better, but before the floor
    state.global_step = 10
    callback.on_evaluate(args, state, control, {"eval_accuracy": 0.5})
    assert control.should_training_stop is True
    # Without a floor it is transformers' early stopping.
    control = SimpleNamespace(should_training_stop=False)
    early_stopping(patience=1).on_evaluate(args, SimpleNamespace(best_metric=0.6, global_step=1), control,
                                           {"eval_accuracy": 0.5})
    assert control.should_training_stop is True


def test_finetune_trains_the_derived_epochs_and_reports_them(tmp_path):
    params = int8_only(tiny_params(["classification"], size=120))
    block = params["projects"]["classification"]
    block["finetune"].update(epochs=1, batch_size=16, min_steps=12, early_stopping_patience=1)
    block["pretrain"]["max_steps"] = 1
    params["tracking"]["register_model"] = False
    root = make_repo_copy(tmp_path / "repo", params)
    run_stages(root, until="finetune")
    report = json.loads((root / "reports/classification/finetune.json").read_text())
    rows = json.loads((root / "reports/classification/tokenize.json").read_text())["rows"]["train"]
    per_epoch = -(-rows // 16)
    assert report["epochs_derived"] == {"epochs": -(-12 // per_epoch), "set": 1, "steps_per_epoch": per_epoch,
                                        "min_steps": 12, "rows": rows}
    assert report["global_steps"] == report["epochs_derived"]["epochs"] * per_epoch >= 12
    assert json.loads((root / "reports/classification/pretrain.json").read_text())["epochs_derived"] is None
