"""Training memory and speed options behave as users expect (on a tiny model, on CPU)."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from pipelines.config import TrainConfig
from pipelines.tasks.classification import ClassificationProject
from pipelines.core.errors import ConfigError
from pipelines.tasks.classification import model as cls_task
from pipelines.data.tokenization import train_tokenizer
from pipelines.training.harness import (KeepKeys, build_args, cpu_supports_bf16, make_trainer, resolve_precision,
                                train)

WORDS = "the a good bad film plot actor scene music long short boring great awful fine dull witty".split()


def _records(n=64, seed=0):
    rng = random.Random(seed)
    return [{"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 30))), "label": "ab"[i % 2]}
            for i in range(n)]


@pytest.fixture(scope="module")
def setup():
    cfg = ClassificationProject.model_validate({
        "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "dropout": 0.0},
        "tokenizer": {"vocab_size": 120, "max_length": 40},
    })
    splits = {"train": _records(64), "validation": _records(16, 1), "test": _records(16, 2)}
    tok = train_tokenizer((r["text"] for r in splits["train"]), cfg.tokenizer, cls_task.SPECIALS)
    dsd = cls_task.encode(splits, {"tokenizer": tok}, cfg)
    torch.manual_seed(0)
    model = cls_task.build_pretrain_model(cfg, {"tokenizer": tok})
    from transformers import BertConfig, BertForSequenceClassification

    conf = BertConfig(**{**model.config.to_dict(), "num_labels": 2})
    torch.manual_seed(0)
    clf = BertForSequenceClassification(conf)
    return cfg, tok, dsd, clf


def _one_step(setup, tmp_path, batch, accum, checkpointing=False):
    cfg, tok, dsd, base = setup
    model = copy.deepcopy(base)
    tc = TrainConfig(batch_size=batch, gradient_accumulation_steps=accum, max_steps=1, warmup_ratio=0,
                     learning_rate=1e-2, weight_decay=0, gradient_checkpointing=checkpointing)
    args = build_args(tc, tmp_path, "cpu", "fp32", 0, evaluate=False, best_metric=None)
    args.dataloader_drop_last = True
    # SGD: the update is proportional to the gradient. Adam's first step is lr * sign(grad),
    # which turns float noise in near-zero gradients into full-size differences.
    args.optim = "sgd"
    # the same 8 examples in the same order for both settings
    ds = dsd["train"].select(range(8))
    collator = KeepKeys(cls_task.collator({"tokenizer": tok}, cfg), cls_task.FINETUNE_KEYS)
    trainer = make_trainer(model, args, ds, None, collator)
    trainer._get_train_sampler = lambda *a, **k: torch.utils.data.SequentialSampler(ds)
    out = trainer.train()
    return model, out.training_loss


def _update_gap(setup, a, b) -> float:
    """Largest difference between two updates, relative to the largest update."""
    base = dict(setup[3].named_parameters())
    gap = scale = 0.0
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        gap = max(gap, float((p - q).abs().max()))
        scale = max(scale, float((p - base[n]).abs().max()))
    return gap / scale


def test_gradient_accumulation_matches_the_large_batch(setup, tmp_path):
    big, loss_big = _one_step(setup, tmp_path / "a", batch=8, accum=1)
    small, loss_small = _one_step(setup, tmp_path / "b", batch=2, accum=4)
    # Equal up to float summation order (padding differs between one batch of 8 and four of 2).
    assert _update_gap(setup, big, small) < 1e-2
    assert loss_small == pytest.approx(loss_big, rel=1e-4)


def test_gradient_checkpointing_gives_the_same_loss_and_update(setup, tmp_path):
    plain, loss_plain = _one_step(setup, tmp_path / "a", batch=8, accum=1)
    ckpt, loss_ckpt = _one_step(setup, tmp_path / "b", batch=8, accum=1, checkpointing=True)
    assert loss_ckpt == pytest.approx(loss_plain, rel=1e-5)
    assert _update_gap(setup, plain, ckpt) < 1e-3


def _padding_tokens(setup, tmp_path, group):
    cfg, tok, dsd, base = setup
    tc = TrainConfig(batch_size=8, group_by_length=group)
    args = build_args(tc, tmp_path, "cpu", "fp32", 0, evaluate=False, best_metric=None)
    from transformers import Trainer

    collator = KeepKeys(cls_task.collator({"tokenizer": tok}, cfg), cls_task.FINETUNE_KEYS)
    trainer = Trainer(model=copy.deepcopy(base), args=args, train_dataset=dsd["train"], data_collator=collator)
    pads = 0
    for batch in trainer.get_train_dataloader():
        pads += int((batch["attention_mask"] == 0).sum())
    return pads


def test_length_grouped_batches_hold_fewer_padding_tokens(setup, tmp_path):
    grouped = _padding_tokens(setup, tmp_path / "g", True)
    shuffled = _padding_tokens(setup, tmp_path / "r", False)
    assert grouped < 0.7 * shuffled, (grouped, shuffled)


def test_auto_batch_size_halves_on_out_of_memory(setup, tmp_path):
    cfg, tok, dsd, base = setup
    model = copy.deepcopy(base)
    real_forward = model.forward

    def forward(*args, **kwargs):
        if kwargs["input_ids"].shape[0] > 4:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")
        return real_forward(*args, **kwargs)

    model.forward = forward
    tc = TrainConfig(batch_size=16, max_steps=2, auto_batch_size=True)
    args = build_args(tc, tmp_path, "cpu", "fp32", 0, evaluate=False, best_metric=None)
    collator = KeepKeys(cls_task.collator({"tokenizer": tok}, cfg), cls_task.FINETUNE_KEYS)
    outcome = train(model, args, dsd["train"], None, collator, tmp_path, auto_batch_size=True, save_steps=100)
    assert outcome.report["auto_batch_size"] == {"settled": 4, "gradient_accumulation_steps": 4,
                                                 "tried": [16, 8, 4]}
    assert outcome.report["effective_batch_size"] == 16


def test_impossible_precision_fails_at_config_time_or_falls_back():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        resolve_precision(TrainConfig(precision="fp16"), "cpu", "projects.classification.finetune")
    assert resolve_precision(TrainConfig(precision="fp16", precision_fallback=True), "cpu", "x") == "fp32"
    assert resolve_precision(TrainConfig(precision="auto"), "cpu", "x") == "fp32"


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this processor has no native bf16")
def test_bf16_on_a_cpu_that_has_it_computes_in_bf16_and_keeps_fp32_weights(setup, tmp_path):
    """precision: bf16 on such a CPU trains under bf16 autocast (the AESLC benchmark relies on it)."""
    import math

    cfg, tok, dsd, base = setup
    model = copy.deepcopy(base)
    seen = []
    model.bert.encoder.layer[0].intermediate.dense.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    tc = TrainConfig(batch_size=8, max_steps=2, precision="bf16")
    assert resolve_precision(tc, "cpu", "projects.classification.finetune") == "bf16"
    args = build_args(tc, tmp_path, "cpu", "bf16", 0, evaluate=False, best_metric=None)
    collator = KeepKeys(cls_task.collator({"tokenizer": tok}, cfg), cls_task.FINETUNE_KEYS)
    out = make_trainer(model, args, dsd["train"], None, collator).train()
    assert seen and set(seen) == {torch.bfloat16}
    assert math.isfinite(out.training_loss)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), base.parameters()))


def test_masked_lm_pretraining_scores_masked_positions_only_with_the_same_loss_and_gradients(setup, tmp_path):
    """The pretraining model applies its vocabulary-wide output layer to the masked positions only;
    loss and gradients equal those of BertForMaskedLM on the same batch, and the saved folder loads
    as BertForMaskedLM with the same weights."""
    from transformers import AutoModelForMaskedLM, BertForMaskedLM, DataCollatorForLanguageModeling

    cfg, tok, dsd, _ = setup
    torch.manual_seed(0)
    ours = cls_task.build_pretrain_model(cfg, {"tokenizer": tok})
    plain = BertForMaskedLM(ours.config)
    plain.load_state_dict(ours.state_dict())
    torch.manual_seed(1)
    batch = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)(
        [{"input_ids": x} for x in dsd["train"][:16]["input_ids"]])
    masked = int((batch["labels"] != -100).sum())
    assert 0 < masked < batch["labels"].numel() // 3

    out_ours = ours(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    out_plain = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    assert out_ours.logits.shape == (masked, len(tok))  # one row per masked position, not per token
    assert torch.allclose(out_ours.loss, out_plain.loss, atol=1e-6)
    out_ours.loss.backward()
    out_plain.loss.backward()
    grads = dict(plain.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, grads[name].grad, atol=1e-6), name

    ours.save_pretrained(tmp_path)
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in ours.state_dict().items())
    without_labels = ours(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert without_labels.shape == (*batch["input_ids"].shape, len(tok))  # inference: every position


def test_finetune_diagnostics_flag_a_classifier_that_answers_the_same_for_every_text(setup, caplog):
    """A classifier whose [CLS] output no longer depends on the input (as after too much MLM on little
    text) gives one label to everything; the finetune report says so and the log tells what to change."""
    import logging

    cfg, tok, dsd, base = setup
    collator = KeepKeys(cls_task.collator({"tokenizer": tok}, cfg), cls_task.FINETUNE_KEYS)
    healthy = cls_task.training_diagnostics(copy.deepcopy(base), dsd, collator, cfg)

    collapsed = copy.deepcopy(base)
    norm = collapsed.bert.encoder.layer[-1].output.LayerNorm
    with torch.no_grad():  # every position's output becomes the same vector
        norm.weight.zero_()
        norm.bias.copy_(torch.linspace(-1, 1, norm.bias.numel()))
    with caplog.at_level(logging.WARNING, logger=cls_task.__name__):
        diag = cls_task.training_diagnostics(collapsed, dsd, collator, cfg)
    assert diag["validation_majority_prediction_share"] == 1.0
    assert diag["validation_cls_spread"] < 1e-6 < healthy["validation_cls_spread"]
    assert "gives one label to 100% of the validation examples" in caplog.text
    assert "pretrain.max_steps" in caplog.text
    assert collapsed.training  # the model goes back to the mode it came in


def test_classifier_prediction_runs_without_autograd(setup):
    """predict (evaluate, compress, serving) must not build autograd graphs: that costs time and memory."""
    cfg, tok, dsd, base = setup
    model = copy.deepcopy(base)
    modes = []
    model.register_forward_hook(lambda m, i, o: modes.append(torch.is_inference_mode_enabled()))
    cls_task.predict(model, tok, ["a good film", "a dull plot"])
    assert modes and all(modes)
