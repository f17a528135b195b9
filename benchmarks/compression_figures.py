"""The compression benchmark's figures of one run: the targets, the SST-2 and Multi30k
configurations whose runs carry the compression chain, and the variant table of such a run.

The classification and translation benchmarks train those models and record the table here
(results/compression.json), so that one training serves both; bench_compression runs them.
"""

from __future__ import annotations

from .common import SHARED, load_previous, preset, project_params, save

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
