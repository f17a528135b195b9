"""Translation: wall time of the default run, Multi30k English->German BLEU from scratch, int8 against full.

    python -m benchmarks.run translation [--skip-real]

Targets (issue 3): default run <= 4 minutes on a 2-core CPU machine; Multi30k 2016 test BLEU >= 20
with at most 30 minutes of CPU training; generation throughput of the full and the int8 model.
"""

from __future__ import annotations

import logging

from . import compression_figures
from .common import load_previous, preset, project_params, run_pipeline, save, seq2seq_summary

logger = logging.getLogger(__name__)
METRICS = ("bleu", "chrf")


def main(skip_real: bool = False, skip_default: bool = False) -> dict:
    results = load_previous("translation")
    results["targets"] = {"default_run_seconds": 240, "multi30k_bleu": 20, "multi30k_train_seconds": 1800}
    if not skip_default:
        logger.info("default translation run (builtin data)")
        default = run_pipeline(project_params("translation"), ["translation"])
        results["default_run"] = seq2seq_summary(default, "translation", METRICS)
    if not skip_real:
        logger.info("Multi30k en-de from scratch")
        # The compression chain of the compression benchmark rides along: one training serves both.
        run = run_pipeline(compression_figures.multi30k_params(), ["translation"])
        real = seq2seq_summary(run, "translation", METRICS)
        real["config"] = {"preset": "base", **preset("translation", "base")}
        results["multi30k"] = real
        compression_figures.record("multi30k", run, "translation")
    save("translation", results)
    return results
