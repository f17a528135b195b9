"""The retraining deployments declared in ``prefect.yaml``, created on the Prefect server.

``prefect.yaml`` is the one place that says which deployments exist, with their cron schedules and
work pool; ``python -m flows deploy`` creates them with the worker's checkout as working
directory (``prefect deploy --all`` run in the checkout does the same from the same file).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml

from flows.checkout import FlowError

logger = logging.getLogger(__name__)

CONFIG = "prefect.yaml"


def load_deployments(root: Path, names: list[str] | None = None) -> list[dict[str, Any]]:
    """The ``deployments:`` of prefect.yaml (all, or those named), checked for what deploy needs."""
    path = root / CONFIG
    if not path.is_file():
        raise FlowError(f"{path} not found; run from the repository root or pass --checkout")
    declared = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("deployments") or []
    problems = []
    for i, d in enumerate(declared):
        for key in ("name", "entrypoint"):
            if not d.get(key):
                problems.append(f"deployments[{i}] has no {key}")
        if not (d.get("work_pool") or {}).get("name"):
            problems.append(f"deployments[{i}] ({d.get('name')}) has no work_pool.name")
        for j, s in enumerate(d.get("schedules") or []):
            if not s.get("cron"):
                problems.append(f"deployments[{i}].schedules[{j}] ({d.get('name')}) has no cron")
    if problems:
        raise FlowError(f"{path}: " + "; ".join(problems))
    if names:
        unknown = sorted(set(names) - {d["name"] for d in declared})
        if unknown:
            raise FlowError(f"no deployment {unknown} in {path}; declared: {', '.join(d['name'] for d in declared)}")
        declared = [d for d in declared if d["name"] in names]
    return declared


def ensure_work_pool(name: str, pool_type: str = "process") -> bool:
    """Create the work pool if it does not exist (idempotent); True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type))
            logger.info("created work pool %r (type %s)", name, pool_type)
            return True
    if pool.type != pool_type:
        logger.warning("work pool %r is of type %s, not %s", name, pool.type, pool_type)
    return False


def deploy(root: Path, names: list[str] | None = None) -> dict[str, str]:
    """Create or update the deployments; returns {deployment name: id}."""
    from prefect import flow as prefect_flow
    from prefect.schedules import Cron

    if not os.environ.get("PREFECT_API_URL"):
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            raise FlowError("PREFECT_API_URL is not set: deployments live on a Prefect server. Start one "
                            "(prefect server start --host 127.0.0.1) and export "
                            "PREFECT_API_URL=http://127.0.0.1:4200/api")
    root = root.resolve()
    configured = set(yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8")) or {})
    ids = {}
    for d in load_deployments(root, names):
        project = (d.get("parameters") or {}).get("project")
        if project and project not in configured:
            logger.warning("skipping deployment %s: params.yaml of %s has no %r block", d["name"], root, project)
            continue
        pool = d["work_pool"]
        ensure_work_pool(pool["name"])
        schedules = [Cron(s["cron"], timezone=s.get("timezone") or "UTC", active=s.get("active", True))
                     for s in d.get("schedules") or []]
        deployable = prefect_flow.from_source(source=str(root), entrypoint=d["entrypoint"])
        ids[d["name"]] = str(deployable.deploy(
            name=d["name"], work_pool_name=pool["name"], work_queue_name=pool.get("work_queue_name"),
            job_variables=pool.get("job_variables") or {}, parameters=d.get("parameters") or {},
            schedules=schedules, concurrency_limit=d.get("concurrency_limit"), tags=d.get("tags"),
            description=d.get("description"), paused=d.get("paused"), build=False, push=False,
            print_next_steps=False, ignore_warnings=True,
        ))
        logger.info("deployment %s/%s -> pool %s, schedules %s, working directory %s", deployable.name, d["name"],
                    pool["name"], [s["cron"] for s in d.get("schedules") or []] or "none", root)
    return ids
