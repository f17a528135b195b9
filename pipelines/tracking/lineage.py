"""What a model was trained on, and what changed in the data since.

- :func:`lineage`: the hashes a scheduled retraining compares with the champion's tags to decide
  whether anything changed (the raw data and the settings).
- :func:`profile`: the data of the splits as export records it with the model
  (``data_profile.json`` and ``data_rows.txt.gz`` in the export folder): rows per split, a hash
  of every row, the label counts or a length histogram of each text field.
- :func:`compare`: the new data against the champion's profile: rows added and removed, the shift
  of the label and length distributions (total variation distance, 0 = the same, 1 = disjoint),
  and for a tokenizer trained on the champion's data the share of the new text it splits into
  unknown or byte pieces. A change above a threshold of ``export.data_change`` is flagged.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
import statistics
from collections import Counter
from pathlib import Path

from pipelines.core.io import atomic_file, content_hash, read_jsonl

PROFILE_FILE = "data_profile.json"
ROWS_FILE = "data_rows.txt.gz"
SPLITS = ("train", "validation", "test")
# New texts the tokenizer check encodes: enough for a share within about a percent.
TOKENIZER_SAMPLE = 2000
_SP_BYTE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


def lineage(params, project: str, paths) -> dict[str, str]:
    """What a scheduled retraining compares to decide whether anything changed since this model."""
    from pipelines.training.harness import fingerprint

    return {"data.raw.sha256": content_hash(paths.raw),
            "params.sha256": fingerprint(params.common.model_dump(), params.project(project).model_dump())}


def row_key(rec: dict, task) -> str:
    """A row's identity: its input and target, as they are after clean."""
    fields = {f: rec.get(f) for f in (task.input_field, task.target_field)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


def _length_bin(n: int) -> str:
    # Powers of two of characters: a shift from tweets to paragraphs shows, noise within a bin does not.
    return str(int(math.log2(n + 1)))


def profile(splits_dir: Path, task, tokenizer_trained_here: bool) -> tuple[dict, list[str]]:
    """The profile of the split files in ``splits_dir`` and the sorted row hashes."""
    rows, keys = {}, set()
    labels: Counter = Counter()
    lengths: dict[str, list[int]] = {f: [] for f in task.text_fields}
    for split in SPLITS:
        records = read_jsonl(splits_dir / f"{split}.jsonl")
        rows[split] = len(records)
        for rec in records:
            keys.add(row_key(rec, task))
            if task.target_field not in task.text_fields:
                labels[str(rec[task.target_field])] += 1
            for f in task.text_fields:
                lengths[f].append(len(rec[f]))
    out = {"rows": rows, "unique_rows": len(keys), "tokenizer_trained_here": tokenizer_trained_here,
           "lengths": {f: {"median": statistics.median(v) if v else 0,
                           "histogram": dict(sorted(Counter(_length_bin(n) for n in v).items()))}
                       for f, v in lengths.items()}}
    if labels:
        out["labels"] = dict(sorted(labels.items()))
    return out, sorted(keys)


def write_profile(folder: Path, prof: dict, keys: list[str]) -> None:
    with atomic_file(folder / PROFILE_FILE) as fh:
        json.dump(prof, fh, indent=2, sort_keys=True)
    with atomic_file(folder / ROWS_FILE, "wb") as fh:
        fh.write(gzip.compress("\n".join(keys).encode(), mtime=0))


def read_profile(folder: Path) -> tuple[dict, set[str]] | None:
    """The profile export recorded in ``folder``, or None for a model exported without one."""
    if not (folder / PROFILE_FILE).exists() or not (folder / ROWS_FILE).exists():
        return None
    keys = gzip.decompress((folder / ROWS_FILE).read_bytes()).decode().split("\n")
    return json.loads((folder / PROFILE_FILE).read_text()), {k for k in keys if k}


def distribution_shift(a: dict[str, int], b: dict[str, int]) -> float:
    """Total variation distance between two count tables: half the sum of the share differences."""
    ta, tb = sum(a.values()) or 1, sum(b.values()) or 1
    return 0.5 * sum(abs(a.get(k, 0) / ta - b.get(k, 0) / tb) for k in set(a) | set(b))


def unknown_share(tokenizer, texts: list[str]) -> dict:
    """Share of the pieces of ``texts`` that ``tokenizer`` cannot represent as a piece of its
    vocabulary: the unknown token, a SentencePiece byte-fallback piece (<0xNN>), or in a byte-level
    BPE a lone byte of a multi-byte character."""
    if not texts:
        return {"texts": 0, "pieces": 0, "unknown_or_byte_pieces": 0, "share": 0.0}
    byte_level = '"ByteLevel"' in tokenizer.backend_tokenizer.to_str()
    unk = tokenizer.unk_token_id
    pieces = bad = 0
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        pieces += len(ids)
        for piece, i in zip(tokenizer.convert_ids_to_tokens(ids), ids):
            if i == unk or _SP_BYTE.match(piece) or (byte_level and len(piece) == 1 and _high_byte(piece)):
                bad += 1
    return {"texts": len(texts), "pieces": pieces, "unknown_or_byte_pieces": bad,
            "share": bad / pieces if pieces else 0.0}


def _high_byte(char: str) -> bool:
    # GPT-2's byte-to-character table: bytes 0xA1-0xFF (but 0xAD) are their own character; 0x80-0xA0
    # and 0xAD are characters 290-323. Either is one byte of a character that had no piece of its own.
    o = ord(char)
    return (161 <= o <= 255 and o != 173) or 290 <= o <= 323


def compare(champion: tuple[dict, set[str]], current: tuple[dict, list[str]], new_texts: list[str],
            tokenizer, thresholds) -> dict:
    """The current data against the champion's; ``new_texts`` are the input texts of added rows."""
    (old, old_keys), (new, new_keys) = champion, current
    new_set = set(new_keys)
    added, removed = len(new_set - old_keys), len(old_keys - new_set)
    base = max(1, len(old_keys))
    report: dict = {
        "rows": {"champion": len(old_keys), "now": len(new_set), "added": added, "removed": removed,
                 "changed_share": (added + removed) / base},
        "lengths": {f: {"champion_median": old["lengths"][f]["median"], "now_median": v["median"],
                        "shift": distribution_shift(old["lengths"][f]["histogram"], v["histogram"])}
                    for f, v in new["lengths"].items() if f in old.get("lengths", {})},
    }
    if "labels" in new and "labels" in old:
        report["labels"] = {"champion": old["labels"], "now": new["labels"],
                            "unseen_by_champion": sorted(set(new["labels"]) - set(old["labels"])),
                            "shift": distribution_shift(old["labels"], new["labels"])}
    if not old.get("tokenizer_trained_here"):
        report["tokenizer"] = {"skipped": "the champion's tokenizer comes from its checkpoint, not from its data"}
    elif tokenizer is None:
        report["tokenizer"] = {"skipped": "the champion's tokenizer could not be loaded"}
    else:
        report["tokenizer"] = unknown_share(tokenizer, new_texts[:TOKENIZER_SAMPLE])
    flags = []
    if report["rows"]["changed_share"] > thresholds.rows_changed:
        flags.append(f"{added} rows added and {removed} removed: {report['rows']['changed_share']:.0%} of the "
                     f"champion's {len(old_keys)} (export.data_change.rows_changed {thresholds.rows_changed:.0%})")
    shifts = {f"length of {f}": v["shift"] for f, v in report["lengths"].items()}
    if "labels" in report:
        shifts["labels"] = report["labels"]["shift"]
        if report["labels"]["unseen_by_champion"]:
            flags.append(f"labels the champion never saw: {report['labels']['unseen_by_champion']}")
    for what, shift in shifts.items():
        if shift > thresholds.distribution_shift:
            flags.append(f"{what} distribution shifted by {shift:.2f} (total variation; "
                         f"export.data_change.distribution_shift {thresholds.distribution_shift})")
    share = report["tokenizer"].get("share")
    if share is not None and share > thresholds.unknown_pieces:
        flags.append(f"the champion's tokenizer splits {share:.1%} of the new text into unknown or byte pieces "
                     f"(export.data_change.unknown_pieces {thresholds.unknown_pieces:.1%}): retrain the tokenizer")
    report["flags"] = flags
    return report
