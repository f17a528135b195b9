"""Stage ingest: read the configured source (and the fixed evaluation set of ``data.eval_source``,
as the test split) into canonical JSON Lines.

dvc.yaml marks this stage always_changed, because a local file or a hub data set can change
without any tracked dependency changing; when its output hash is unchanged, DVC skips the rest.
"""

from __future__ import annotations

import logging

from pipelines.config import Params
from pipelines.data import sources
from pipelines.core.io import atomic_dir, write_json, write_jsonl
from pipelines.core.paths import ProjectPaths
from pipelines.tasks import get_task

logger = logging.getLogger(__name__)


def run(params: Params, project: str) -> dict:
    cfg = params.project(project)
    task = get_task(cfg.task)
    paths = ProjectPaths.of(project)
    raw = sources.load(task, cfg.data, params.common.seed)
    records = raw.records
    extra = {}
    if cfg.data.eval_source is not None:
        # The fixed evaluation set is the test split; the source's own test rows, if any, are left out
        # (counted) rather than moved into training, where they would change what the source meant.
        fixed = sources.load_eval_set(task, cfg.data)
        replaced = sum(1 for r in records if r.get("split") == "test")
        records = [r for r in records if r.get("split") != "test"] + fixed.records
        if any("split" in r for r in records):
            records = [r if "split" in r else {**r, "split": "train"} for r in records]
        extra = {"eval_source": fixed.stats["source"], "eval_rows": len(fixed.records),
                 "source_test_rows_left_out": replaced}
    splits = sorted({r["split"] for r in records if "split" in r})
    info = {**raw.stats, **extra, "rows": len(records), "given_splits": splits}
    with atomic_dir(paths.raw) as tmp:
        write_jsonl(tmp / "data.jsonl", records)
        write_json(tmp / "source.json", info)
    logger.info("ingested %d rows from %s", len(records), info["source"])
    return info
