"""Training speed and memory options (issue 7), each comparison measured in one run.

    python -m benchmarks.run training

1. The pipeline's Trainer against a plain PyTorch loop: same model, data, batch, optimizer and
   schedule; examples per second (target: at least 0.95 of the plain loop).
2. Length-grouped batches against random batches on Multi30k: padding tokens per epoch and
   training throughput (target: at least 1.3x the throughput).
3. Peak memory with gradient checkpointing against without, at the same batch (target: at least
   30 % lower). Each setting runs in its own process, since peak resident memory never goes down.
4. On a CUDA machine, bf16 against fp32 throughput and CUDA peak memory.

The model is the translation project's encoder-decoder (BART-style, from ``pipelines.tasks.seq2seq.model``)
at the size of the Multi30k benchmark, trained on the first examples of Multi30k.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import SHARED, save

logger = logging.getLogger(__name__)

N_TRAIN = 4096
BATCH = 32
MODEL = {"hidden_size": 256, "num_layers": 3, "num_decoder_layers": 3, "num_heads": 4, "intermediate_size": 1024,
         "dropout": 0.1}


def _setup(max_length: int = 64, n: int = N_TRAIN):
    """Tokenizer, encoded Multi30k rows and a fresh model, from the pipeline's own task code."""
    import torch

    from pipelines.tasks.translation import TranslationProject
    from pipelines.tasks.seq2seq import model as seq2seq

    cfg = TranslationProject.model_validate({
        "model": MODEL,
        "tokenizer": {"type": "bpe", "vocab_size": 8000, "max_length": max_length, "max_target_length": max_length,
                      "shared_vocab": True, "lowercase": False},
    })
    rows = [json.loads(x) for x in (SHARED / "translation/multi30k_en_de/train.jsonl").read_text().splitlines()[:n]]
    if max_length > 64:
        # Longer sequences for the memory comparison: activations then dominate the model's weights.
        rows = [{"source": " ".join(r["source"] for r in rows[i:i + 6]),
                 "target": " ".join(r["target"] for r in rows[i:i + 6])} for i in range(0, len(rows), 6)]
    splits = {"train": rows, "validation": rows[:64]}
    toks = seq2seq.build_tokenizers(splits, cfg)
    dsd = seq2seq.encode(splits, toks, cfg)
    torch.manual_seed(0)
    model = seq2seq.build_pretrain_model(cfg, toks)
    return cfg, toks, dsd, model


def _collator(cfg, toks, model):
    from pipelines.tasks.seq2seq import model as seq2seq
    from pipelines.training.harness import KeepKeys

    return KeepKeys(seq2seq.collator(toks, cfg, model), seq2seq.FINETUNE_KEYS)


def _pipeline_trainer(cfg, toks, dsd, model, steps, *, group=False, checkpointing=False, precision="fp32",
                      device="cpu"):
    from pipelines.config import TrainConfig
    from pipelines.tasks.seq2seq import model as seq2seq
    from pipelines.training.harness import build_args, make_trainer

    tc = TrainConfig(batch_size=BATCH, max_steps=steps, learning_rate=5e-4, warmup_ratio=0.1, logging_steps=10_000,
                     group_by_length=group, gradient_checkpointing=checkpointing)
    args = build_args(tc, Path(tempfile.mkdtemp(prefix="bench-train-")), device, precision, 0, evaluate=False,
                      best_metric=None, seq2seq=True)
    args.save_strategy = "no"  # the plain loop saves nothing either
    args.disable_tqdm = True
    return make_trainer(model, args, dsd["train"], None, _collator(cfg, toks, model),
                        trainer_cls=seq2seq.trainer_class())


def trainer_throughput(cfg, toks, dsd, model, steps: int, **kw) -> dict:
    trainer = _pipeline_trainer(cfg, toks, dsd, model, steps, **kw)
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    return {"steps": steps, "seconds": wall, "examples_per_second": steps * BATCH / wall}


def plain_loop_throughput(cfg, toks, dsd, model, steps: int) -> dict:
    """What a user would write by hand: shuffled DataLoader, AdamW, linear warm-up/decay, clipping."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    loader = torch.utils.data.DataLoader(dsd["train"], batch_size=BATCH, shuffle=True,
                                         collate_fn=_collator(cfg, toks, model),
                                         generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
    model.train()
    done = 0
    t0 = time.perf_counter()
    while done < steps:
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            done += 1
            if done == steps:
                break
    wall = time.perf_counter() - t0
    return {"steps": steps, "seconds": wall, "examples_per_second": steps * BATCH / wall}


def padding_tokens(cfg, toks, dsd, model, group: bool) -> dict:
    """Padding and real tokens over one epoch of the Trainer's own batches (inputs and labels)."""
    trainer = _pipeline_trainer(cfg, toks, dsd, model, 1, group=group)
    pads = real = 0
    for batch in trainer.get_train_dataloader():
        pads += int((batch["attention_mask"] == 0).sum()) + int((batch["labels"] == -100).sum())
        real += int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())
    return {"padding_tokens": pads, "real_tokens": real, "padding_fraction": pads / (pads + real)}


def compare_throughput(steps: int = 60) -> dict:
    import copy

    cfg, toks, dsd, model = _setup()
    out = {}
    # Alternate the order (plain, trainer, trainer, plain) so drift on a shared machine cancels.
    runs = {"plain": [], "trainer": []}
    for name in ("plain", "trainer", "trainer", "plain"):
        m = copy.deepcopy(model)
        fn = plain_loop_throughput if name == "plain" else trainer_throughput
        runs[name].append(fn(cfg, toks, dsd, m, steps)["examples_per_second"])
    out["plain_loop_examples_per_second"] = sum(runs["plain"]) / 2
    out["trainer_examples_per_second"] = sum(runs["trainer"]) / 2
    out["trainer_over_plain"] = out["trainer_examples_per_second"] / out["plain_loop_examples_per_second"]

    grouping = {}
    for group in (False, True):
        key = "grouped" if group else "random"
        grouping[key] = padding_tokens(cfg, toks, dsd, model, group)
    speeds = {"random": [], "grouped": []}
    for group in (False, True, True, False):
        key = "grouped" if group else "random"
        speeds[key].append(trainer_throughput(cfg, toks, dsd, copy.deepcopy(model), steps,
                                              group=group)["examples_per_second"])
    for key in speeds:
        grouping[key]["examples_per_second"] = sum(speeds[key]) / 2
    grouping["throughput_ratio"] = grouping["grouped"]["examples_per_second"] / grouping["random"]["examples_per_second"]
    grouping["padding_ratio"] = grouping["grouped"]["padding_tokens"] / max(1, grouping["random"]["padding_tokens"])
    out["length_grouping"] = grouping
    return out


def _memory_worker(checkpointing: bool, steps: int = 6) -> dict:
    """Run in a fresh process: resident memory before training and at its peak."""
    from pipelines.training.harness import peak_rss_mb

    cfg, toks, dsd, model = _setup(max_length=256, n=6 * 512)
    trainer = _pipeline_trainer(cfg, toks, dsd, model, steps, checkpointing=checkpointing)
    batch = next(iter(trainer.get_train_dataloader()))
    base = peak_rss_mb()
    t0 = time.perf_counter()
    trainer.train()
    return {"rss_before_training_mb": base, "peak_rss_mb": peak_rss_mb(),
            "peak_above_start_mb": peak_rss_mb() - base, "seconds": time.perf_counter() - t0,
            "tokens_per_batch": int(batch["attention_mask"].sum() + (batch["labels"] != -100).sum())}


def compare_memory() -> dict:
    out = {}
    for ckpt in (False, True):
        proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_training", "memory", str(int(ckpt))],
                              capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        out["checkpointing" if ckpt else "plain"] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["peak_above_start_ratio"] = out["checkpointing"]["peak_above_start_mb"] / out["plain"]["peak_above_start_mb"]
    out["peak_rss_ratio"] = out["checkpointing"]["peak_rss_mb"] / out["plain"]["peak_rss_mb"]
    out["memory_saved_fraction"] = 1 - out["peak_above_start_ratio"]
    return out


def compare_precision_cuda(steps: int = 60) -> dict | None:
    import copy

    import torch

    if not torch.cuda.is_available():
        return None
    cfg, toks, dsd, model = _setup()
    out = {}
    for precision in ("fp32", "bf16"):
        torch.cuda.reset_peak_memory_stats()
        m = copy.deepcopy(model).cuda()
        res = trainer_throughput(cfg, toks, dsd, m, steps, precision=precision, device="cuda")
        res["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out[precision] = res
    out["bf16_speedup"] = out["bf16"]["examples_per_second"] / out["fp32"]["examples_per_second"]
    return out


def main() -> dict:
    import torch

    torch.manual_seed(0)
    results = {"setup": {"model": MODEL, "batch_size": BATCH, "train_examples": N_TRAIN, "device": "cpu"},
               "targets": {"trainer_over_plain": 0.95, "length_grouping_throughput_ratio": 1.3,
                           "checkpointing_memory_saved_fraction": 0.30}}
    logger.info("trainer against a plain loop, grouped against random batches")
    results.update(compare_throughput())
    logger.info("peak memory with and without gradient checkpointing")
    results["gradient_checkpointing"] = compare_memory()
    cuda = compare_precision_cuda()
    if cuda:
        results["cuda_bf16_vs_fp32"] = cuda
    save("training", results)
    return results


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "memory":
    import logging as _logging

    _logging.disable(_logging.WARNING)
    print(json.dumps(_memory_worker(bool(int(sys.argv[2])))))
