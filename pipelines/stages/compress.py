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

Writes models/<p>/compressed/<variant>/ (and variants.json, what evaluate and export load) and
reports/<p>/compress.json (the measurements; the fp32 / int8 keys of earlier versions are kept).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from ..compression import (block_sparsity, count_nonzero, count_parameters, distill, gzip_size, latency_threads,
                           linear_weight_bytes, load_hf_model, make_pruning_permanent, prune_ffn, prune_heads,
                           prune_magnitude, quantize_dynamic_int8, quantize_onnx_int8, save_quantized, time_interleaved,
                           weights_size)
from ..config import INT8_OF, Params
from ..errors import ConfigError
from ..io import atomic_dir, read_jsonl, write_json
from ..paths import ProjectPaths
from ..tasks import get_task
from ..tokenization import load_tokenizers
from ..training import KeepKeys, resolve_device

logger = logging.getLogger(__name__)


def train_data(paths: ProjectPaths):
    import datasets

    return datasets.load_from_disk(str(paths.encoded))["train"]


def make_pruned(teacher, cfg, impl, tokenizers, train, seed: int, device: str = "cpu"):
    """The pruned variant: structured first (heads, feed-forward neurons), then unstructured, then
    optional recovery by distillation from the teacher (``train``: a callable giving the training
    data, only called when needed) with the masks active, so the zeros stay zeros."""
    import copy

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
        info["recovery"] = distill(model, teacher, train(), collator, cfg.compress.distillation, seed=seed,
                                   device=device, epochs=pr.recovery_epochs, desc="pruned: recovery")
        model.cpu()
        teacher.cpu()
    make_pruning_permanent(masked)
    info["block_sparsity"] = block_sparsity(model)
    return model.eval(), info


def make_student(teacher, cfg, impl, tokenizers, train, seed: int, device: str = "cpu"):
    """The student variant: built from the teacher's layers where shapes match, then distilled."""
    settings = cfg.compress.distillation
    torch.manual_seed(seed)
    student, init = impl.build_student(teacher, settings)
    collator = KeepKeys(impl.collator(tokenizers, cfg, student), impl.FINETUNE_KEYS)
    info = {"init": init, **distill(student, teacher, train(), collator, settings, seed=seed, device=device,
                                    desc="student")}
    teacher.cpu()
    return student.cpu().eval(), info


def run(params: Params, project: str) -> dict:
    cfg = params.project(project)
    comp = cfg.compress
    task = get_task(cfg.task)
    impl = task.impl()
    paths = ProjectPaths.of(project)
    seed = params.common.seed
    torch.manual_seed(seed)
    device = resolve_device(params)  # for distillation; every measurement is on the CPU
    tokenizers = load_tokenizers(paths.tokenizer)
    teacher = load_hf_model(paths.finetuned)
    test_records = read_jsonl(paths.splits / "test.jsonl")
    texts = [r[task.input_field] for r in test_records]

    def train():
        return train_data(paths)

    models = {"full": teacher}
    manifest: dict[str, dict] = {"full": {"kind": "hf", "path": None, "source": None}}
    details: dict[str, dict] = {}
    with atomic_dir(paths.compressed) as tmp:
        if comp.pruning.enabled:
            models["pruned"], details["pruned"] = make_pruned(teacher, cfg, impl, tokenizers, train, seed, device)
        if comp.distillation.enabled:
            models["student"], details["student"] = make_student(teacher, cfg, impl, tokenizers, train, seed, device)
        for name in ("pruned", "student"):
            if name in models:
                models[name].save_pretrained(str(tmp / name), safe_serialization=True)
                manifest[name] = {"kind": "hf", "path": name, "source": "full"}
        if comp.quantization != "none":
            for base in (v for v in comp.quantize if v in models):  # a variant switched off has no int8 copy
                name = INT8_OF[base]
                models[name] = quantize_dynamic_int8(models[base])
                details[name] = {"quantized_modules": len(save_quantized(models[name], tmp / name)["modules"])}
                manifest[name] = {"kind": "int8", "path": name, "source": base}
        if comp.onnx_runtime:
            (tmp / "ort_fp32").mkdir()
            (tmp / "ort_int8").mkdir()
            check = impl.export_onnx(teacher, tokenizers, test_records[:32], tmp / "ort_fp32", cfg)
            for graph in impl.onnx_files(tmp / "ort_fp32"):
                quantize_onnx_int8(graph, tmp / "ort_int8" / graph.name)
            for name in ("ort_fp32", "ort_int8"):
                teacher.config.save_pretrained(str(tmp / name))
                if getattr(teacher, "generation_config", None) is not None:
                    teacher.generation_config.save_pretrained(str(tmp / name))
                manifest[name] = {"kind": "onnx", "path": name, "source": "full", "decoding": impl.ORT_DECODING,
                                  "onnx_opset": cfg.export.onnx_opset}
            details["ort_fp32"] = {k: v for k, v in check.items() if k.startswith("onnx_")}
            # export takes this graph and its check when it exports the full model (see export.onnx_graphs)
            manifest["ort_fp32"]["check"] = details["ort_fp32"]
        write_json(tmp / paths.manifest.name, manifest)

    def folder(name: str) -> Path:
        return paths.finetuned if manifest[name]["path"] is None else paths.compressed / manifest[name]["path"]

    variants: dict[str, dict] = {}
    runnable = {}
    full_params = count_parameters(teacher)
    for name, entry in manifest.items():
        if entry["kind"] == "onnx":
            runnable[name] = impl.ort_model(folder(name), tokenizers, cfg)
            row = {"parameters": full_params, "nonzero_parameters": None, "linear_weight_bytes": None}
        else:
            runnable[name] = models[name].cpu().eval()
            row = {"parameters": count_parameters(runnable[name]), "nonzero_parameters": count_nonzero(runnable[name]),
                   "linear_weight_bytes": linear_weight_bytes(runnable[name])}
        variants[name] = {"kind": entry["kind"], "source": entry["source"], "size_bytes": weights_size(folder(name)),
                          "size_gzip_bytes": gzip_size(folder(name)), **row, **details.get(name, {})}
        if entry.get("decoding"):
            variants[name]["decoding"] = entry["decoding"]

    calls = {name: _predictor(impl, m, tokenizers, cfg) for name, m in runnable.items()}
    ort_cfg = impl.ort_latency_cfg(cfg)
    if comp.onnx_runtime and ort_cfg is not cfg:
        # Seq2seq ORT variants decode greedily: PyTorch is timed decoding greedily too, for comparison.
        calls["ort_baseline"] = _predictor(impl, teacher, tokenizers, ort_cfg)
    timings = measure_latency(calls, texts, comp.latency_batches)
    for name in variants:
        variants[name].update(timings[name])
        logger.info("%s: %.1f KB, batch 1 median %.2f ms", name, variants[name]["size_bytes"] / 1024,
                    variants[name]["batch1"]["median_ms"])

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
        # ORT variants against PyTorch decoding the same way (greedy for seq2seq); the others against full.
        base = report.get("ort_baseline", variants["full"]) if row["kind"] == "onnx" else variants["full"]
        row["speedup_batch1"] = base["batch1"]["median_ms"] / row["batch1"]["median_ms"]
        row["size_ratio"] = variants["full"]["size_bytes"] / row["size_bytes"]
    write_json(paths.report("compress"), report)
    return {name: {"size_ratio": round(row["size_ratio"], 2), "speedup_batch1": round(row["speedup_batch1"], 2)}
            for name, row in variants.items()}


def _predictor(impl, model, tokenizers, cfg):
    def call(batch):
        return impl.predict_texts(model, tokenizers, batch, cfg, "cpu")

    return call


def measure_latency(calls: dict, texts: list[str], repeats: int) -> dict[str, dict]:
    """CPU latency as deployed, for every model at once (taking turns, see time_interleaved): batch 1
    (median, p95) and throughput at batch 32, on the given texts; PIPELINES_LATENCY_THREADS sets
    the threads of PyTorch (and of the ORT sessions, see compression.ort_session)."""
    threads, before = latency_threads(), torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        b1 = time_interleaved(calls, texts, 1, repeats)
        b32 = time_interleaved(calls, texts, 32, max(3, repeats // 4))
    finally:
        torch.set_num_threads(before)
    return {name: {"batch1": b1[name], "batch32": b32[name]} for name in calls}


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
