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

from . import bench_classification, bench_translation
from .common import load_previous, preset, project_params, run_pipeline, save, seconds_sized
from .compression_figures import TARGETS, summarize

logger = logging.getLogger(__name__)


def quick_params(project: str) -> dict:
    """The `demo` preset sized to run in seconds, with a 2 + 2 layer teacher and the compression
    chain of the `base` preset (every technique), its student distilled for one epoch."""
    overrides = seconds_sized(project, size=400)
    overrides["model"].update(num_layers=2, num_decoder_layers=2)
    compress = copy.deepcopy(preset(project, "base")["compress"])
    compress["distillation"].update(num_layers=1, num_decoder_layers=1, epochs=1, batch_size=16)
    compress["latency_batches"] = 5
    overrides["compress"] = compress
    return project_params(project, overrides=overrides, register=False)


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
        bench_classification.main(skip_default=True)
    if "multi30k" in parts:
        bench_translation.main(skip_default=True)
    return load_previous("compression")
