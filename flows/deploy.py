"""The retraining deployments declared in ``prefect.yaml``, created on the Prefect server
(``python -m flows deploy``, run in the worker's checkout).

``prefect.yaml`` says which deployments exist, with their cron schedules, tags, concurrency limit
and work pool, as ``prefect deploy --all`` reads them. What this module adds to ``prefect deploy
--all`` (Prefect 3.8), which has no way to do these:

- One deployment per project of params.yaml: a deployment whose name holds ``{project}`` is a
  template, made once for every project of the checkout's params.yaml with ``{project}`` filled in
  everywhere and ``parameters.project`` set (``retrain-{project}`` becomes ``retrain-sentiment``
  for a project named sentiment), so adding a project to params.yaml adds its retraining
  deployment. A deployment declared for one project (``parameters.project``) takes the place of the
  template for that project, and one for a project params.yaml does not declare is skipped.
  Prefect's own ``{{ }}`` templating fills in environment variables, Prefect variables, blocks and
  step outputs, one deployment entry at a time; it cannot make entries, so ``prefect deploy
  --all`` would create a deployment literally named ``retrain-{project}``.
- The work pool (type process) is created when the server has none of that name; ``prefect
  deploy`` refuses a deployment whose work pool does not exist.
- Every problem of the ``deployments:`` entries (no name, entrypoint, work pool or cron) is
  reported at once, before anything is created.

- Each worker's flow runs work in that worker's own clone: the deployments' pull step
  (``flows.checkout.enter_checkout``) enters ``PIPELINES_CHECKOUT``, which ``python -m flows worker``
  sets, and only without it the checkout the deployments were created from. Prefect's
  ``set_working_directory`` step takes one folder for every worker.

What is the same as ``prefect deploy --all`` from the checkout: no build or push steps, and the
schedules, parameters, tags and limits of prefect.yaml.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml

from flows.checkout import project_names
from flows.errors import FlowError

logger = logging.getLogger(__name__)

CONFIG = "prefect.yaml"


TEMPLATE_MARK = "{project}"


def _fill(value: Any, project: str) -> Any:
    if isinstance(value, str):
        return value.replace(TEMPLATE_MARK, project)
    if isinstance(value, list):
        return [_fill(v, project) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, project) for k, v in value.items()}
    return value


def expand_templates(declared: list[dict[str, Any]], projects: list[str]) -> list[dict[str, Any]]:
    """One deployment per project for each template (a name holding ``{project}``), except for the
    projects a deployment of their own is declared for."""
    own = {(d.get("parameters") or {}).get("project") for d in declared if TEMPLATE_MARK not in str(d.get("name"))}
    out = []
    for d in declared:
        if TEMPLATE_MARK not in str(d.get("name")):
            out.append(d)
            continue
        for project in projects:
            if project not in own:
                made = _fill(d, project)
                made["parameters"] = {**(made.get("parameters") or {}), "project": project}
                out.append(made)
    return out


def load_deployments(root: Path, names: list[str] | None = None) -> list[dict[str, Any]]:
    """The ``deployments:`` of prefect.yaml (all, or those named), templates made for each project
    of params.yaml, checked for what deploy needs."""
    path = root / CONFIG
    if not path.is_file():
        raise FlowError(f"{path} not found; run from the repository root or pass --checkout")
    declared = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("deployments") or []
    declared = expand_templates(declared, project_names(root))
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


def _worker_checkout(root: Path):
    """The deployments' source: code in ``root`` here, and each worker's own checkout where it runs."""
    from prefect.runner.storage import LocalStorage

    class WorkerCheckout(LocalStorage):
        def to_pull_step(self) -> dict[str, Any]:
            return {"flows.checkout.enter_checkout": {"directory": str(self.destination)}}

    return WorkerCheckout(root)


def require_server(why: str) -> None:
    """A FlowError naming the fix when no Prefect server is configured (``why``: what needs one)."""
    if not os.environ.get("PREFECT_API_URL"):
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value():
            raise FlowError(f"PREFECT_API_URL is not set: {why}. Start one (prefect server start --host "
                            "127.0.0.1) and export PREFECT_API_URL=http://127.0.0.1:4200/api")


def deploy(root: Path, names: list[str] | None = None) -> dict[str, str]:
    """Create or update the deployments; returns {deployment name: id}."""
    from prefect import flow as prefect_flow
    from prefect.schedules import Cron

    require_server("deployments live on a Prefect server")
    root = root.resolve()
    configured = set(project_names(root))
    ids = {}
    for d in load_deployments(root, names):
        project = (d.get("parameters") or {}).get("project")
        if project and project not in configured:
            logger.warning("skipping deployment %s: params.yaml of %s has no project %r", d["name"], root, project)
            continue
        pool = d["work_pool"]
        ensure_work_pool(pool["name"])
        schedules = [Cron(s["cron"], timezone=s.get("timezone") or "UTC", active=s.get("active", True))
                     for s in d.get("schedules") or []]
        deployable = prefect_flow.from_source(source=_worker_checkout(root), entrypoint=d["entrypoint"])
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
