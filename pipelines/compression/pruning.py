"""Pruning: structured removal of attention heads and feed-forward neurons (the model gets smaller
and is saved smaller), and global unstructured magnitude pruning of the transformer blocks' Linear
weights (zeros kept zero while the masks are active, and folded into the weights at the end)."""

from __future__ import annotations

import re

import torch
from torch import nn

from pipelines.models.files import (PRUNED_HEADS_KEY, attention_layout, attention_modules, num_heads, remove_heads, slice_linear)

# Linear layers inside the transformer blocks (BERT's encoder.layer.N, BART's encoder/decoder.layers.N):
# what magnitude pruning touches. Embeddings, pooler and output head stay dense.
BLOCK_LINEAR = re.compile(r"\.layers?\.\d+\.")


def prune_heads(model: nn.Module, per_module: int) -> dict[str, list[int]]:
    """Remove ``per_module`` heads from every attention module: those whose value and output
    projections have the smallest weight norm. Recorded in the config, so that
    :func:`load_hf_model` rebuilds the smaller shapes; returns {module path: removed heads}."""
    removed: dict[str, list[int]] = {}
    for name, att in attention_modules(model).items():
        owner, qkv, out_owner, out_name, d = attention_layout(att)
        n = num_heads(att)
        if per_module >= n:
            raise ValueError(f"{name} has {n} heads; cannot remove {per_module} (at least one must stay)")
        v = getattr(owner, qkv[2]).weight.detach()
        out = getattr(out_owner, out_name).weight.detach()
        score = torch.stack([v[h * d:(h + 1) * d].norm() * out[:, h * d:(h + 1) * d].norm() for h in range(n)])
        heads = sorted(score.argsort()[:per_module].tolist())
        remove_heads(att, heads)
        removed[name] = heads
    if removed:
        setattr(model.config, PRUNED_HEADS_KEY, {**(getattr(model.config, PRUNED_HEADS_KEY, None) or {}), **removed})
    return removed


def _ffn_layout(module: nn.Module):
    """(input owner, name, output owner, name, config key of the width) of a feed-forward block:
    BERT's layer.intermediate.dense / layer.output.dense, BART/Marian's fc1 / fc2; else None."""
    if isinstance(getattr(module, "fc1", None), nn.Linear) and isinstance(getattr(module, "fc2", None), nn.Linear):
        key = "decoder_ffn_dim" if "Decoder" in type(module).__name__ else "encoder_ffn_dim"
        return module, "fc1", module, "fc2", key
    inter, out = getattr(module, "intermediate", None), getattr(module, "output", None)
    if isinstance(getattr(inter, "dense", None), nn.Linear) and isinstance(getattr(out, "dense", None), nn.Linear):
        return inter, "dense", out, "dense", "intermediate_size"
    return None


def prune_ffn(model: nn.Module, fraction: float) -> dict[str, int]:
    """Remove ``fraction`` of the feed-forward neurons of every layer (those whose input row and
    output column have the smallest norms), and shrink the config's width to match; returns
    {config key: new width}."""
    blocks = [(name, _ffn_layout(m)) for name, m in model.named_modules() if _ffn_layout(m) is not None]
    widths: dict[str, int] = {}
    for name, (in_owner, in_name, out_owner, out_name, key) in blocks:
        fc_in, fc_out = getattr(in_owner, in_name), getattr(out_owner, out_name)
        width = fc_in.out_features
        keep_n = max(1, int(round(width * (1 - fraction))))
        if widths.setdefault(key, keep_n) != keep_n:
            raise ValueError(f"{name}: feed-forward widths differ between layers; cannot express them in the config")
        score = fc_in.weight.detach().norm(dim=1) * fc_out.weight.detach().norm(dim=0)
        keep = score.argsort(descending=True)[:keep_n].sort().values
        setattr(in_owner, in_name, slice_linear(fc_in, keep, 0))
        setattr(out_owner, out_name, slice_linear(fc_out, keep, 1))
    for key, width in widths.items():
        setattr(model.config, key, width)
    return widths


def block_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The Linear layers inside the transformer blocks (attention and feed-forward projections)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and BLOCK_LINEAR.search(n)]


def prune_magnitude(model: nn.Module, sparsity: float) -> list[tuple[nn.Module, str]]:
    """Global unstructured magnitude pruning: the smallest ``sparsity`` of all block Linear weights
    (one threshold across layers) are masked. The masks stay active (training keeps them zero)
    until :func:`make_pruning_permanent`."""
    from torch.nn.utils import prune

    targets = [(m, "weight") for _, m in block_linears(model)]
    if targets and sparsity > 0:
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=float(sparsity))
    return targets if sparsity > 0 else []


def make_pruning_permanent(targets: list[tuple[nn.Module, str]]) -> None:
    """Fold the masks into the weights (prune.remove): the zeros are then ordinary weights that
    save_pretrained writes and every loader keeps."""
    from torch.nn.utils import prune

    for module, name in targets:
        if prune.is_pruned(module):
            prune.remove(module, name)


def block_sparsity(model: nn.Module) -> float:
    """Fraction of zeros among the block Linear weights."""
    total = zeros = 0
    for _, m in block_linears(model):
        total += m.weight.numel()
        zeros += int((m.weight == 0).sum())
    return zeros / total if total else 0.0
