"""The variants compress made (full, int8, pruned, student, ONNX Runtime...) as models to run: what
evaluate scores and the demo page serves, loaded the same way for both."""

from __future__ import annotations

from .config import VARIANT_ORDER
from .io import read_json
from .paths import ProjectPaths


def chain_order(by_variant: dict) -> dict:
    """``by_variant`` in the chain's order (full first, then what compress derives from it), not
    the (sorted) order the JSON files keep."""
    rank = {name: i for i, name in enumerate(VARIANT_ORDER)}
    return dict(sorted(by_variant.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def manifest(paths: ProjectPaths) -> dict[str, dict]:
    """The variants compress made (kind, folder and source of each), in the chain's order."""
    return chain_order(read_json(paths.manifest))


def load_variant(name: str, entry: dict, paths: ProjectPaths, impl, tokenizers, cfg, device: str):
    """A variant as a model the task's evaluate_model and predict_texts accept, and the device to run it on."""
    from .compression import load_hf_model

    folder = paths.finetuned if entry["path"] is None else paths.compressed / entry["path"]
    if entry["kind"] == "onnx":
        return impl.ort_model(folder, tokenizers, cfg), "cpu"
    if entry["kind"] == "int8":
        return load_hf_model(folder), "cpu"  # dynamic int8 kernels are CPU kernels
    return load_hf_model(folder, device), device
