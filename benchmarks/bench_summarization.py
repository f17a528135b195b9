"""Summarization: wall time of the default run, AESLC subject-line ROUGE from scratch, int8 against full.

    python -m benchmarks.run summarization [--skip-real]

Targets (issue 3): default run <= 4 minutes on a 2-core CPU machine; AESLC test ROUGE-1 >= 20 against
the subject line with at most 30 minutes of CPU training; generation throughput, full and int8.
"""

from __future__ import annotations

import logging

from .common import SHARED, load_previous, preset, project_params, run_pipeline, save, seq2seq_summary

logger = logging.getLogger(__name__)
METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def main(skip_real: bool = False, skip_default: bool = False) -> dict:
    results = load_previous("summarization")
    results["targets"] = {"default_run_seconds": 240, "aeslc_rouge1": 20, "aeslc_train_seconds": 1800}
    if not skip_default:
        logger.info("default summarization run (builtin data)")
        default = run_pipeline(project_params("summarization"), ["summarization"])
        results["default_run"] = seq2seq_summary(default, "summarization", METRICS)
    if not skip_real:
        logger.info("AESLC from scratch, scored against the subject line")
        # The subject line alone is the reference here, as in the published AESLC figures.
        params = project_params("summarization", str(SHARED / "summarization" / "aeslc"), preset="base",
                                overrides={"data": {"references_field": None}}, register=False)
        real = seq2seq_summary(run_pipeline(params, ["summarization"]), "summarization", METRICS)
        real["config"] = {"preset": "base", **preset("summarization", "base")}
        results["aeslc"] = real
    save("summarization", results)
    return results
