"""Compression: what each variant of the SST-2 and Multi30k models buys, measured by the pipeline
itself (reports/<p>/variants.json and compress.json of one `dvc repro`).

    python -m benchmarks.run compression
    BENCH_COMPRESSION_PARTS=sst2 python -m benchmarks.run compression    # one model: sst2 or multi30k
    BENCH_COMPRESSION_QUICK=1 python -m benchmarks.run compression       # tiny builtin data, a few minutes:
                                                                         # checks the plumbing, not the targets

Targets (issue 5), CPU, batch 1 unless said:
- int8 (PyTorch dynamic): Linear weights >= 3x smaller, >= 1.5x faster, <= 1 point lost;
- a student with half the layers (SST-2: 2 of 4; Multi30k: 2 encoder + 1 decoder of 3 + 3), distilled
  from the fine-tuned model: >= 1.8x faster, <= 2 points lost;
- ONNX Runtime (fp32 graph): >= 1.3x faster than PyTorch eager. For Multi30k both decode greedily
  (the ORT decoder graph has no cache), so the comparison is greedy against greedy; the ORT variants'
  BLEU is greedy BLEU and their change is against the full model's beam search.

Points: accuracy x 100 for SST-2, BLEU as is for Multi30k. Latencies are medians over the test
inputs, all variants timed in turns in one process (compress.time_interleaved).
PIPELINES_LATENCY_THREADS=1 gives steadier timings on a machine that other jobs share.

The SST-2 and Multi30k runs are those of the classification and translation benchmarks (their params
carry the chain below), so running either of those fills this file's part too.
"""

from __future__ import annotations

import copy
import logging
import os

from .common import SHARED, load_previous, preset, project_params, run_pipeline, save

logger = logging.getLogger(__name__)

TARGETS = {"int8_linear_weight_ratio": 3.0, "int8_speedup_batch1": 1.5, "int8_points_lost": 1.0,
           "student_speedup_batch1": 1.8, "student_points_lost": 2.0, "ort_speedup_batch1": 1.3}

def sst2_compress() -> dict:
    return preset("classification", "base")["compress"]


def multi30k_compress() -> dict:
    return preset("translation", "base")["compress"]


def sst2_params() -> dict:
    """SST-2 from scratch with the classification preset `base` (its compression chain included)."""
    return project_params("classification", str(SHARED / "classification" / "sst2"), preset="base", register=False)


def multi30k_params() -> dict:
    """Multi30k en-de from scratch with the translation preset `base`."""
    return project_params("translation", str(SHARED / "translation" / "multi30k_en_de"), preset="base",
                          register=False)


def record(part: str, run: dict, project: str) -> dict:
    """Add one model's variant table to results/compression.json. The classification and translation
    benchmarks call this with their SST-2 / Multi30k runs, which carry the whole chain, so one
    training serves both benchmarks."""
    results = load_previous("compression")
    results["targets"] = TARGETS
    config = sst2_compress() if part == "sst2" else multi30k_compress()
    results[part] = {**summarize(run, project), "compress_config": config}
    save("compression", results)
    return results[part]


def quick_params(project: str) -> dict:
    """The tiny test configuration with a 2 + 2 layer teacher and every technique switched on."""
    from tests.tiny import tiny_params

    params = tiny_params([project], size=400)
    block = params["projects"][project]
    block["model"].update(num_layers=2, num_decoder_layers=2)
    compress = copy.deepcopy(sst2_compress() if project == "classification" else multi30k_compress())
    compress["distillation"].update(num_layers=1, num_decoder_layers=1, epochs=1, batch_size=16)
    compress["latency_batches"] = 5
    block["compress"] = compress
    params["tracking"]["register_model"] = False
    return params


def summarize(run: dict, project: str) -> dict:
    """The variant table in points, and each target with whether it was met."""
    rep = run["reports"][project]
    table, primary = rep["variants"]["variants"], rep["variants"]["primary_metric"]
    comp = rep["compress"]
    scale = 100.0 if primary == "accuracy" else 1.0
    variants = {}
    for name, row in table.items():
        variants[name] = {
            primary: row[primary], "change_points": row["metric_change"] * scale,
            "batch1_median_ms": row.get("latency_ms"), "batch1_p95_ms": row.get("latency_p95_ms"),
            "batch32_examples_per_second": row.get("examples_per_second_batch32"),
            "speedup_batch1": row.get("speedup_batch1"), "size_bytes": row.get("size_bytes"),
            "size_gzip_bytes": row.get("size_gzip_bytes"), "parameters": row.get("parameters"),
            "nonzero_parameters": row.get("nonzero_parameters"),
        }
        if row.get("decoding"):
            variants[name]["decoding"] = row["decoding"]
    measured = {}
    if "int8" in table:
        measured.update(int8_linear_weight_ratio=comp["linear_weight_ratio"],
                        int8_speedup_batch1=comp["speedup_batch1"],
                        int8_points_lost=0.0 - variants["int8"]["change_points"])
    if "student" in table:
        measured.update(student_speedup_batch1=variants["student"]["speedup_batch1"],
                        student_points_lost=0.0 - variants["student"]["change_points"])
    if "ort_fp32_speedup_batch1" in comp:
        measured["ort_speedup_batch1"] = comp["ort_fp32_speedup_batch1"]
        measured["ort_int8_speedup_batch1"] = comp["ort_int8_speedup_batch1"]
    met = {k: (v <= TARGETS[k] if k.endswith("points_lost") else v >= TARGETS[k])
           for k, v in measured.items() if k in TARGETS}
    return {"primary_metric": primary, "test_examples": rep["variants"]["examples"],
            "latency_threads": comp.get("latency_threads"), "wall_seconds": round(run["wall_seconds"], 1),
            "variants": variants, "measured": measured, "targets_met": met,
            "ort_baseline_decoding": (comp.get("ort_baseline") or {}).get("decoding", "same as full"),
            "student_train_seconds": (comp["variants"].get("student") or {}).get("train_seconds")}


def main() -> dict:
    results = load_previous("compression")
    results["targets"] = TARGETS
    quick = os.environ.get("BENCH_COMPRESSION_QUICK") == "1"
    parts = os.environ.get("BENCH_COMPRESSION_PARTS", "sst2,multi30k").split(",")
    env = {k: os.environ[k] for k in ("PIPELINES_LATENCY_THREADS",) if k in os.environ}

    def measure(params: dict, project: str) -> dict:
        return summarize(run_pipeline(params, [project], target=f"evaluate@{project}", env_extra=env), project)

    if quick:
        results["quick"] = {}
        for project in ("classification", "translation"):
            logger.info("quick: tiny %s with every technique", project)
            results["quick"][project] = measure(quick_params(project), project)
        save("compression", results)
        return results
    # The real models come from the task benchmarks, whose runs carry the compression chain.
    if "sst2" in parts:
        from . import bench_classification

        bench_classification.main(skip_default=True)
    if "multi30k" in parts:
        from . import bench_translation

        bench_translation.main(skip_default=True)
    return load_previous("compression")
