"""Has anything changed since the champion was trained? Compares the lineage tags the export stage
put on the champion version (``data.raw.sha256``, ``params.sha256``) with the same hashes of the
checkout now, computed by the same function (pipelines.tracking.lineage) so the two can never disagree.

    python -m flows.lineage <project>     # in the checkout, after ingest; prints one JSON object

It runs as a command in the checkout, like a stage, so the MLflow store is found the way the
stages find it (MLFLOW_TRACKING_URI, else mlflow.db in the checkout).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

LABELS = {"data.raw.sha256": "source data (data/<project>/raw)", "params.sha256": "params (common + project block)"}


def compare(project: str, params_file: str = "params.yaml") -> dict:
    """The champion's lineage against the checkout's: ``changed`` and the reasons, in words."""
    from pipelines.tracking import registry, runs as tracking
    from pipelines.config import load_params
    from pipelines.core.errors import DataError
    from pipelines.tracking.lineage import lineage
    from pipelines.core.paths import ProjectPaths

    params = load_params(params_file)
    paths = ProjectPaths.of(project)
    if not paths.raw.is_dir():
        raise DataError(f"{paths.raw} does not exist; run `dvc repro --single-item ingest@{project}` first")
    current = lineage(params, project, paths)
    name = tracking.registered_name(params, project)
    champion = registry.version_info(name, registry.CHAMPION)
    result = {"registered_model": name, "current": current, "champion_version": None, "champion_run_id": None,
              "champion_lineage": {}}
    if champion is None:
        return {**result, "changed": True, "reasons": [f"registered model {name!r} has no champion yet"]}
    tags = champion["tags"]
    reasons = []
    for key, value in current.items():
        label = LABELS.get(key, key)
        if not tags.get(key):
            reasons.append(f"champion version {champion['version']} has no {key} tag; cannot tell whether "
                           f"the {label} changed")
        elif tags[key] != value:
            reasons.append(f"{label} changed since champion version {champion['version']} "
                           f"({tags[key][:12]} -> {value[:12]})")
    return {**result, "changed": bool(reasons), "reasons": reasons, "champion_version": champion["version"],
            "champion_run_id": champion["run_id"], "champion_lineage": {k: tags.get(k) for k in current}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.lineage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from pipelines.core.errors import PipelineError

    try:
        result = compare(args.project, args.params)
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
