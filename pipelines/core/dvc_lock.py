"""The one module that reads DVC's state (dvc.lock), for lineage tags. It does not import dvc."""

from __future__ import annotations

from pathlib import Path

import yaml


def locked_hashes(root: Path, outputs: list[Path]) -> dict[str, str]:
    """md5 of the given stage outputs as recorded in dvc.lock ({relative path: md5}); missing ones omitted.

    During ``dvc repro`` upstream stages are locked before downstream ones run, so a training stage
    sees the hashes of the data it was given.
    """
    lock = Path(root) / "dvc.lock"
    if not lock.exists():
        return {}
    data = yaml.safe_load(lock.read_text()) or {}
    wanted = {str(Path(o).resolve().relative_to(Path(root).resolve())) for o in outputs}
    found: dict[str, str] = {}
    for stage in (data.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if out.get("path") in wanted and out.get("md5"):
                found[out["path"]] = out["md5"]
    return found
