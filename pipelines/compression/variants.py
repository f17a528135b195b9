"""The variants compress made (full, int8, pruned, student, ONNX Runtime...) as models to run: what
evaluate scores and the demo page serves, loaded the same way for both."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from pipelines.core.variants import VARIANT_ORDER
from pipelines.core.io import read_json, write_json
from pipelines.core.paths import ProjectPaths


def chain_order(by_variant: dict) -> dict:
    """``by_variant`` in the chain's order (full first, then what compress derives from it), not
    the (sorted) order the JSON files keep."""
    rank = {name: i for i, name in enumerate(VARIANT_ORDER)}
    return dict(sorted(by_variant.items(), key=lambda kv: rank.get(kv[0], len(rank))))


@dataclass(frozen=True)
class Variant:
    """One variant compress made, as its manifest (models/<p>/compressed/variants.json) records it:
    compress writes it, evaluate, export and the demo read it."""

    kind: Literal["hf", "int8", "onnx"]  # a transformers folder, a dynamic int8 folder, ONNX graphs
    path: str | None  # its folder under models/<p>/compressed; None: the fine-tuned model itself
    source: str | None  # the variant it was made from (None for full)
    decoding: str | None = None  # ONNX seq2seq: how it decodes (greedy), for the variant table
    onnx_opset: int | None = None  # ONNX: the opset it was exported with
    check: dict | None = None  # ort_fp32: its check against PyTorch, which export reuses with the graph

    def folder(self, paths: ProjectPaths) -> Path:
        return paths.finetuned if self.path is None else paths.compressed / self.path

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("path", "source")}


def write_manifest(path: Path, variants: dict[str, Variant]) -> None:
    write_json(path, {name: v.to_json() for name, v in variants.items()})


def manifest(paths: ProjectPaths) -> dict[str, Variant]:
    """The variants compress made, in the chain's order."""
    return chain_order({name: Variant(**entry) for name, entry in read_json(paths.manifest).items()})


def load_variant(entry: Variant, paths: ProjectPaths, impl, tokenizers, cfg, device: str):
    """A variant as a model the task's evaluate_model and predict_texts accept, and the device to run it on."""
    from pipelines.models.files import load_hf_model

    folder = entry.folder(paths)
    if entry.kind == "onnx":
        return impl.ort_model(folder, tokenizers, cfg), "cpu"
    if entry.kind == "int8":
        return load_hf_model(folder), "cpu"  # dynamic int8 kernels are CPU kernels
    return load_hf_model(folder, device), device
