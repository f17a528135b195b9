"""Stage split: deterministic, seeded train / validation / test, stratified by label.

Each example's place is decided by a hash of (seed, normalised text), within its label, so the
split does not change when the input is re-ordered and an added example moves no other one.
Splits the source brings are kept; a missing validation or test split is carved from train.
No normalised text appears in two splits (leakage above split.max_leakage fails the stage).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict

from pipelines.config import Params
from pipelines.core.errors import DataError
from pipelines.core.io import atomic_dir, read_jsonl, write_json, write_jsonl
from pipelines.core.paths import ProjectPaths
from pipelines.tasks import get_task
from pipelines.data.text import dedupe_key

logger = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def _rank(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}\x00{dedupe_key(text)}".encode()).hexdigest()


def carve(records: list[dict], fraction: float, seed: int, input_field: str, stratify: str | None):
    """Take ``fraction`` of records (per stratum) out; return (taken, rest), both in input order."""
    groups: dict = defaultdict(list)
    for i, rec in enumerate(records):
        groups[rec.get(stratify) if stratify else None].append(i)
    taken_idx = set()
    for idx in groups.values():
        n = round(len(idx) * fraction)
        if n == 0 and len(idx) >= 3 and fraction > 0:
            n = 1  # a rare label still reaches every split
        ordered = sorted(idx, key=lambda i: _rank(seed, records[i][input_field]))
        taken_idx.update(ordered[:n])
    taken = [r for i, r in enumerate(records) if i in taken_idx]
    rest = [r for i, r in enumerate(records) if i not in taken_idx]
    return taken, rest


def assign_splits(records: list[dict], task, split_cfg, seed: int) -> dict[str, list[dict]]:
    """Split canonical records; given splits are kept, missing ones carved from train."""
    stratify = task.target_field if task.target_field not in task.text_fields else None
    by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    given = any("split" in r for r in records)
    for rec in records:
        by_split[rec.pop("split", "train") if given else "train"].append(rec)
    train = by_split["train"]
    total = len(train)
    if not by_split["test"]:
        by_split["test"], train = carve(train, split_cfg.test_fraction, seed, task.input_field, stratify)
    if not by_split["validation"]:
        frac = split_cfg.validation_fraction * total / max(1, len(train)) if not given else split_cfg.validation_fraction
        by_split["validation"], train = carve(train, min(frac, 0.5), seed + 1, task.input_field, stratify)
    by_split["train"] = train
    return by_split


def leakage(by_split: dict[str, list[dict]], field: str) -> dict[str, list[str]]:
    """Normalised texts of validation / test that also occur in train."""
    train_keys = {dedupe_key(r[field]) for r in by_split["train"]}
    return {
        s: [r[field] for r in by_split[s] if dedupe_key(r[field]) in train_keys] for s in ("validation", "test")
    }


def run(params: Params, project: str) -> dict:
    cfg = params.project(project)
    task = get_task(cfg.task)
    paths = ProjectPaths.of(project)
    records = read_jsonl(paths.clean / "data.jsonl")
    by_split = assign_splits(records, task, cfg.split, params.common.seed)

    empty = [s for s in SPLITS if not by_split[s]]
    if empty:
        raise DataError(
            f"split: {', '.join(empty)} would be empty ({len(records)} clean rows); give more data "
            "or raise split.validation_fraction / split.test_fraction"
        )
    leaks = leakage(by_split, task.input_field)
    rates = {s: len(v) / len(by_split[s]) for s, v in leaks.items()}
    for s, rate in rates.items():
        if rate > cfg.split.max_leakage:
            examples = "; ".join(repr(t[:80]) for t in leaks[s][:5])
            raise DataError(
                f"split: {len(leaks[s])} of {len(by_split[s])} {s} texts ({rate:.1%}) also occur in train, above "
                f"split.max_leakage={cfg.split.max_leakage}. Examples: {examples}. Remove them from the source "
                "or let clean deduplicate (it keeps the test copy)."
            )
    report = {
        "rows": {s: len(v) for s, v in by_split.items()},
        "leakage": {s: len(v) for s, v in leaks.items()},
    }
    if task.target_field not in task.text_fields:
        counts = {s: Counter(r[task.target_field] for r in v) for s, v in by_split.items()}
        unseen = sorted((set(counts["test"]) | set(counts["validation"])) - set(counts["train"]))
        if len(counts["train"]) < 2:
            also = f"; {unseen} occur only in validation/test" if unseen else ""
            raise DataError(
                f"split: all {len(by_split['train'])} train rows have the label {sorted(counts['train'])}{also}. A "
                "classifier needs at least two classes in train; add training examples of the other classes, or "
                f"check that data.{task.fields[task.target_field]} names the label column"
            )
        if unseen:
            raise DataError(
                f"split: label(s) {unseen} occur in validation/test but never in train; the model cannot "
                "predict them. Add training examples for them or remove them."
            )
        report["labels"] = {s: dict(sorted(c.items())) for s, c in counts.items()}
    with atomic_dir(paths.splits) as tmp:
        for s in SPLITS:
            write_jsonl(tmp / f"{s}.jsonl", by_split[s])
    write_json(paths.report("split"), report)
    logger.info("split: %s", report["rows"])
    return report
