"""Tiny configurations for end-to-end tests, and the test-only helpers around a throw-away copy.

`tiny_params` shrinks params.yaml so that `dvc repro` in a copy (devsupport.workspace) runs every
stage in seconds. The copy and server helpers that the benchmarks share live in devsupport; they are
imported here so that a test finds every helper in one place.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

from devsupport.processes import (MlflowServer, demo_server, free_port, prefect_server, start_group, stop_group,
                                  wait_for_http)
from devsupport.workspace import REPO, make_repo_copy, pipeline_env, run_stages

__all__ = ["REPO", "TINY_MODEL", "TINY_TRAIN", "MlflowServer", "demo_server", "dvc", "free_port", "int8_only",
           "make_repo_copy", "mlflow_json", "pipeline_env", "prefect_server", "registry", "run_stages", "start_group",
           "stop_group",
           "tiny_params", "wait_for_http"]

TINY_MODEL = {"hidden_size": 32, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "intermediate_size": 64}
TINY_TRAIN = {"epochs": 1, "batch_size": 16, "save_steps": 5, "logging_steps": 2, "min_steps": 0}


def tiny_params(projects=("classification",), size: int = 240, **overrides) -> dict:
    """params.yaml of this repository, shrunk: small builtin data, a one-layer model, one epoch.

    ``projects``: names of params.yaml's projects, or {name: task} for projects of any name (a
    copy of the builtin demo of that task). The result holds each project's block resolved over
    its preset, so tests can change any key. ``overrides``: ``classification__finetune__epochs=2``
    sets projects.classification.finetune.epochs; ``tracking__...`` a shared block."""
    from pipelines.config import resolve_projects

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    out = {k: copy.deepcopy(raw[k]) for k in ("common", "runtime", "tracking")}
    named = projects if isinstance(projects, dict) else {p: raw["projects"][p]["task"] for p in projects}
    demo = {task: next(b for b in raw["projects"].values() if b["task"] == task) for task in set(named.values())}
    out["projects"] = {}
    for name, task in named.items():
        base = raw["projects"].get(name) if raw["projects"].get(name, {}).get("task") == task else demo[task]
        block = resolve_projects({name: copy.deepcopy(base)}, [])[name]
        block["data"]["builtin_size"] = size
        block["tokenizer"]["vocab_size"] = 300
        block["model"].update(TINY_MODEL)
        block["pretrain"].update(TINY_TRAIN)
        block["finetune"].update(TINY_TRAIN)
        block["compress"]["latency_batches"] = 2
        # A one-epoch model of a few hundred rows is often no better than the majority class; the tests
        # of what happens to a registered version need it to become champion (tests/test_intervals.py
        # holds the baseline rule itself).
        block["export"]["beat_baseline"] = False
        if "num_beams" in block["evaluate"]:
            block["evaluate"].update({"num_beams": 2, "max_new_tokens": 16})
            block["finetune"]["validation_generate_samples"] = 16
            # With 300 byte-level tokens and a dozen steps a seq2seq model emits nothing but spaces;
            # whole-word tokens and a few epochs (seconds at this size) let it emit words, which the
            # metric assertions need.
            block["tokenizer"]["vocab_size"] = 1000
            block["model"].update(hidden_size=64, intermediate_size=128)
            block["finetune"].update(epochs=6, learning_rate=3e-3, early_stopping_patience=6)
        out["projects"][name] = block
    for dotted, value in overrides.items():
        *parents, last = dotted.split("__")
        node = out if parents[0] in out else out["projects"]
        for key in parents:
            node = node[key]
        node[last] = value
    return out


def int8_only(params: dict) -> dict:
    """Compress with int8 of the full model only, for tests about something else (data sources,
    resuming): no pruned or student variant and no ONNX export, each of which costs seconds."""
    for block in params["projects"].values():
        comp = block["compress"]
        comp.update(quantize=["full"], onnx_runtime=False)
        comp["pruning"].update(sparsity=0.0, heads=0, ffn_fraction=0.0)
        comp["distillation"]["enabled"] = False
    return params


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=pipeline_env(root),
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-5000:]}")
    return proc


def registry(root: Path, name: str) -> dict:
    """Versions and aliases of a registered model, read with a separate MLflow client."""
    return mlflow_json(root, (
        f"m = c.get_registered_model({name!r});"
        f"vs = c.search_model_versions(\"name='{name}'\");"
        "print(json.dumps({'aliases': {k: int(v) for k, v in m.aliases.items()}, 'versions': sorted(int(v.version) for v in vs),"
        " 'tags': {v.version: dict(v.tags) for v in vs}}))"))


def mlflow_json(root: Path, code: str) -> dict:
    """Run ``code`` (which prints one JSON line last) with a separate MLflow client in the copy."""
    out = subprocess.run([sys.executable, "-c", "import json, mlflow; c = mlflow.MlflowClient();" + code], cwd=root,
                         env=pipeline_env(root), capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])
