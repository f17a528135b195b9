"""Stage configure: write a project's resolved settings, one file per part that a stage reads.

A project's block in params.yaml is laid over its preset (pipelines/presets/<task>.yaml) and the defaults in
pipelines/config/ and the task's project class. DVC tracks params.yaml keys, not what a preset or a default fills in, so each
stage of the project depends on the files written here for the settings it reads: a change to a
preset's value, a key set in params.yaml or a default re-runs exactly the stages that read it,
and the files show what the project runs with.
"""

from __future__ import annotations

import json

from pipelines.config import Params
from pipelines.core.io import atomic_file
from pipelines.core.paths import ProjectPaths

# The parts of a project's settings that stages read, as dotted keys of its block; "project" is the
# whole block (export records all of it). dvc.yaml declares configs/<project>/<part>.json per stage.
PARTS = ("project", "data", "clean", "split", "tokenizer", "model", "model.init", "pretrain", "finetune", "compress",
         "evaluate", "export", "export.onnx_opset")


def part_values(cfg, part: str):
    """The settings of one part of a resolved project block, as JSON values."""
    values = cfg.model_dump(mode="json")
    if part == "project":
        return values
    for key in part.split("."):
        values = values[key]
    return values


def run(params: Params, project: str) -> dict:
    cfg = params.project(project)
    paths = ProjectPaths.of(project)
    for part in PARTS:
        # The task is in every file: a project that changes task changes every stage.
        content = {"name": project, "task": cfg.task, "preset": cfg.preset, part: part_values(cfg, part)}
        with atomic_file(paths.config(part)) as fh:
            json.dump(content, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
    return {"task": cfg.task, "preset": cfg.preset, "files": [str(paths.config(p).relative_to(paths.root))
                                                             for p in PARTS]}
