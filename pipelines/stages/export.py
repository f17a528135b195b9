"""Stage export: the variant of the model that params choose (``export.variant``: full, int8,
pruned, student, ... or the most accurate one within ``export.latency_budget_ms``), in the format
the served model loads (a transformers folder, or an int8 folder for the int8 variants) with its
tokenizer, an ONNX file checked against PyTorch with onnxruntime, and a new version in the MLflow
registry whose tag ``variant`` says which variant it is.

The new version gets the alias ``candidate``; ``champion`` moves to it only if its primary test
metric is at least the champion's on the same test data: when the champion was scored on other test
data, its model is scored on this test split first, with its own decoding settings (see
registry.register). The export folder holds a model card (README.md) and the profile of the data
(data_profile.json, data_rows.txt.gz); reports/<project>/data_change.json says what changed in the
data since the champion's.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from pipelines.tracking import lineage as data_lineage
from pipelines.tracking import model_card, registry, runs as tracking
from pipelines.compression.quantization import quantize_onnx_int8
from pipelines.config import Params
from pipelines.core.variants import EXPORTABLE
from pipelines.core.errors import PipelineError, TrackingError
from pipelines.core.io import (atomic_dir, atomic_file, content_hash, read_json, read_json_if_present, read_jsonl,
                                write_json)
from pipelines.models.files import QUANT_FILE, load_hf_model, weights_size
from pipelines.core.paths import ProjectPaths
from pipelines.data.lengths import RECORD as LENGTHS_RECORD, resolved
from pipelines.tasks import get_task
from pipelines.data.tokenization import load_tokenizers, save_tokenizers
from pipelines.training.harness import resolve_device
from pipelines.compression.variants import Variant, manifest as variant_manifest
from pipelines.metrics.intervals import describe
from pipelines.stages.evaluate import test_records

logger = logging.getLogger(__name__)

# What the served model needs besides the pipeline's own code (distribution names).
SERVING_PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "pandas", "pydantic", "PyYAML", "numpy")


def serving_requirements() -> list[str]:
    """The served model's requirements, pinned to the versions this export ran with."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in SERVING_PACKAGES:
        try:
            # Without a local build tag (2.13.0+cpu): the serving host picks its own build.
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:  # not installed here: the serving host resolves it
            pins.append(name)
    return pins


def choose_variant(export_cfg, table: dict[str, dict], primary: str, greater_is_better: bool = True) -> tuple[str, str]:
    """The variant to export and why: the one params name, or the best scoring exportable variant (in
    the primary metric's direction) whose batch-1 median latency is within the budget (ties: the faster)."""
    if export_cfg.variant != "best_under_latency":
        if export_cfg.variant not in table:
            raise PipelineError(f"export.variant is {export_cfg.variant!r} but the variant table has only "
                                f"{', '.join(table)}; re-run compress and evaluate")
        return export_cfg.variant, "export.variant"
    budget = export_cfg.latency_budget_ms
    timed = {n: r for n, r in table.items() if n in EXPORTABLE and r.get("latency_ms") is not None}
    fits = {n: r for n, r in timed.items() if r["latency_ms"] <= budget}
    if not fits:
        by_latency = sorted(timed.items(), key=lambda x: x[1]["latency_ms"])
        shown = ", ".join(f"{n} {r['latency_ms']:.2f} ms" for n, r in by_latency)
        raise PipelineError(f"no exportable variant meets export.latency_budget_ms={budget} (batch-1 median on the "
                            f"compress machine: {shown}); raise the budget or add a faster variant in the compress "
                            "block (distillation, pruning, quantize); nothing was exported")
    sign = 1 if greater_is_better else -1
    best = max(fits, key=lambda n: (sign * fits[n][primary], -fits[n]["latency_ms"]))
    return best, (f"best_under_latency: best scoring of {', '.join(sorted(fits))} within {budget} ms "
                  f"({fits[best]['latency_ms']:.2f} ms, {primary} {fits[best][primary]:.4f})")


# The exported variant's answer per test example, kept in the export folder (and so with the version).
OUTPUTS_FILE = "test_outputs.json"


def baseline_gate(evaluation: dict, variant: str) -> str | None:
    """Why the exported variant may not become champion (it is not significantly better than the
    task's trivial baseline on the test examples, evaluate.json's ``baseline``), or None."""
    baseline = evaluation.get("baseline")
    comparison = (baseline or {}).get("comparisons", {}).get(variant)
    if comparison is None or comparison["verdict"] == "better":
        return None
    return (f"not significantly better than the trivial baseline, {baseline['name']}: "
            f"{describe(comparison, variant, 'baseline')}; it stays candidate (train longer, on more data or with "
            "another preset; or adopt it with `nlp-pipelines registry <project> promote <version>`)")


def run(params: Params, project: str) -> dict:
    cfg = resolved(params.project(project), ProjectPaths.of(project).tokenizer)
    task = get_task(cfg.task)
    impl = task.impl()
    paths = ProjectPaths.of(project)
    tokenizers = load_tokenizers(paths.tokenizer)
    records = read_jsonl(paths.splits / "test.jsonl")[:64]
    evaluation = read_json(paths.report("evaluate"))
    finetune = read_json(paths.report("finetune"))
    primary = task.primary_metric
    variants = read_json(paths.report("variants"))["variants"]
    variant, reason = choose_variant(cfg.export, variants, primary, task.greater_is_better())
    test_hash = content_hash(paths.splits / "test.jsonl")
    manifest = variant_manifest(paths)
    entry = manifest[variant]
    metric_value = evaluation[variant][primary]
    settings = cfg.model_dump(mode="json")
    settings["model"]["init"] = "scratch"  # the served model needs no checkpoint folder of the training machine
    with atomic_dir(paths.export) as tmp:
        if entry.kind == "int8":
            # The int8 folder as compress wrote it (load_hf_model reads it); ONNX comes from its float source.
            shutil.copytree(entry.folder(paths), tmp / "hf")
            float_model = load_hf_model(manifest[entry.source].folder(paths))
        else:
            float_model = load_hf_model(entry.folder(paths))
            float_model.save_pretrained(str(tmp / "hf"), safe_serialization=True)
        save_tokenizers(tokenizers, tmp / "hf")
        impl.save_decoding_settings(tmp / "hf", cfg)
        onnx_report = {}
        if cfg.export.onnx:
            float_name = entry.source if entry.kind == "int8" else variant
            onnx_report = onnx_graphs(impl, manifest.get("ort_fp32"), paths.compressed, float_name, tmp, cfg) or \
                {**impl.export_onnx(float_model, tokenizers, records, tmp, cfg), "onnx_reused": False}
            if onnx_report["onnx_max_abs_diff"] > cfg.export.onnx_atol:
                raise PipelineError(
                    f"ONNX output differs from PyTorch by {onnx_report['onnx_max_abs_diff']:.2e}, above "
                    f"projects.{project}.export.onnx_atol={cfg.export.onnx_atol}; nothing was exported"
                )
            if entry.kind == "int8":
                # The ONNX counterpart of an int8 variant: ONNX Runtime's dynamic int8 of the float graph.
                onnx_report["onnx_int8_files"] = []
                for graph in impl.onnx_files(tmp):
                    quantize_onnx_int8(graph, graph.with_suffix(".int8.onnx"))
                    onnx_report["onnx_int8_files"].append(graph.with_suffix(".int8.onnx").name)
        info = {"project": project, "task": task.name, "settings": settings, "primary_metric": primary,
                "variant": variant, "variant_reason": reason, "test_metrics": evaluation[variant],
                "test_data_hash": test_hash,
                "lengths": read_json_if_present(paths.tokenizer / LENGTHS_RECORD) or {},
                "mlflow_run_id": finetune.get("mlflow_run_id"), **tracking.git_commit()}
        write_json(tmp / "export.json", info)
        outputs = read_json_if_present(paths.report("test_outputs"))
        if outputs is not None:  # a later export compares itself with this version example by example
            write_json(tmp / OUTPUTS_FILE, {"test_data_hash": test_hash, "metric": primary,
                                            "outputs": outputs["outputs"][variant]})
        profile = data_lineage.profile(paths.splits, task, tokenizer_trained_here=cfg.model.init == "scratch")
        data_lineage.write_profile(tmp, *profile)
        with atomic_file(tmp / "README.md") as fh:
            fh.write(model_card.render(info, profile[0], variants, read_json(paths.raw / "source.json"),
                                       content_hash(paths.raw)))
    report = {"export_dir": str(paths.export.relative_to(paths.root)), **onnx_report, "variant": variant,
              "variant_reason": reason, "hf_size_bytes": weights_size(paths.export / "hf")}
    gate = baseline_gate(evaluation, variant) if cfg.export.beat_baseline else None
    if gate:
        report["baseline_gate"] = gate
        logger.warning("%s model: %s", project, gate)

    with tempfile.TemporaryDirectory(prefix="champion-") as scratch:
        champions = ChampionExports(Path(scratch))
        champion = None
        if params.tracking.register_model:
            champion = registry.version_info(tracking.registered_name(params, project), registry.CHAMPION)
        change = data_change(cfg, task, paths, profile, champion, champions)
        write_json(paths.report("data_change"), change)
        for flag in change.get("flags", []):
            logger.warning("data changed since the champion: %s", flag)
        if params.tracking.register_model:
            answers: dict = {}
            scorer = champion_scorer(params, project, paths, champions, answers)
            compare = paired_with_champion(params, project, paths, champions, variant, test_hash, answers)
            report.update(register(params, project, paths, finetune.get("mlflow_run_id"), primary, metric_value,
                                   variant, test_hash, score_champion=scorer, data_change_report=change,
                                   gate=gate, compare=compare))
    write_json(paths.report("export"), report)
    return report


class ChampionExports:
    """The export folders of registered versions, downloaded from the artifact store once each."""

    def __init__(self, scratch: Path):
        self.scratch, self.folders = scratch, {}

    def folder(self, model_uri: str) -> Path:
        """The export folder of a version (``models:/<name>/<version>``); ChampionUnloadable when its
        artifacts cannot be had."""
        if model_uri not in self.folders:
            import mlflow

            dest = self.scratch / str(len(self.folders))
            try:
                model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(dest)))
            except Exception as exc:
                raise registry.ChampionUnloadable(f"its artifacts cannot be downloaded: {tracking.redact(exc)}"[:500]) from None
            folder = model_dir / "artifacts" / "export"
            if not (folder / "export.json").exists():
                raise registry.ChampionUnloadable(f"{model_uri} has no export folder with export.json (not a model "
                                                  "this pipeline exported)")
            self.folders[model_uri] = folder
        return self.folders[model_uri]


def champion_scorer(params: Params, project: str, paths: ProjectPaths, champions: ChampionExports,
                    answers: dict | None = None):
    """``score(model_uri)``: a registered version's primary test metric on this export's test split,
    with the metric code of this pipeline and the decoding settings the version was exported with.
    Its answer per example goes to ``answers[model_uri]`` (the paired comparison reads it)."""
    from pipelines.serving.pyfunc import export_settings

    cfg = resolved(params.project(project), ProjectPaths.of(project).tokenizer)
    impl = get_task(cfg.task).impl()
    records = test_records(paths, cfg)  # the examples the new version's metric was computed on

    def score(model_uri: str) -> float:
        folder = champions.folder(model_uri)
        try:
            info, champion_cfg = export_settings(folder)
            if info["task"] != cfg.task:
                raise ValueError(f"it is a {info['task']} model, this project is {cfg.task}")
            device = "cpu" if (folder / "hf" / QUANT_FILE).exists() else resolve_device(params)
            model = load_hf_model(folder / "hf", device)
            tokenizers = load_tokenizers(folder / "hf")
        except Exception as exc:  # deleted files, another format, another task: say which
            raise registry.ChampionUnloadable(f"{type(exc).__name__}: {exc}"[:500]) from None
        result = impl.evaluate_model(model, tokenizers, records, champion_cfg, device)
        logger.info("champion %s scores %s %.4f on this test split (%d examples)", model_uri,
                    get_task(cfg.task).primary_metric, result["primary"], len(records))
        if answers is not None:
            answers[model_uri] = impl.test_outputs(result)
        return float(result["primary"])

    return score


def paired_with_champion(params: Params, project: str, paths: ProjectPaths, champions: ChampionExports,
                         variant: str, test_hash: str, answers: dict):
    """``compare(model_uri, how)``: this export's variant against a registered version on the same
    test examples (pipelines.metrics.intervals.paired_comparison), or None when either side's answers
    per example are not at hand (a version exported before they were kept, intervals turned off).
    ``how`` is how the champion was scored: ``recorded`` reads its answers from its export folder,
    ``rescored`` takes those its re-scoring just gave."""
    from pipelines.metrics.intervals import paired_comparison

    cfg = resolved(params.project(project), ProjectPaths.of(project).tokenizer)
    task = get_task(cfg.task)
    impl = task.impl()
    mine = (read_json_if_present(paths.report("test_outputs")) or {}).get("outputs", {}).get(variant)
    if mine is None or cfg.evaluate.bootstrap_samples == 0:
        return None
    records = test_records(paths, cfg)

    def compare(model_uri: str, how: str) -> dict | None:
        theirs = answers.get(model_uri)
        if theirs is None and how == "recorded":
            try:
                kept = read_json_if_present(champions.folder(model_uri) / OUTPUTS_FILE)
            except registry.ChampionUnloadable:
                kept = None
            if kept and kept.get("test_data_hash") == test_hash:
                theirs = kept["outputs"]
        if theirs is None or len(theirs) != len(mine):
            return None
        return paired_comparison(impl.resample_scorer(impl.result_from_outputs(records, mine, cfg), cfg),
                                 impl.resample_scorer(impl.result_from_outputs(records, theirs, cfg), cfg),
                                 len(records), task.primary_metric, cfg.evaluate.bootstrap_samples, params.common.seed,
                                 task.greater_is_better())

    return compare


def data_change(cfg, task, paths: ProjectPaths, profile: tuple[dict, list[str]], champion: dict | None,
                champions: ChampionExports) -> dict:
    """What changed in the data since the champion's (reports/<project>/data_change.json)."""
    if champion is None:
        return {"champion_version": None, "note": "no champion to compare with", "flags": []}
    base = {"champion_version": champion["version"]}
    try:
        folder = champions.folder(f"models:/{champion['name']}/{champion['version']}")
    except registry.ChampionUnloadable as exc:
        return {**base, "note": f"the champion's export cannot be read: {exc}", "flags": []}
    recorded = data_lineage.read_profile(folder)
    if recorded is None:
        return {**base, "note": "the champion was exported without a data profile", "flags": []}
    tokenizer = None
    try:
        tokenizer = load_tokenizers(folder / "hf")["tokenizer"]
    except Exception as exc:
        logger.warning("cannot load the champion's tokenizer to check the new text: %s", exc)
    old_keys = recorded[1]
    new_texts = [r[task.input_field] for split in data_lineage.SPLITS
                 for r in read_jsonl(paths.splits / f"{split}.jsonl")
                 if data_lineage.row_key(r, task) not in old_keys]
    return {**base, **data_lineage.compare(recorded, profile, new_texts, tokenizer, cfg.export.data_change)}


def onnx_graphs(impl, ort_entry: Variant | None, compressed: Path, float_name: str, dest: Path, cfg) -> dict | None:
    """The ONNX graphs of the full model as compress exported them, copied into ``dest`` with their
    check, or None when there are none to take (no ORT variants, another float model, another opset).
    compress exported the same finetuned model with the same settings and checked it against PyTorch
    on the same first test examples, so exporting again would write the same graph (seconds to minutes)."""
    if float_name != "full" or ort_entry is None or ort_entry.check is None:
        return None
    if ort_entry.onnx_opset != cfg.export.onnx_opset:
        return None
    for graph in impl.onnx_files(compressed / ort_entry.path):
        shutil.copy2(graph, dest / graph.name)
    return {**ort_entry.check, "onnx_reused": True}


def register(params: Params, project: str, paths: ProjectPaths, run_id: str | None, primary: str,
             value: float, variant: str, test_hash: str, score_champion=None,
             data_change_report: dict | None = None, gate: str | None = None, compare=None) -> dict:
    """Log the served model and register it; a failed update leaves the champion as it was. ``gate``:
    why this version may not become champion, whatever the champion's score (baseline_gate)."""
    from pipelines.serving.pyfunc import MODEL_CODE, model_signature

    cfg = resolved(params.project(project), ProjectPaths.of(project).tokenizer)
    task = get_task(cfg.task)
    # A request the model answers, for the MLflow UI and the served model's example: a test input.
    with open(paths.splits / "test.jsonl", encoding="utf-8") as fh:
        first = json.loads(next(line for line in fh if line.strip()))
    input_example = {task.input_field: [first[task.input_field][:500]]}
    description = (f"{project} ({cfg.task}), init={cfg.model.init}, test {primary}={value:.4f} on "
                   f"test data {test_hash[:12]}; variant: {variant}; commit {tracking.git_commit().get('git.commit')}")
    try:
        if run_id is None:
            raise TrackingError("reports/<project>/finetune.json has no mlflow_run_id; re-run finetune")
        if data_change_report is not None:
            with tracking.run(params, project, run_id=run_id):
                tracking.log_dict(data_change_report, "export/data_change.json")
                rows = data_change_report.get("rows", {})
                tracking.log_metrics({k: rows[k] for k in ("added", "removed", "changed_share") if k in rows},
                                     prefix="data_change/")
                tracking.set_tags({"data_change.flags": len(data_change_report.get("flags", []))})
        result = registry.register(
            # Logged from code, not pickled: loading a version runs serving/model_code.py and the package
            # logged beside it (code_paths), and unpickles nothing.
            params, project, run_id, python_model=str(MODEL_CODE), signature=model_signature(cfg.task, cfg),
            input_example=input_example,
            artifacts={"export": str(paths.export)}, code_paths=[str(Path(__file__).resolve().parents[1])],
            pip_requirements=serving_requirements(),
            metric_name=primary, metric_value=value, test_data_hash=test_hash, description=description,
            version_tags={"variant": variant, "project": project, "task": cfg.task,
                          **data_lineage.lineage(params, project, paths)},
            score_champion=score_champion, compare=compare, promote=cfg.export.promote,
            unloadable_champion=cfg.export.unloadable_champion,
            greater_is_better=task.greater_is_better(),
            production=(False, gate) if gate else registry.production_run(paths.root),
        )
    except TrackingError:
        raise
    except Exception as exc:
        if params.tracking.registry_required:
            raise TrackingError(f"registering the {project} model at {tracking.display_uri()} failed "
                                f"({type(exc).__name__}: {tracking.redact(exc)}); the champion alias was not "
                                "changed") from exc
        logger.warning("registry update failed (%s); files are exported, champion unchanged", tracking.redact(exc))
        return {"registered": False, "registry_error": tracking.redact(exc)}
    return {"registered": True, **result}
