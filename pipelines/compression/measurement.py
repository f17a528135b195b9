"""What the compress report measures of each variant: parameters (and how many are not zero),
bytes of Linear weights, size on disk after gzip, and latency with the models taking turns."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from pipelines.core import settings
from pipelines.models.files import dynamic_linear_cls

def linear_weight_bytes(model: nn.Module) -> int:
    """Bytes held by Linear weights: float Linear layers, or int8 dynamic ones."""
    total = 0
    qcls = dynamic_linear_cls()
    for m in model.modules():
        if isinstance(m, qcls):
            total += m.weight().int_repr().numel()
        elif isinstance(m, nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    return total


def count_parameters(model: nn.Module) -> int:
    """Parameters, counting the weights and biases that int8 Linear layers keep packed."""
    packed = 0
    for m in model.modules():
        if isinstance(m, dynamic_linear_cls()):
            packed += m.weight().numel() + (m.bias().numel() if m.bias() is not None else 0)
    return sum(p.numel() for p in model.parameters()) + packed


def count_nonzero(model: nn.Module) -> int:
    """Parameters that are not zero (an int8 weight is zero where it equals its zero point)."""
    n = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    for m in model.modules():
        if isinstance(m, dynamic_linear_cls()):
            w = m.weight()
            n += int(torch.count_nonzero(w.int_repr().int() - w.q_zero_point()))
            n += int(torch.count_nonzero(m.bias())) if m.bias() is not None else 0
    return n


def gzip_size(folder: Path) -> int:
    """Bytes of the weight files after gzip (level 1): what zeros from unstructured pruning save in
    transfer and storage, although the tensors on disk stay dense."""
    import zlib

    total = 0
    for f in sorted(Path(folder).iterdir()):
        if f.suffix in (".safetensors", ".onnx", ".data"):
            comp = zlib.compressobj(1)
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    total += len(comp.compress(chunk))
            total += len(comp.flush())
    return total


def latency_threads() -> int | None:
    """Threads for latency measurements (PIPELINES_LATENCY_THREADS; unset: the libraries' default,
    every core). On a machine that other jobs share, 1 avoids the stalls of threads waiting for
    each other, which distort small models' timings by an order of magnitude."""
    return settings.get("PIPELINES_LATENCY_THREADS")


def time_interleaved(fns: dict[str, Callable[[list[str]], object]], texts: list[str], batch_size: int,
                     repeats: int) -> dict[str, dict]:
    """Latency of each of ``fns`` on batches of ``batch_size`` texts (median and 95th percentile, and
    throughput), the models taking turns call by call: every model sees the same batches under the
    same machine load, so a busy machine slows them all alike."""
    batches = [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)] or [texts]
    batches = (batches * (repeats // len(batches) + 1))[:repeats]
    for fn in fns.values():
        fn(batches[0])  # warm-up: the first call allocates and picks kernels
    times: dict[str, list[float]] = {name: [] for name in fns}
    for b in batches:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(b)
            times[name].append(time.perf_counter() - t0)
    n = sum(len(b) for b in batches)
    out = {}
    for name, ts in times.items():
        ordered = sorted(ts)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        # samples_ms: the call times in batch order, paired across models (speedup_interval reads them)
        out[name] = {"median_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000,
                     "examples_per_second": n / sum(ts), "samples_ms": [t * 1000 for t in ts]}
    return out


def speedup_interval(base_ms: list[float] | None, mine_ms: list[float] | None, samples: int = 1000,
                     seed: int = 0) -> list[float] | None:
    """The 95 % interval of the speed-up (the base's median call time over this model's), by bootstrap
    over the calls, which the two made in turns on the same batches (time_interleaved): None
    without paired timings."""
    import numpy as np

    if not base_ms or not mine_ms or len(base_ms) != len(mine_ms) or len(base_ms) < 2:
        return None
    base, mine = np.asarray(base_ms), np.asarray(mine_ms)
    idx = np.random.default_rng(seed).choice(len(base), size=(samples, len(base)), replace=True)
    ratios = np.median(base[idx], axis=1) / np.median(mine[idx], axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return [float(lo), float(hi)]


def measure_latency(calls: dict, texts: list[str], repeats: int) -> dict[str, dict]:
    """CPU latency as deployed, for every model at once (taking turns, see time_interleaved): batch 1
    (median, p95) and throughput at batch 32, on the given texts; PIPELINES_LATENCY_THREADS sets
    the threads of PyTorch (and of the ORT sessions, see model_files.ort_session)."""
    threads, before = latency_threads(), torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        b1 = time_interleaved(calls, texts, 1, repeats)
        b32 = time_interleaved(calls, texts, 32, max(3, repeats // 4))
    finally:
        torch.set_num_threads(before)
    return {name: {"batch1": b1[name], "batch32": b32[name]} for name in calls}
