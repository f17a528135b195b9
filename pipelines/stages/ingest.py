"""Stage ingest: read the configured source into canonical JSON Lines.

dvc.yaml marks this stage always_changed, because a local file or a hub data set can change
without any tracked dependency changing; when its output hash is unchanged, DVC skips the rest.
"""

from __future__ import annotations

import logging

from ..config import Params
from ..data import sources
from ..io import atomic_dir, write_json, write_jsonl
from ..paths import ProjectPaths
from ..tasks import get_task

logger = logging.getLogger(__name__)


def run(params: Params, project: str) -> dict:
    cfg = params.project(project)
    task = get_task(cfg.task)
    paths = ProjectPaths.of(project)
    raw = sources.load(task, cfg.data, params.common.seed)
    splits = sorted({r["split"] for r in raw.records if "split" in r})
    info = {**raw.stats, "rows": len(raw.records), "given_splits": splits}
    with atomic_dir(paths.raw) as tmp:
        write_jsonl(tmp / "data.jsonl", raw.records)
        write_json(tmp / "source.json", info)
    logger.info("ingested %d rows from %s", len(raw.records), info["source"])
    return info
