"""Stage clean: normalise text, drop rows that cannot be used, remove duplicates, report counts.

Rules (each counted in reports/<project>/clean.json):
- every text field: HTML stripped, Unicode normalised, control and invisible characters removed,
  whitespace folded;
- dropped: empty field, shorter than clean.min_chars, longer than clean.max_chars, missing label,
  pairs whose two sides are the same text (up to case, punctuation and spacing), pairs whose length
  ratio exceeds clean.max_length_ratio, summaries not shorter than documents;
- refused (DataError): a label that is not one class, most pairs identical, fewer than two classes;
- duplicates of the input text, exact or after normalisation (case, punctuation, spacing), keep
  one copy. When the source brings its own splits, the test copy is kept first, then validation,
  so given test sets stay as they are and nothing leaks into train.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter

from pipelines.config import Params
from pipelines.core.errors import DataError
from pipelines.core.io import atomic_dir, read_jsonl, write_json, write_jsonl
from pipelines.core.paths import ProjectPaths
from pipelines.tasks import get_task
from pipelines.data.text import clean_text, dedupe_key, label_text

logger = logging.getLogger(__name__)

SPLIT_PRIORITY = {"test": 0, "validation": 1, "train": 2}
# More identical pairs than this share means the two fields name one column (or a copy of it),
# not a few untranslated rows.
MAX_IDENTICAL_SHARE = 0.5
SHOW = 5  # offending rows a message names


def _field_names(task, cfg, fields) -> str:
    """'data.source_field ('en') and data.target_field ('en')': the params that name these fields."""
    return " and ".join(f"data.{task.fields[f]} ({getattr(cfg.data, task.fields[f])!r})" for f in fields)


def clean_records(records: list[dict], task, cfg) -> tuple[list[dict], dict]:
    """Apply the rules to canonical records; return the kept records and the report."""
    rules = cfg.clean
    dropped: Counter = Counter()
    modified: Counter = Counter()
    kept: list[dict] = []
    not_a_class: list[str] = []
    pairs, identical = 0, []
    for n, rec in enumerate(records, 1):
        out = dict(rec)
        reason = None
        for f in task.text_fields:
            val = out.get(f)
            if val is None:
                reason = reason or "empty"
                continue
            text, changed = clean_text(str(val), rules.unicode_form, rules.strip_html)
            modified.update(changed)
            out[f] = text
            if not text:
                reason = reason or "empty"
            elif len(text) < rules.min_chars:
                reason = reason or "too_short"
            elif len(text) > rules.max_chars:
                reason = reason or "too_long"
        if task.target_field not in task.text_fields:  # a label
            try:
                label = label_text(out.get(task.target_field))
            except ValueError as exc:
                not_a_class.append(f"ingested row {n}: {exc}")
                continue
            out[task.target_field] = label
            if not label:
                reason = reason or "missing_label"
        if out.get("references"):
            refs = [clean_text(str(r), rules.unicode_form, rules.strip_html)[0] for r in out["references"] if r]
            out["references"] = [r for r in refs if r] or None
        if reason is None and len(task.text_fields) == 2:
            pairs += 1
            a, b = (len(out[f]) for f in task.text_fields)
            # A pair whose sides are one text teaches the model to copy its input; drop it and count it.
            if dedupe_key(out[task.text_fields[0]]) == dedupe_key(out[task.text_fields[1]]):
                reason = "identical_pair"
                identical.append(out[task.text_fields[0]])
            elif task.pair_rule == "shorter_target":
                if b * rules.min_compression >= a:
                    reason = "summary_not_shorter"
            elif task.pair_rule == "length_ratio" and max(a, b) / max(1, min(a, b)) > rules.max_length_ratio:
                reason = "length_ratio"
        if reason:
            dropped[reason] += 1
            continue
        kept.append(out)
    if not_a_class:
        raise DataError(
            f"clean: {len(not_a_class)} row(s) have a {task.target_field} that is not one class (the first: "
            f"{', '.join(not_a_class[:SHOW])}). Give one string or integer per row in the column "
            f"{_field_names(task, cfg, [task.target_field])} names"
        )
    if len(identical) > MAX_IDENTICAL_SHARE * pairs:
        examples = "; ".join(repr(t[:60]) for t in identical[:3])
        raise DataError(
            f"clean: {len(identical)} of {pairs} pairs ({len(identical) / pairs:.0%}) have the same text on both "
            f"sides (e.g. {examples}), so the model would learn to copy. Check that "
            f"{_field_names(task, cfg, task.text_fields)} name the two different columns of the data"
        )

    # Keep test copies first, so a given test set is never thinned in favour of train.
    kept.sort(key=lambda r: SPLIT_PRIORITY.get(r.get("split", "train"), 2))
    seen_exact: dict[str, dict] = {}
    seen_norm: dict[str, dict] = {}
    unique: list[dict] = []
    conflicting = 0
    for rec in kept:
        text = rec[task.input_field]
        norm = dedupe_key(text)
        first = seen_exact.get(text) or seen_norm.get(norm)
        if first is not None:
            dropped["duplicate_exact" if text in seen_exact else "duplicate_normalized"] += 1
            if first.get(task.target_field) != rec.get(task.target_field):
                conflicting += 1
            continue
        seen_exact[text] = rec
        seen_norm[norm] = rec
        unique.append(rec)

    lengths = {f: [len(r[f]) for r in unique] for f in task.text_fields}
    report = {
        "rows_in": len(records),
        "rows_out": len(unique),
        "dropped_total": sum(dropped.values()),
        "dropped": dict(sorted(dropped.items())),
        "modified": dict(sorted(modified.items())),
        "duplicates_with_other_target": conflicting,
        **({"identical_pairs": len(identical)} if len(task.text_fields) == 2 else {}),
        "length_chars": {
            f: {"min": min(v), "median": statistics.median(v), "max": max(v)} for f, v in lengths.items() if v
        },
    }
    return unique, report


def run(params: Params, project: str) -> dict:
    cfg = params.project(project)
    task = get_task(cfg.task)
    paths = ProjectPaths.of(project)
    records = read_jsonl(paths.raw / "data.jsonl")
    if not records:
        raise DataError(f"{paths.raw / 'data.jsonl'} holds no records; check data.source")
    kept, report = clean_records(records, task, cfg)
    if not kept:
        raise DataError(
            f"clean dropped all {len(records)} rows ({report['dropped']}); check the field names and "
            "the clean.min_chars / clean.max_chars limits"
        )
    if task.target_field not in task.text_fields:  # labels: a model needs two classes to tell apart
        classes = sorted({r[task.target_field] for r in kept})
        if len(classes) < 2:
            raise DataError(
                f"clean: all {len(kept)} kept rows have the label {classes[0]!r}; a classifier needs at least two "
                f"classes. Check that {_field_names(task, cfg, [task.target_field])} names the label column, or add "
                "examples of the other classes"
            )
    with atomic_dir(paths.clean) as tmp:
        write_jsonl(tmp / "data.jsonl", kept)
    write_json(paths.report("clean"), report)
    logger.info("clean kept %d of %d rows; dropped %s", len(kept), len(records), report["dropped"])
    return {"rows_in": report["rows_in"], "rows_out": report["rows_out"], "dropped": report["dropped"]}
