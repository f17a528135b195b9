"""File formats between stages (JSON Lines, flat JSON) and atomic writes.

Every output is written to a temporary sibling and renamed into place, so an interrupted stage
never leaves a half-written output that DVC could cache.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

logger = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    """This machine and PID namespace, short: a pid means something only where it was issued (another
    container or a host sharing the folder over NFS has processes this one cannot see)."""
    import hashlib
    import socket

    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = ""
    return hashlib.sha1(f"{socket.gethostname()}:{namespace}".encode()).hexdigest()[:8]


def _writer() -> str:
    return f"{os.getpid()}.{_host_tag()}"


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove what a killed writer of ``target`` left beside it (``.<name>.tmp-<pid>.<host>-*`` and
    ``.<name>.old-<pid>.<host>``): the process that made them is gone, so nothing will ever finish
    them. Temporaries of a live process, or of a writer on another machine or in another container
    (whose pids this process cannot check), are kept; ones that name no writer are removed."""
    removed = []
    parent = Path(target).parent
    if not parent.is_dir():
        return removed
    host = _host_tag()
    for kind in ("tmp", "old"):
        for leftover in parent.glob(f".{Path(target).name}.{kind}-*"):
            writer = leftover.name.rsplit(f".{kind}-", 1)[1].split("-", 1)[0]
            pid, _, tag = writer.partition(".")
            if pid.isdigit() and tag and (tag != host or _alive(int(pid))):
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
    if removed:
        logger.info("removed %d temporary output(s) an interrupted run left beside %s", len(removed), target)
    return removed


@contextlib.contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{_writer()}-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{_writer()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: Path, mode: str = "w") -> Iterator[Any]:
    """Open a temporary sibling of ``target`` for writing; rename it over ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-{_writer()}-", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _clean_floats(obj: Any) -> Any:
    # JSON has no NaN/inf; DVC and MLflow both choke on them.
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else round(obj, 6)
    if isinstance(obj, dict):
        return {k: _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, sorted keys, NaN as null."""
    with atomic_file(path) as fh:
        json.dump(_clean_floats(data), fh, indent=2, sort_keys=True, ensure_ascii=False)
        fh.write("\n")


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_json_if_present(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or unreadable (a report not written yet)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_jsonl(path: Path, records: Iterable[dict]) -> int:
    """Write records as JSON Lines (atomically); return how many."""
    n = 0
    with atomic_file(path) as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False))
            fh.write("\n")
            n += 1
    return n


_JSON_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false",
               type(None): "null"}


def iter_jsonl(lines: Iterable[str], path, error: type[Exception] = ValueError) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a malformed line raises ``error`` naming the file and line."""
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}:{i}: not valid JSON ({exc.msg} at column {exc.colno}); fix or remove that line") from None
        if not isinstance(rec, dict):
            kind = _JSON_KINDS.get(type(rec), type(rec).__name__)
            raise error(f"{path}:{i}: expected one JSON object ({{...}}) per line, got {kind}; "
                        "JSON Lines holds one object per line, fix or remove that line")
        yield i, rec


def parse_jsonl(lines: Iterable[str], path, error: type[Exception] = ValueError) -> list[dict]:
    """One object per non-blank line; a malformed line raises ``error`` naming the file and line number."""
    return [rec for _, rec in iter_jsonl(lines, path, error)]


def read_jsonl(path: Path) -> list[dict]:
    """Read JSON Lines written between stages."""
    with open(path, encoding="utf-8") as fh:
        return parse_jsonl(fh, path)


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write a small CSV (for DVC plots) atomically."""
    import csv

    with atomic_file(path) as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c) for c in columns})


def content_hash(path: Path) -> str:
    """A stable sha256 over the files under ``path`` (names and bytes), for lineage tags."""
    import hashlib

    h = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path if path.is_dir() else path.parent)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
