"""Sequence lengths derived from the data.

``tokenizer.max_length`` and ``max_target_length`` may be ``auto``: the tokenize stage measures the
token lengths of the train split with the project's tokenizer and takes a high percentile
(``tokenizer.auto_percentile``), rounded up to a multiple of 8, at most the preset's cost limit
(``auto_max_length`` / ``auto_max_target_length``) and the checkpoint's positions. It writes what it
chose to ``lengths.json`` in the tokenizer folder, an output every later stage already depends on, and
to its report with the share of each split that the chosen lengths cut. ``evaluate.max_new_tokens:
auto`` is the target length the model was trained with. Later stages take their settings through
:func:`resolved`, so the model's position table, training, decoding and the exported settings all
see the same numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pipelines.core.errors import PipelineError
from pipelines.core.io import write_json

AUTO = "auto"
RECORD = "lengths.json"
# The length keys of the tokenizer block, each with its cap and the least value the block accepts.
KEYS = {"max_length": ("auto_max_length", 8), "max_target_length": ("auto_max_target_length", 4)}
MULTIPLE = 8
# Above this share of training examples cut, tokenize warns and the summary names the key to raise.
TRUNCATION_WARNING = 0.05
# Enough examples for a percentile that moves by well under a token; beyond this, evenly spaced rows.
MEASURED_ROWS = 100_000


def percentile(values: list[int], q: float) -> int:
    """The nearest-rank ``q``-th percentile: the least value at or above which ``q`` % of ``values`` lie."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def sample(records: list, limit: int = MEASURED_ROWS) -> list:
    """Every row, or ``limit`` evenly spaced ones (deterministic)."""
    if len(records) <= limit:
        return records
    step = len(records) / limit
    return [records[int(i * step)] for i in range(limit)]


def uses_auto(cfg, decoding: bool = True) -> bool:
    tok = cfg.tokenizer
    return (tok.max_length == AUTO or tok.max_target_length == AUTO
            or (decoding and getattr(cfg.evaluate, "max_new_tokens", None) == AUTO))


def bounded(cfg):
    """``cfg`` with every auto length at its cap: what a tokenizer built before the lengths are known may need."""
    return cfg.model_copy(update={"tokenizer": cfg.tokenizer.model_copy(
        update={key: cfg.tokenizer.bound(key) for key in KEYS})})


def model_positions(tokenizers: dict, init: str) -> int | None:
    """The most tokens a checkpoint accepts (its position table, or its tokenizer's limit); None when
    built here (the table is sized to the chosen lengths) or when the checkpoint states none."""
    if init == "scratch":
        return None
    limits = []
    for tok in tokenizers.values():
        limit = getattr(tok, "model_max_length", None)
        if isinstance(limit, int) and 0 < limit < 1_000_000:  # "no limit" is a huge sentinel
            limits.append(limit)
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(init)
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            # BERT-style tables include the two special tokens; BART's offset is inside the table.
            limits.append(positions)
    except Exception:  # noqa: BLE001 -- the tokenizer's limit is enough; loading the model says what is wrong
        pass
    return min(limits) if limits else None


def resolve(tok_cfg, measured: dict[str, dict[str, list[int]]], positions: int | None) -> dict:
    """The value of every length key measured (``measured[key][split]``: token lengths without truncation),
    with how it was chosen and the share of each split it cuts."""
    record = {}
    for key, lengths in measured.items():
        cap_key, least = KEYS[key]
        setting = getattr(tok_cfg, key)
        train = lengths["train"]
        entry: dict = {"setting": setting}
        if setting == AUTO:
            at = percentile(train, tok_cfg.auto_percentile) if train else least
            limits = {f"tokenizer.{cap_key}": getattr(tok_cfg, cap_key)}
            if positions:
                limits["the checkpoint's positions"] = positions
            wanted = max(least, -(-at // MULTIPLE) * MULTIPLE)
            limited_by = min(limits, key=limits.get)
            value = min(wanted, limits[limited_by])
            entry.update(value=value, percentile=tok_cfg.auto_percentile, at_percentile=at,
                         limited_by=limited_by if value < wanted else None)
        else:
            value = setting
            entry["value"] = value
        entry["longest"] = max(train, default=0)
        entry["truncated"] = {split: {"rows": sum(1 for n in values if n > value),
                                      "share": round(sum(1 for n in values if n > value) / max(1, len(values)), 4)}
                              for split, values in lengths.items()}
        record[key] = entry
    return record


def warnings(record: dict, project: str) -> list[str]:
    """What the chosen lengths cut beyond a small share of the training examples, and the key to raise."""
    out = []
    for key, entry in record.items():
        share = entry["truncated"]["train"]["share"]
        if share <= TRUNCATION_WARNING:
            continue
        what = "inputs" if key == "max_length" else "targets"
        if entry["setting"] == AUTO:
            limit = entry.get("limited_by") or f"tokenizer.{KEYS[key][0]}"
            fix = (f"raise projects.{project}.{limit}" if limit.startswith("tokenizer.")
                   else "use a checkpoint with more positions")
        else:
            fix = f"raise projects.{project}.tokenizer.{key} or set it to auto"
        out.append(f"{share:.0%} of the training {what} are longer than tokenizer.{key} ({entry['value']} tokens; "
                   f"the longest has {entry['longest']}) and are cut to it: {fix}")
    return out


def values(record: dict) -> dict[str, int]:
    """The tokenizer block's lengths as ``record`` holds them."""
    return {key: entry["value"] for key, entry in record.items() if key in KEYS}


def applied(cfg, record: dict):
    """``cfg`` with the lengths of ``record`` (and what the task derives from them) resolved."""
    return cfg.with_lengths(values(record))


def write(folder: Path, record: dict) -> None:
    write_json(Path(folder) / RECORD, record)


def read(folder: Path) -> dict:
    path = Path(folder) / RECORD
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing: the project's lengths are auto and the tokenize stage derives them; "
                            "run the tokenize stage again (dvc repro tokenize@<project>)") from None


def resolved(cfg, tokenizer_folder: Path, *, decoding: bool = True):
    """The settings a stage after tokenize runs with: ``cfg`` with its auto lengths as tokenize chose them.
    ``decoding``: the evaluate block's decoding settings too (a stage that does not read that block, such as
    training, passes False and gets the tokenizer's lengths only)."""
    if not uses_auto(cfg, decoding):
        return cfg
    record = read(tokenizer_folder)
    if not decoding:
        return cfg.model_copy(update={"tokenizer": cfg.tokenizer.model_copy(update=values(record))})
    return applied(cfg, record)
