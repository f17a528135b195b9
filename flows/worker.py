"""``python -m flows worker``: one worker of the ``gpu`` pool in one checkout.

It declares the machine's GPU slots on the Prefect server (flows/gpu_slots.py), creates the work
pool if the server has none, and becomes ``prefect worker start --limit 1`` in the checkout, with
``PIPELINES_CHECKOUT`` set so that every deployment's flow runs work in this clone. One flow run
at a time per checkout: DVC runs one command per workspace, so a second run there would only wait
for the checkout lock while another worker could take it. A machine runs several runs at once with
one checkout and worker each; they share its GPU slots.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from flows.checkout import check_project
from flows.deploy import ensure_work_pool, require_server
from flows.gpu_slots import declare, declared_slots, limit_name, machine_name

logger = logging.getLogger(__name__)


def worker_command(pool: str, name: str) -> list[str]:
    return [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--name", name, "--limit", "1"]


def start_worker(checkout: Path, pool: str = "gpu", name: str | None = None) -> int:
    """Declare the slots, then replace this process by the Prefect worker (its signals, its exit code)."""
    require_server("a worker polls a work pool on a Prefect server")
    root = checkout.resolve()
    check_project(root)
    machine = machine_name()
    slots = declared_slots()
    limit = declare(slots, machine)
    ensure_work_pool(pool)
    name = name or f"{machine}-{root.name}"
    logger.info("machine %s: %d GPU slot(s) (%s) in Prefect limit %r; worker %r of pool %r runs flows in %s",
                machine, limit, ", ".join(slots), limit_name(machine), name, pool, root)
    env = {**os.environ, "PIPELINES_CHECKOUT": str(root), "PIPELINES_MACHINE": machine}
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(root)
    os.execvpe(sys.executable, worker_command(pool, name), env)
    return 0  # not reached: execvpe does not return
