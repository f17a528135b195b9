"""Shared helpers: run a project's pipeline in a throw-away copy of the repository and time it."""

from __future__ import annotations

import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from devsupport.workspace import REPO as ROOT
from devsupport.workspace import make_repo_copy, pipeline_env

RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "data"


def machine() -> dict:
    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def run_pipeline(params: dict, projects: list[str], target: str | None = None, keep: Path | None = None,
                 env_extra: dict | None = None) -> dict:
    """`dvc repro [target]` in a fresh copy; returns wall seconds and every report the run wrote."""
    work = keep or Path(tempfile.mkdtemp(prefix="bench-"))
    root = make_repo_copy(work, params, projects=tuple(projects))
    env = pipeline_env(root, **(env_extra or {}))
    cmd = [sys.executable, "-m", "dvc", "repro"] + ([target] if target else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    reports = {}
    for project in projects:
        folder = root / "reports" / project
        reports[project] = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    return {"wall_seconds": wall, "reports": reports, "root": str(root)}


def save(name: str, data: dict) -> Path:
    """Write results/<name>.json (with the machine it ran on) and rebuild RESULTS.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(), **data}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


def project_params(project: str, source: str | None = None, preset: str = "demo", overrides: dict | None = None,
                   register: bool = True) -> dict:
    """params.yaml reduced to the shared blocks and one of its projects, selecting ``preset`` as a
    user would (one line), with ``overrides`` set key by key on top."""
    from pipelines.config import merged

    params = copy.deepcopy(default_params())
    block = params["projects"][project]
    block["preset"] = preset
    if source:
        block["data"]["source"] = source
    block = merged(block, overrides or {})
    params["tracking"]["register_model"] = register
    return {**{k: params[k] for k in ("common", "runtime", "tracking")}, "projects": {project: block}}


def seconds_sized(task: str, size: int = 240) -> dict:
    """Overrides on a task's `demo` preset that make a whole run take seconds on a CPU: ``size``
    builtin examples, a one-layer model, one epoch. For benchmarks of what surrounds training
    (orchestration, the plumbing of the compression chain), where minutes of training would only
    add noise; no preset is that small, since no user wants such a model."""
    train = {"epochs": 1, "batch_size": 16, "save_steps": 5, "logging_steps": 2, "min_steps": 0}
    out = {"data": {"builtin_size": size}, "tokenizer": {"vocab_size": 300},
           "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64},
           "pretrain": train, "finetune": dict(train), "compress": {"latency_batches": 2}}
    if task != "classification":
        # A seq2seq model this small emits nothing but spaces from 300 byte-level tokens in a dozen
        # steps; whole-word tokens, a wider model and a few epochs (still seconds) let it emit words.
        out["tokenizer"]["vocab_size"] = 1000
        out["model"].update(hidden_size=64, intermediate_size=128, num_decoder_layers=1)
        out["finetune"].update(epochs=6, learning_rate=3e-3, early_stopping_patience=6, validation_generate_samples=16)
        out["evaluate"] = {"num_beams": 2, "max_new_tokens": 16}
    return out


def preset(task: str, name: str) -> dict:
    """A preset's values, as a project selecting it gets them (benchmark results record them)."""
    from pipelines.config import load_presets

    return load_presets()[task][name]


def seq2seq_summary(run: dict, project: str, metrics: tuple[str, ...]) -> dict:
    """Wall and training time, test metrics of the full and int8 models, and generation throughput."""
    rep = run["reports"][project]
    ev, comp = rep["evaluate"], rep["compress"]
    out = {
        "wall_seconds": round(run["wall_seconds"], 1),
        "train_seconds": round(rep["pretrain"].get("train_seconds", 0) + rep["finetune"]["train_seconds"], 1),
        "test_examples": ev["examples"],
        "linear_weight_ratio": comp["linear_weight_ratio"],
        "size_ratio": comp["size_ratio"],
        "fp32_sentences_per_second_batch32": comp["fp32"]["batch32"]["examples_per_second"],
        "int8_sentences_per_second_batch32": comp["int8"]["batch32"]["examples_per_second"],
        "fp32_batch1_median_ms": comp["fp32"]["batch1"]["median_ms"],
        "int8_batch1_median_ms": comp["int8"]["batch1"]["median_ms"],
        "int8_speedup_batch1": comp["speedup_batch1"],
        "int8_speedup_batch32": comp["speedup_batch32"],
    }
    for m in metrics:
        out[f"test_{m}"] = ev["full"][m]
        out[f"int8_test_{m}"] = ev["int8"][m]
    return out


def load_previous(name: str) -> dict:
    """The figures of an earlier run of a benchmark, so that running one part keeps the others."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in ("benchmark", "measured_at", "machine")}
