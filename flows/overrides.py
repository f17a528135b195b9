"""Params overrides of one flow run (``-S key=value``, as ``dvc exp run -S`` takes them): parse them,
write them into the checkout's params.yaml once ``python -m pipelines check`` accepts the result,
and put params.yaml back when the run ends."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from flows.commands import stage_env
from flows.errors import OverrideError
from pipelines.core.io import atomic_file

# Blocks an override may touch besides the project's own: the shared ones every project reads.
SHARED_BLOCKS = ("common", "runtime", "tracking")


def parse_overrides(items: list[str] | dict[str, Any] | None) -> dict[str, Any]:
    """``["projects.classification.finetune.epochs=2", ...]`` (as ``dvc exp run -S`` takes them) to a dict;
    values are read as YAML scalars, so ``2`` is an int and ``true`` a bool."""
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    bad = [item for item in items if "=" not in item or not item.split("=", 1)[0].strip()]
    if bad:
        raise OverrideError(f"override(s) {bad} are not of the form key=value, e.g. "
                            "projects.classification.finetune.learning_rate=0.001")
    for item in items:
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _set_dotted(doc: Any, key: str, value: Any) -> None:
    node = doc
    *parents, last = key.split(".")
    for part in parents:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise OverrideError(f"override {key}: {part!r} holds a value, not a block of keys")
        node = child
    node[last] = value


def apply_overrides(root: Path, project: str, overrides: dict[str, Any]) -> list[str]:
    """Write ``overrides`` into the checkout's params.yaml (comments kept), after checking that the
    result validates with ``python -m pipelines check``; params.yaml is untouched when it does not.

    The values stay in params.yaml until the caller puts the file back: the pipeline flow runs inside
    ``params_restored``, which restores it when the run ends (unless ``keep_overrides``); the values a
    run used stay in its MLflow run and in dvc.lock. Returns the keys that changed value.
    """
    own = f"projects.{project}."
    outside = [k for k in overrides
               if not (k.startswith(own) and len(k) > len(own)) and (k.split(".", 1)[0] not in SHARED_BLOCKS or "." not in k)]
    if outside:
        raise OverrideError(
            f"override key(s) {outside} are outside this run's blocks; give full dotted keys under "
            f"{own} or {', '.join(b + '.' for b in SHARED_BLOCKS)} (e.g. {own}finetune.epochs=2)")
    from ruamel.yaml import YAML  # DVC's own YAML library: a round trip keeps the file's comments

    params_file = root / "params.yaml"
    rt = YAML()
    rt.preserve_quotes = True
    doc = rt.load(params_file.read_text(encoding="utf-8"))
    plain = yaml.safe_load(params_file.read_text(encoding="utf-8")) or {}
    changed = []
    for key, value in overrides.items():
        node: Any = plain
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != value:
            changed.append(key)
        _set_dotted(doc, key, value)
    candidate = root / f".params.flow-{os.getpid()}.yaml"
    try:
        with open(candidate, "w", encoding="utf-8") as fh:
            rt.dump(doc, fh)
        validate_params(root, project, candidate)
        if changed:
            os.replace(candidate, params_file)
    finally:
        candidate.unlink(missing_ok=True)
    return changed


def validate_params(root: Path, project: str, params_file: Path | None = None) -> None:
    """``python -m pipelines check <project>`` in the checkout; every problem in one error."""
    cmd = [sys.executable, "-m", "pipelines", "check", project]
    if params_file is not None:
        cmd += ["--params", str(params_file)]
    proc = subprocess.run(cmd, cwd=root, env=stage_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        message = proc.stderr.strip() or proc.stdout.strip()
        # the CLI logs the error and then prints it as "error: ..."; keep the printed copy
        message = message[message.rfind("error: "):].removeprefix("error: ") if "error: " in message else message
        if params_file is not None:
            message = message.replace(str(params_file), "params.yaml with the overrides")
        raise OverrideError(message)


@contextlib.contextmanager
def params_restored(root: Path, log: Callable[[str], None]) -> Iterator[None]:
    """Put the checkout's params.yaml back as it was on entry when the block ends, however it ends:
    a run's overrides are for that run, and the next scheduled retraining trains on the checkout's
    own settings (the values the run used stay in its MLflow run and in dvc.lock)."""
    params_file = root / "params.yaml"
    original = params_file.read_bytes()
    try:
        yield
    finally:
        if params_file.read_bytes() != original:
            with atomic_file(params_file, "wb") as fh:
                fh.write(original)
            log("params.yaml is back as it was before this run's overrides (keep them with keep_overrides / "
                "--keep-overrides)")
