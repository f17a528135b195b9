"""Stage evaluate: every variant compress made (the full model, int8, pruned, student, ONNX Runtime
...) on the test split, with the project's metric modules (loaded by path through the ``evaluate``
library), joined with compress's size and latency measurements into one table.

Writes reports/<project>/evaluate.json (metrics of every variant, DVC metrics),
reports/<project>/variants.json (the variant table, DVC metrics), reports/<project>/test_outputs.json
(each variant's answer per example, for the registry's paired comparison), reports/<project>/predictions.jsonl
(every test example with the full model's prediction and its own score, written row by row; the
demo's Results view reads it, and two versions can be compared example by example),
plots/<project>/evaluate.csv and
plots/<project>/variants.csv (metric against batch-1 latency, DVC plots), and adds test metrics,
the variant table, a figure and a table of sample predictions to the model's MLflow run.

Every score comes with how much it moves by chance (pipelines.metrics.intervals): a 95 % bootstrap
interval per metric and variant (``intervals``), each variant's paired difference from the full
model (``changes``), and the task's trivial baseline scored on the same examples with each variant
compared against it (``baseline``); export never makes champion a model that does not beat it.
"""

from __future__ import annotations

import logging

from pipelines.tracking import runs as tracking
from pipelines.config import Params
from pipelines.core.io import read_json, read_jsonl, write_csv, write_json, write_jsonl
from pipelines.core.paths import ProjectPaths
from pipelines.data.lengths import resolved
from pipelines.tasks import get_task
from pipelines.data.tokenization import load_tokenizers
from pipelines.training.harness import resolve_device
from pipelines.compression.variants import load_variant, manifest as variant_manifest
from pipelines.metrics import intervals

logger = logging.getLogger(__name__)

# Columns of plots/<p>/variants.csv besides the primary metric.
VARIANT_COLUMNS = ["variant", "latency_ms", "latency_p95_ms", "examples_per_second_batch32", "size_bytes",
                   "parameters", "nonzero_parameters", "metric_change"]


def test_records(paths: ProjectPaths, cfg) -> list[dict]:
    records = read_jsonl(paths.splits / "test.jsonl")
    return records[: cfg.evaluate.max_examples] if cfg.evaluate.max_examples > 0 else records


def variant_table(results: dict, compress: dict, primary: str) -> dict[str, dict]:
    """One row per variant: its primary metric and change from the full model, with compress's sizes
    and CPU latencies."""
    measured = compress.get("variants", {})
    full = results["full"]["primary"]
    table = {}
    for name, res in results.items():
        m = measured.get(name, {})
        row = {primary: res["primary"], "metric_change": res["primary"] - full}
        for key in ("size_bytes", "size_gzip_bytes", "parameters", "nonzero_parameters", "speedup_batch1",
                    "speedup_batch1_ci95", "speedup_measurable", "size_ratio", "decoding"):
            if m.get(key) is not None:
                row[key] = m[key]
        if "batch1" in m:
            row["latency_ms"] = m["batch1"]["median_ms"]
            row["latency_p95_ms"] = m["batch1"]["p95_ms"]
            row["examples_per_second_batch32"] = m["batch32"]["examples_per_second"]
        table[name] = row
    return table


def uncertainty(impl, results: dict, records: list[dict], train: list[dict], cfg, primary: str,
                greater_is_better: bool, seed: int) -> dict:
    """Intervals, paired changes from the full model and the baseline comparison (evaluate.json's
    ``intervals``, ``changes`` and ``baseline``); empty when the task has no resampling scorer or
    evaluate.bootstrap_samples is 0."""
    samples, n = cfg.evaluate.bootstrap_samples, len(records)
    scorers = {name: impl.resample_scorer(res, cfg) for name, res in results.items()}
    if samples == 0 or n == 0 or scorers["full"] is None:
        return {}
    def bounds(found: dict) -> dict:  # {"low", "high"}: `dvc metrics show` and `diff` list numbers, not pairs
        return {metric: {"low": lo, "high": hi} for metric, (lo, hi) in found.items()}

    out = {"bootstrap_samples": samples, "confidence": intervals.CONFIDENCE,
           "intervals": {name: bounds(intervals.confidence_intervals(scorer, n, samples, seed))
                         for name, scorer in scorers.items()},
           "changes": {name: intervals.paired_comparison(scorer, scorers["full"], n, primary, samples, seed,
                                                          greater_is_better)
                       for name, scorer in scorers.items() if name != "full"}}
    found = impl.baseline_result(records, train, results["full"], cfg)
    if found is not None:
        name, result = found
        base = impl.resample_scorer(result, cfg)
        out["baseline"] = {
            "name": name, "metrics": result["metrics"],
            "ci95": bounds(intervals.confidence_intervals(base, n, samples, seed)),
            "comparisons": {variant: intervals.paired_comparison(scorer, base, n, primary, samples, seed,
                                                                 greater_is_better)
                            for variant, scorer in scorers.items()}}
        verdict = out["baseline"]["comparisons"]["full"]
        if verdict["verdict"] != "better":
            logger.warning("the full model is not significantly better than the trivial baseline (%s): %s. It will "
                           "not be made champion; train longer, on more data, or with another preset",
                           name, intervals.describe(verdict, "the model", "the baseline"))
    return out


def run(params: Params, project: str) -> dict:
    cfg = resolved(params.project(project), ProjectPaths.of(project).tokenizer)
    task = get_task(cfg.task)
    impl = task.impl()
    paths = ProjectPaths.of(project)
    device = resolve_device(params)
    tokenizers = load_tokenizers(paths.tokenizer)
    records = test_records(paths, cfg)
    manifest = variant_manifest(paths)
    compress = read_json(paths.report("compress"))

    results = {}
    for name, entry in manifest.items():
        model, where = load_variant(entry, paths, impl, tokenizers, cfg, device)
        results[name] = impl.evaluate_model(model, tokenizers, records, cfg, where)
        logger.info("test %s of %s: %.4f", task.primary_metric, name, results[name]["primary"])

    report = {name: res["metrics"] for name, res in results.items()}
    report["examples"] = len(records)
    report["primary_metric"] = task.primary_metric
    for name in results:
        if name != "full":
            report[f"{name}_change"] = results[name]["primary"] - results["full"]["primary"]
    report.update(results["full"].get("report_extra", {}))
    report.update(uncertainty(impl, results, records, read_jsonl(paths.splits / "train.jsonl"), cfg,
                              task.primary_metric, task.greater_is_better(), params.common.seed))
    write_json(paths.report("evaluate"), report)
    outputs = {name: impl.test_outputs(res) for name, res in results.items()}
    if outputs["full"] is not None:  # what each variant answered: export keeps its own with the version
        write_json(paths.report("test_outputs"), {"examples": len(records), "outputs": outputs})
    write_jsonl(paths.predictions, impl.prediction_rows(records, results["full"], cfg))
    rows, columns = impl.plot_rows(results["full"])
    write_csv(paths.plot("evaluate.csv"), rows, columns)

    table = variant_table(results, compress, task.primary_metric)
    for name, row in table.items():  # how sure each figure is (the demo's Results and the summary read them)
        if task.primary_metric in report.get("intervals", {}).get(name, {}):
            found = report["intervals"][name][task.primary_metric]
            row[f"{task.primary_metric}_ci95"] = [found["low"], found["high"]]
        if name in report.get("changes", {}):
            row["metric_change_ci95"] = report["changes"][name]["ci95"]
            row["metric_change_verdict"] = report["changes"][name]["verdict"]
    write_json(paths.report("variants"), {"primary_metric": task.primary_metric,
                                          "greater_is_better": task.greater_is_better(), "examples": len(records),
                                          "variants": table})
    write_csv(paths.plot("variants.csv"), [{"variant": n, **row} for n, row in table.items()],
              VARIANT_COLUMNS + [task.primary_metric])  # last: the column dvc.yaml's plot draws

    run_id = read_json(paths.report("finetune")).get("mlflow_run_id")
    with tracking.run(params, project, run_id=run_id, run_name=f"{project}-finetune"):
        full = results["full"]["metrics"]
        tracking.log_metrics({k: v for k, v in full.items() if "." not in k}, prefix="test/")
        tracking.log_metrics({k: v for k, v in full.items() if "." in k}, prefix="per_class/")  # precision.<label>
        for metric, found in report.get("intervals", {}).get("full", {}).items():
            tracking.log_metrics({f"{metric}_ci95_low": found["low"], f"{metric}_ci95_high": found["high"]},
                                 prefix="test/")
        if "baseline" in report:
            tracking.log_metrics(report["baseline"]["metrics"], prefix="baseline/")
        for name, res in results.items():
            if name != "full":
                tracking.log_metrics(res["metrics"], prefix=f"variant/{name}.")
        for name, row in table.items():
            tracking.log_metrics(row, prefix=f"variant/{name}.")
        tracking.log_dict(report, "evaluate/metrics.json")
        columns = list(dict.fromkeys(k for row in table.values() for k in row))
        tracking.log_table([{"variant": n, **{k: row.get(k) for k in columns}} for n, row in table.items()],
                           "evaluate/variants.json")
        tracking.log_table(results["full"]["samples"], "evaluate/sample_predictions.json")
        fig = impl.figure(results["full"])
        if fig is not None:
            tracking.log_figure(fig, f"evaluate/{impl.FIGURE_NAME}")
    logger.info("test %s: %s", task.primary_metric,
                ", ".join(f"{n} {res['primary']:.4f}" for n, res in results.items()))
    return {name: res["metrics"] for name, res in results.items()} | {"examples": len(records)}
