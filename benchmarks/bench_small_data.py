"""Small data: the classification `base` preset on a few hundred SST-2 sentences, with and without
its floor on optimizer steps (`finetune.min_steps`).

    python -m benchmarks.run small_data

The training split is a seeded sample of SST-2's train file; validation and test are SST-2's own
(872 and 1,821 sentences), so the scores are not those of a few dozen held-out rows. Compression
is cut to int8 of the full model, which is not what is measured here.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
from pathlib import Path

from .common import SHARED, load_previous, project_params, run_pipeline, save

logger = logging.getLogger(__name__)

SIZES = (300,)
FLOORS = (0, 600)
LEAN_COMPRESS = {"quantize": ["full"], "onnx_runtime": False, "pruning": {"heads": 0, "ffn_fraction": 0.0,
                                                                          "recovery_epochs": 0},
                 "distillation": {"enabled": False}}


def sample(size: int, folder: Path, seed: int = 0) -> Path:
    sst2 = SHARED / "classification" / "sst2"
    rows = (sst2 / "train.jsonl").read_text().splitlines()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("\n".join(random.Random(seed).sample(rows, size)) + "\n")
    for split in ("validation", "test"):
        (folder / f"{split}.jsonl").write_text((sst2 / f"{split}.jsonl").read_text())
    return folder


def main(skip_real: bool = False, skip_default: bool = False) -> dict:
    results = load_previous("small_data")
    for size in SIZES:
        data = sample(size, Path(tempfile.mkdtemp(prefix="sst2-small-")) / f"sst2_{size}")
        for floor in FLOORS:
            logger.info("SST-2, %d training rows, finetune.min_steps %d", size, floor)
            overrides = {"finetune": {"min_steps": floor}, "compress": LEAN_COMPRESS}
            params = project_params("classification", str(data), preset="base", overrides=overrides, register=False)
            reports = run_pipeline(params, ["classification"], "evaluate@classification")["reports"]["classification"]
            fine = reports["finetune"]
            results.setdefault(f"sst2_{size}", {})[f"min_steps_{floor}"] = {
                "test_accuracy": reports["evaluate"]["full"]["accuracy"],
                "epochs_trained": fine["epochs"], "steps": fine["global_steps"],
                "epochs_derived": json.loads(json.dumps(fine.get("epochs_derived"))),
                "train_seconds": round(fine["train_seconds"], 1)}
            save("small_data", results)
    return results
