"""Stage compress: the variants of the fine-tuned model that the compress block asks for, each
measured on the CPU with the test split's inputs: size on disk, parameters (and how many are not
zero), latency at batch 1 (median, p95) and throughput at batch 32. The task metric of every
variant is measured by evaluate, which writes the table (reports/<p>/variants.json).

Variants, chained from the fine-tuned model (``full``):

- ``pruned``: attention heads and feed-forward neurons removed (structured; the model gets smaller),
  then global magnitude pruning to ``pruning.sparsity`` (the zeros are kept), optionally healed by
  a few epochs of distillation from ``full``;
- ``student``: a shallower / narrower model distilled from ``full``;
- ``int8`` / ``pruned_int8`` / ``student_int8``: dynamic int8 quantization of the float variants
  listed in ``quantize``;
- ``ort_fp32`` / ``ort_int8``: the full model's ONNX graph under ONNX Runtime and ORT's own dynamic
  int8 quantization of it (seq2seq: two graphs and greedy decoding, compared with PyTorch greedy).

Distillation (the student, the pruned variant's recovery) is a training like fine-tuning: mixed
precision, checkpoints in models/<p>/compress-checkpoints/ that a re-run after an interruption
resumes, and curves in the model's MLflow run (``distillation/<variant>/...``).

Writes models/<p>/compressed/<variant>/ (and variants.json, what evaluate and export load) and
reports/<p>/compress.json (the measurements; the fp32 / int8 keys of earlier versions are kept).
"""

from __future__ import annotations

import copy
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pipelines.tracking import runs as tracking
from pipelines.compression.distillation import distill
from pipelines.compression.measurement import (count_nonzero, count_parameters, gzip_size, latency_threads, linear_weight_bytes,
                                                measure_latency, speedup_interval)
from pipelines.compression.pruning import (block_sparsity, make_pruning_permanent, prune_ffn, prune_heads, prune_magnitude)
from pipelines.compression.quantization import quantize_onnx_int8
from pipelines.config import Params
from pipelines.core.variants import INT8_OF
from pipelines.core.errors import ConfigError
from pipelines.core.io import atomic_dir, content_hash, read_json, read_jsonl, write_json
from pipelines.models.files import load_hf_model, quantize_dynamic_int8, save_quantized, weights_size
from pipelines.core.paths import ProjectPaths
from pipelines.data.lengths import resolved
from pipelines.tasks import get_task
from pipelines.data.tokenization import load_tokenizers
from pipelines.training.harness import (KeepKeys, fingerprint, prepare_checkpoint_dir, resolve_device, resolve_precision, resume_settings)
from pipelines.compression.variants import Variant, write_manifest

logger = logging.getLogger(__name__)


@dataclass
class Distiller:
    """How compress trains by distillation: where, in which precision, with which checkpoints and
    curves. ``train_data`` is only read when a variant needs it."""

    paths: ProjectPaths
    seed: int
    device: str = "cpu"
    precision: str = "fp32"
    inputs: tuple = ()  # what the checkpoints were made from: a change starts them afresh
    log_curves: bool = False

    def train_data(self):
        import datasets

        return datasets.load_from_disk(str(self.paths.encoded))["train"]

    def __call__(self, variant: str, student, teacher, collator, settings, epochs: float | None = None,
                 **extra_inputs) -> dict:
        ckpt = self.paths.compress_checkpoints / variant
        prepare_checkpoint_dir(ckpt, fingerprint("distill", variant, resume_settings(settings), epochs, self.seed,
                                                 self.precision, self.inputs, extra_inputs))
        callbacks = [tracking.trainer_callback(group=f"distillation/{variant}")] if self.log_curves else []
        return distill(student, teacher, self.train_data(), collator, settings, ckpt, seed=self.seed,
                       device=self.device, precision=self.precision, epochs=epochs, callbacks=callbacks)


@dataclass
class Made:
    """What compress made: the models (float and int8), their manifest entries, and what each step
    reported about them."""

    models: dict[str, torch.nn.Module] = field(default_factory=dict)
    manifest: dict[str, Variant] = field(default_factory=dict)
    details: dict[str, dict] = field(default_factory=dict)


def make_pruned(teacher, cfg, impl, tokenizers, distiller: Distiller):
    """The pruned variant: structured first (heads, feed-forward neurons), then unstructured, then
    optional recovery by distillation from the teacher with the masks active, so the zeros stay zeros."""
    pr = cfg.compress.pruning
    model = copy.deepcopy(teacher).cpu()
    info: dict = {"heads_removed_per_module": pr.heads, "ffn_fraction": pr.ffn_fraction, "sparsity": pr.sparsity}
    if pr.heads:
        try:
            info["removed_heads"] = prune_heads(model, pr.heads)
        except ValueError as exc:
            raise ConfigError(f"compress.pruning.heads={pr.heads}: {exc}") from None
    if pr.ffn_fraction:
        info["ffn_widths"] = prune_ffn(model, pr.ffn_fraction)
    masked = prune_magnitude(model, pr.sparsity)
    if pr.recovery_epochs:
        collator = KeepKeys(impl.collator(tokenizers, cfg, model), impl.FINETUNE_KEYS)
        info["recovery"] = distiller("pruned", model, teacher, collator, cfg.compress.distillation,
                                     epochs=pr.recovery_epochs, pruning=pr.model_dump())
        model.cpu()
        teacher.cpu()
    make_pruning_permanent(masked)
    info["block_sparsity"] = block_sparsity(model)
    return model.eval(), info


def make_student(teacher, cfg, impl, tokenizers, distiller: Distiller):
    """The student variant: built from the teacher's layers where shapes match, then distilled."""
    settings = cfg.compress.distillation
    torch.manual_seed(distiller.seed)
    student, init = impl.build_student(teacher, settings)
    collator = KeepKeys(impl.collator(tokenizers, cfg, student), impl.FINETUNE_KEYS)
    info = {"init": init, **distiller("student", student, teacher, collator, settings)}
    teacher.cpu()
    return student.cpu().eval(), info


def make_float_variants(made: Made, teacher, cfg, impl, tokenizers, distiller: Distiller, folder: Path) -> None:
    """pruned and student, each saved as a transformers folder."""
    comp = cfg.compress
    for name, wanted, make in (("pruned", comp.pruning.enabled, make_pruned),
                               ("student", comp.distillation.enabled, make_student)):
        if wanted:
            made.models[name], made.details[name] = make(teacher, cfg, impl, tokenizers, distiller)
            made.models[name].save_pretrained(str(folder / name), safe_serialization=True)
            made.manifest[name] = Variant(kind="hf", path=name, source="full")


def make_int8_variants(made: Made, comp, folder: Path) -> None:
    """A dynamic int8 copy of each float variant listed in ``quantize`` (one switched off has none)."""
    if comp.quantization == "none":
        return
    for base in (v for v in comp.quantize if v in made.models):
        name = INT8_OF[base]
        made.models[name] = quantize_dynamic_int8(made.models[base])
        made.details[name] = {"quantized_modules": len(save_quantized(made.models[name], folder / name)["modules"])}
        made.manifest[name] = Variant(kind="int8", path=name, source=base)


def make_onnx_variants(made: Made, teacher, cfg, impl, tokenizers, test_records: list[dict], folder: Path) -> None:
    """ort_fp32 (the full model's graph, checked against PyTorch) and ort_int8 (ORT's int8 of it)."""
    (folder / "ort_fp32").mkdir()
    (folder / "ort_int8").mkdir()
    check = impl.export_onnx(teacher, tokenizers, test_records[:32], folder / "ort_fp32", cfg)
    for graph in impl.onnx_files(folder / "ort_fp32"):
        quantize_onnx_int8(graph, folder / "ort_int8" / graph.name)
    checked = {k: v for k, v in check.items() if k.startswith("onnx_")}
    for name in ("ort_fp32", "ort_int8"):
        teacher.config.save_pretrained(str(folder / name))
        if getattr(teacher, "generation_config", None) is not None:
            teacher.generation_config.save_pretrained(str(folder / name))
        # export takes the fp32 graph and its check when it exports the full model (see export.onnx_graphs)
        made.manifest[name] = Variant(kind="onnx", path=name, source="full", decoding=impl.ORT_DECODING,
                                      onnx_opset=cfg.export.onnx_opset, check=checked if name == "ort_fp32" else None)
    made.details["ort_fp32"] = checked


def describe(made: Made, paths: ProjectPaths, impl, tokenizers, cfg) -> tuple[dict[str, dict], dict]:
    """Each variant's size and parameter counts, and the variants as models to time."""
    variants: dict[str, dict] = {}
    runnable = {}
    full_params = count_parameters(made.models["full"])
    for name, entry in made.manifest.items():
        folder = entry.folder(paths)
        if entry.kind == "onnx":
            runnable[name] = impl.ort_model(folder, tokenizers, cfg)
            row = {"parameters": full_params, "nonzero_parameters": None, "linear_weight_bytes": None}
        else:
            runnable[name] = made.models[name].cpu().eval()
            row = {"parameters": count_parameters(runnable[name]), "nonzero_parameters": count_nonzero(runnable[name]),
                   "linear_weight_bytes": linear_weight_bytes(runnable[name])}
        variants[name] = {"kind": entry.kind, "source": entry.source, "size_bytes": weights_size(folder),
                          "size_gzip_bytes": gzip_size(folder), **row, **made.details.get(name, {})}
        if entry.decoding:
            variants[name]["decoding"] = entry.decoding
    return variants, runnable


def time_variants(variants: dict[str, dict], runnable: dict, teacher, impl, tokenizers, cfg, texts: list[str]) -> dict:
    """Latency of every variant, taking turns; seq2seq ORT variants decode greedily, so PyTorch is
    also timed decoding greedily (``ort_baseline``), for comparison."""
    comp = cfg.compress
    calls = {name: _predictor(impl, m, tokenizers, cfg) for name, m in runnable.items()}
    ort_cfg = impl.ort_latency_cfg(cfg)
    if comp.onnx_runtime and ort_cfg is not cfg:
        calls["ort_baseline"] = _predictor(impl, teacher, tokenizers, ort_cfg)
    timings = measure_latency(calls, texts, comp.latency_batches)
    for name in variants:
        variants[name].update(timings[name])
        logger.info("%s: %.1f KB, batch 1 median %.2f ms", name, variants[name]["size_bytes"] / 1024,
                    variants[name]["batch1"]["median_ms"])
    return timings


def build_report(comp, variants: dict[str, dict], timings: dict, impl) -> dict:
    """compress.json: every variant's row with its speed-up and size ratio against full (ORT variants
    against PyTorch decoding the same way), and the keys compress.json has always had."""
    report = legacy_keys(comp.quantization, variants)
    report["variants"] = variants
    report["latency_threads"] = latency_threads() or torch.get_num_threads()
    report["latency_texts"] = "test split inputs"
    if comp.onnx_runtime:
        base = variants["full"]
        if "ort_baseline" in timings:
            base = {"variant": "full", "decoding": impl.ORT_DECODING, **timings["ort_baseline"]}
            report["ort_baseline"] = base
        for name in ("ort_fp32", "ort_int8"):
            report[f"{name}_speedup_batch1"] = base["batch1"]["median_ms"] / variants[name]["batch1"]["median_ms"]
    for name, row in variants.items():
        base = report.get("ort_baseline", variants["full"]) if row["kind"] == "onnx" else variants["full"]
        row["speedup_batch1"] = base["batch1"]["median_ms"] / row["batch1"]["median_ms"]
        row["size_ratio"] = variants["full"]["size_bytes"] / row["size_bytes"]
        if row is not base:
            # A speed-up whose interval holds 1x is no measurable change on this machine, whatever its median.
            interval = speedup_interval(base["batch1"].get("samples_ms"), row["batch1"].get("samples_ms"))
            if interval is not None:
                row["speedup_batch1_ci95"] = interval
                row["speedup_measurable"] = not interval[0] <= 1.0 <= interval[1]
    for row in [*variants.values(), report.get("ort_baseline") or {}]:  # the raw call times stay out of the report
        for batch in ("batch1", "batch32"):
            (row.get(batch) or {}).pop("samples_ms", None)
    return report


def run(params: Params, project: str) -> dict:
    cfg = resolved(params.project(project), ProjectPaths.of(project).tokenizer)
    comp = cfg.compress
    impl = get_task(cfg.task).impl()
    input_field = get_task(cfg.task).input_field
    paths = ProjectPaths.of(project)
    torch.manual_seed(params.common.seed)
    device = resolve_device(params)  # for distillation; every measurement is on the CPU
    tokenizers = load_tokenizers(paths.tokenizer)
    teacher = load_hf_model(paths.finetuned)
    test_records = read_jsonl(paths.splits / "test.jsonl")
    distills = comp.distillation.enabled or (comp.pruning.enabled and comp.pruning.recovery_epochs > 0)
    distiller = Distiller(paths, params.common.seed, device,
                          resolve_precision(comp.distillation, device, f"projects.{project}.compress.distillation"),
                          inputs=(content_hash(paths.finetuned), content_hash(paths.encoded)), log_curves=distills)

    made = Made(models={"full": teacher}, manifest={"full": Variant(kind="hf", path=None, source=None)})
    with atomic_dir(paths.compressed) as tmp:
        if distills:  # its curves go to the model's run, as evaluate's metrics do
            run_id = read_json(paths.report("finetune")).get("mlflow_run_id")
            with tracking.run(params, project, run_id=run_id, run_name=f"{project}-finetune"):
                make_float_variants(made, teacher, cfg, impl, tokenizers, distiller, tmp)
        else:
            make_float_variants(made, teacher, cfg, impl, tokenizers, distiller, tmp)
        make_int8_variants(made, comp, tmp)
        if comp.onnx_runtime:
            make_onnx_variants(made, teacher, cfg, impl, tokenizers, test_records, tmp)
        write_manifest(tmp / paths.manifest.name, made.manifest)

    variants, runnable = describe(made, paths, impl, tokenizers, cfg)
    timings = time_variants(variants, runnable, teacher, impl, tokenizers, cfg, [r[input_field] for r in test_records])
    write_json(paths.report("compress"), build_report(comp, variants, timings, impl))
    shutil.rmtree(paths.compress_checkpoints, ignore_errors=True)  # made and saved: nothing left to resume
    return {name: {"size_ratio": round(row["size_ratio"], 2), "speedup_batch1": round(row["speedup_batch1"], 2)}
            for name, row in variants.items()}


def _predictor(impl, model, tokenizers, cfg):
    def call(batch):
        return impl.predict_texts(model, tokenizers, batch, cfg, "cpu")

    return call


def legacy_keys(method: str, variants: dict[str, dict]) -> dict:
    """The keys compress.json has always had (fp32 / int8 size and timings, ratios, speedups)."""
    keep = ("size_bytes", "linear_weight_bytes", "parameters", "batch1", "batch32", "quantized_modules")
    report: dict = {"method": method, "fp32": {k: variants["full"][k] for k in keep if k in variants["full"]}}
    if "int8" in variants:
        fp32, int8 = variants["full"], variants["int8"]
        report["int8"] = {k: int8[k] for k in keep if k in int8}
        report["size_ratio"] = fp32["size_bytes"] / int8["size_bytes"]
        report["linear_weight_ratio"] = fp32["linear_weight_bytes"] / int8["linear_weight_bytes"]
        report["speedup_batch1"] = fp32["batch1"]["median_ms"] / int8["batch1"]["median_ms"]
        report["speedup_batch32"] = int8["batch32"]["examples_per_second"] / fp32["batch32"]["examples_per_second"]
    return report
