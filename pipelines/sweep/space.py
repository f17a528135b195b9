"""A sweep's search space: the ``-S KEY=choice(...)|range(...)|loguniform(...)`` dimensions, parsed and
checked against the project's configuration before any trial runs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from pipelines.core.errors import ConfigError

# The stages a trial runs do not read these blocks: tuning them on validation means nothing.
TEST_ONLY_BLOCKS = ("evaluate", "compress", "export")
_SPEC = re.compile(r"^\s*(?P<key>[A-Za-z0-9_.\-]+)\s*=\s*(?P<kind>choice|range|loguniform)\((?P<args>.*)\)\s*$")


@dataclass
class Dimension:
    key: str  # inside the project block, e.g. finetune.learning_rate
    kind: str  # choice | range | loguniform
    values: list | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None

    @property
    def integer(self) -> bool:
        return self.kind == "range" and all(isinstance(v, int) for v in (self.low, self.high, self.step or 1))

    def distribution(self):
        import optuna.distributions as d

        if self.kind == "choice":
            return d.CategoricalDistribution(self.values)
        if self.integer:
            return d.IntDistribution(int(self.low), int(self.high), step=int(self.step or 1))
        return d.FloatDistribution(float(self.low), float(self.high), log=self.kind == "loguniform", step=self.step)

    def grid(self) -> list:
        if self.kind == "choice":
            return list(self.values)
        if self.integer:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        raise ConfigError(f"-S {self.key}={self.kind}(...): the grid sampler needs choice(...) or a range of whole "
                          "numbers; use --sampler tpe or random for continuous ranges")


def _value(text: str, spec: str) -> Any:
    text = text.strip()
    for number in (int, float):  # 1e-4 is a number here (YAML 1.1 reads it as a string)
        try:
            return number(text)
        except ValueError:
            pass
    try:
        value = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        value = ...
    if isinstance(value, (list, dict)) or value is ...:
        raise ConfigError(f"-S {spec!r}: {text!r} is not a value; list plain values separated by commas "
                          "(numbers, words, true / false), without brackets or unclosed quotes: choice(1,2)")
    return value


def parse_dimension(spec: str, project: str) -> Dimension:
    m = _SPEC.match(spec)
    if not m:
        raise ConfigError(f"-S {spec!r} is not KEY=choice(a,b,...), KEY=range(low,high[,step]) or "
                          "KEY=loguniform(low,high)")
    key = m["key"].removeprefix(f"projects.{project}.")
    if key.startswith("projects."):
        raise ConfigError(f"-S {spec!r} names another project; sweep keys are settings of projects.{project}")
    args = [_value(a, spec) for a in m["args"].split(",")] if m["args"].strip() else []
    kind = m["kind"]
    if kind == "choice":
        if not args:
            raise ConfigError(f"-S {key}=choice(): give at least one value")
        if len({json.dumps(a, sort_keys=True) for a in args}) != len(args):
            raise ConfigError(f"-S {key}: choice(...) lists a value twice")
        return Dimension(key, kind, values=args)
    if len(args) not in ((2, 3) if kind == "range" else (2,)) or not all(
            isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise ConfigError(f"-S {key}={kind}(...) needs two numbers (low, high{', and a step' if kind == 'range' else ''})")
    low, high = args[0], args[1]
    if low > high:
        raise ConfigError(f"-S {key}={kind}({low},{high}): low is above high")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"-S {key}=loguniform({low},{high}): a log-uniform range needs low > 0")
    step = args[2] if len(args) == 3 else None
    if step is not None and step <= 0:
        raise ConfigError(f"-S {key}=range({low},{high},{step}): the step must be above 0 (leave it out for every "
                          "value of a whole-number range, or for any value of a decimal one)")
    return Dimension(key, kind, low=low, high=high, step=step)


def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
        if not isinstance(tree, dict):
            raise ConfigError(f"{dotted}: {part} is not a block")
    tree[leaf] = value


def validate(dimensions: list[Dimension], raw: dict, project: str) -> None:
    """Every key a setting of the project that trials read, every value one params.yaml accepts."""
    from pipelines.config import parse_params

    params = parse_params(raw)
    cfg = params.project(project)
    seen = set()
    for dim in dimensions:
        if dim.key in seen:
            raise ConfigError(f"-S {dim.key} is given twice")
        seen.add(dim.key)
        block, *rest = dim.key.split(".")
        node: Any = cfg
        for part in dim.key.split("."):
            fields = type(node).model_fields if hasattr(type(node), "model_fields") else {}
            if part not in fields:
                known = ", ".join(sorted(fields)) or "none (it is a value, not a block)"
                raise ConfigError(f"-S {dim.key}: projects.{project} has no setting {dim.key!r} ({part!r} is not one "
                                  f"of: {known})")
            node = getattr(node, part)
        if block in TEST_ONLY_BLOCKS or block == "preset" or block == "task":
            raise ConfigError(f"-S {dim.key}: the {block} settings are not read by the stages a trial runs (up to "
                              "finetune, chosen on validation); tune settings of clean, split, tokenizer, model, "
                              "pretrain or finetune")
        candidates = dim.values if dim.kind == "choice" else [dim.low, dim.high]
        if dim.kind != "choice" and not dim.integer and dim.high > dim.low:
            # A decimal range draws values between its ends: one of them must be allowed too (range(8.0,16.0)
            # for a whole-number setting passes at 8.0 and 16.0 and fails at 10.9).
            candidates = [*candidates, dim.low + (dim.high - dim.low) * 0.371]
        for value in candidates:
            trial_raw = json.loads(json.dumps(raw))
            _set(trial_raw["projects"][project], dim.key, value)
            try:
                parse_params(trial_raw)
            except ConfigError as exc:
                hint = ""
                if dim.kind == "range" and not dim.integer and isinstance(value, float) and not value.is_integer():
                    hint = (f"\nrange({dim.low},{dim.high}) draws decimal values; for a whole-number setting write "
                            f"range({int(dim.low)},{int(dim.high)})")
                raise ConfigError(f"-S {dim.key}: the value {value!r} is not allowed:\n{exc}{hint}") from None
