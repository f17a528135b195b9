"""Classification: wall time of the default run, SST-2 accuracy from scratch, int8 against full.

    python -m benchmarks.run classification [--skip-real] [--skip-default]

Targets (issue 2): default run <= 3 minutes on a 2-core CPU machine; SST-2 test accuracy >= 0.80
with at most 15 minutes of CPU training (pretraining + fine-tuning), from scratch.
"""

from __future__ import annotations

import logging
import os

from . import bench_compression
from .common import load_previous, project_params, run_pipeline, save

logger = logging.getLogger(__name__)

# A larger model than the default, sized so pretraining + fine-tuning fit in 15 CPU minutes: the shared
# SST-2 has 6,920 training sentences. A word-level vocabulary: with min_frequency 1 and room for 30,000
# entries WordPiece keeps every training word whole (20,892 entries). Probes with 8,000 pieces stayed
# near 0.78 whatever the pooling, regularisation or pretraining; whole words gave 0.80 (README).
# 384 wide with a 4x feed-forward (BERT's proportions): at 256 / 512 the Linear layers were too small a
# share of a batch-1 call for int8 to pay (1.30x); at 384 / 1536 they dominate it (README).
# Five MLM steps, i.e. practically none: one MLM epoch over 6,908 sentences leaves the [CLS] output
# nearly the same for every input (standard deviation across sentences 0.0006, against 0.022 after five
# steps), and the 384-wide classifier then stayed at chance (0.509 validation after an epoch at 1e-4,
# 5e-5, 3e-4 or 1e-3); after five steps a probe reached 0.739, then 0.775.
SST2_OVERRIDES = {
    "tokenizer": {"type": "wordpiece", "vocab_size": 30000, "min_frequency": 1, "lowercase": True,
                  "max_length": 64},
    "model": {"hidden_size": 384, "num_layers": 4, "num_heads": 6, "intermediate_size": 1536, "dropout": 0.1},
    "pretrain": {"epochs": 1, "max_steps": 5, "batch_size": 64, "learning_rate": 0.0007, "save_steps": 500},
    "finetune": {"epochs": 4, "batch_size": 32, "learning_rate": 0.0003, "early_stopping_patience": 2,
                 "save_steps": 500},
}

# Training on one thread: CPU results then repeat bit for bit on a machine (with more threads the
# order of float sums varies, and so does the epoch that validation picks). Latency is still measured
# with every core, as before.
SST2_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PIPELINES_LATENCY_THREADS": str(os.cpu_count())}


def summarize(run: dict) -> dict:
    rep = run["reports"]["classification"]
    return {
        "wall_seconds": round(run["wall_seconds"], 1),
        "train_seconds": round(rep["pretrain"].get("train_seconds", 0) + rep["finetune"]["train_seconds"], 1),
        "test_accuracy": rep["evaluate"]["full"]["accuracy"],
        "test_macro_f1": rep["evaluate"]["full"]["macro_f1"],
        "int8_test_accuracy": rep["evaluate"]["int8"]["accuracy"],
        "int8_accuracy_change": rep["evaluate"]["int8_change"],
        "fp32_size_bytes": rep["compress"]["fp32"]["size_bytes"],
        "int8_size_bytes": rep["compress"]["int8"]["size_bytes"],
        "size_ratio": rep["compress"]["size_ratio"],
        "linear_weight_ratio": rep["compress"]["linear_weight_ratio"],
        "fp32_batch1_median_ms": rep["compress"]["fp32"]["batch1"]["median_ms"],
        "int8_batch1_median_ms": rep["compress"]["int8"]["batch1"]["median_ms"],
        "speedup_batch1": rep["compress"]["speedup_batch1"],
        "speedup_batch32": rep["compress"]["speedup_batch32"],
        "test_examples": rep["evaluate"]["examples"],
    }


def main(skip_real: bool = False, skip_default: bool = False) -> dict:
    results = load_previous("classification")
    results["targets"] = {"default_run_seconds": 180, "sst2_accuracy": 0.80, "sst2_train_seconds": 900}
    if not skip_default:
        logger.info("default classification run (builtin data)")
        results["default_run"] = summarize(run_pipeline(project_params("classification"), ["classification"]))
    if not skip_real:
        logger.info("SST-2 from scratch")
        # The compression chain of the compression benchmark rides along: one training serves both.
        run = run_pipeline(bench_compression.sst2_params(), ["classification"], env_extra=SST2_ENV)
        sst2 = summarize(run)
        sst2["config"] = SST2_OVERRIDES
        results["sst2"] = sst2
        bench_compression.record("sst2", run, "classification")
    save("classification", results)
    return results
