"""GPU slots: one GPU per flow run that trains, the other runs wait in Prefect until one is free.

A machine offers its GPUs as slots (``PIPELINES_GPU_SLOTS``, else the GPUs ``CUDA_VISIBLE_DEVICES``
or the driver shows, else one CPU slot). Prefect counts them: a global concurrency limit named
``gpu-slots-<machine>`` with one slot per GPU, which the stages that train or run the model
(pretrain, finetune, compress, evaluate) hold together; a run that finds every slot taken waits on
Prefect's limit, and a slot whose holder died comes back when its lease runs out. Which GPU of the
machine a run gets is the first whose lock file (in the machine's temporary folder) no live process
holds, and the stages see only that GPU (``CUDA_VISIBLE_DEVICES``). Ingest, clean, split, tokenize
and export hold no slot, so several checkouts on one machine prepare data while one of them trains.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from flows.errors import FlowError

LIMIT_PREFIX = "gpu-slots-"
# The stages that put a model on the device; the others run on the processor only.
GPU_STAGES = ("pretrain", "finetune", "compress", "evaluate")
# A run waits this long for a free slot before failing (a long training elsewhere holds it).
SLOT_TIMEOUT_SECONDS = 24 * 3600


def machine_name() -> str:
    """``PIPELINES_MACHINE``, else this host's name: the workers of one machine share its GPUs."""
    from pipelines.core import settings

    return settings.get("PIPELINES_MACHINE").strip() or socket.gethostname()


def tag_flow_run_with_machine() -> None:
    """Tag the running flow run ``machine:<name>``: the Prefect UI, and whoever waits on the run,
    see where it ran."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        tags = set(client.read_flow_run(flow_run.id).tags or ())
        client.update_flow_run(flow_run.id, tags=sorted(tags | {f"machine:{machine_name()}"}))


def limit_name(machine: str | None = None) -> str:
    return LIMIT_PREFIX + (machine or machine_name())


def _visible_gpus() -> tuple[str, ...]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return tuple(part.strip() for part in visible.split(",") if part.strip() and part.strip() != "-1")
    try:
        import torch

        return tuple(str(i) for i in range(torch.cuda.device_count()))
    except Exception:  # no usable CUDA driver: the processor trains
        return ()


def declared_slots() -> tuple[str, ...]:
    """This machine's slots: GPU ids, or ``cpu-N`` names where training runs on the processor."""
    from pipelines.core import settings

    return settings.get("PIPELINES_GPU_SLOTS") or _visible_gpus() or ("cpu-0",)


def slot_env(slot: str) -> dict[str, str]:
    """What a stage's environment gets for ``slot``: that GPU only, or none for a CPU slot."""
    return {"CUDA_VISIBLE_DEVICES": "" if slot.startswith("cpu") else slot}


def declare(slots: tuple[str, ...], machine: str | None = None, update: bool = True) -> int:
    """Create the machine's limit on the Prefect server with one slot per entry of ``slots``, or
    (``update``) set the limit of an existing one to that; returns the limit now in force."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = limit_name(machine)
    with get_client(sync_client=True) as client:
        try:
            current = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=len(slots)))
                return len(slots)
            except ObjectAlreadyExists:  # another run of this machine created it a moment ago
                current = client.read_global_concurrency_limit_by_name(name)
        if update and (current.limit != len(slots) or not current.active):
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=len(slots), active=True))
            return len(slots)
        return current.limit


def _lock_dir(machine: str) -> Path:
    # Per machine, not per checkout: every worker of the machine must see the same files.
    path = Path(tempfile.gettempdir()) / "nlp-pipelines-gpu-slots" / machine
    path.mkdir(parents=True, exist_ok=True)
    return path


def _claim_device(slots: tuple[str, ...], machine: str):
    """The first slot whose lock no live process holds, with its lock held (released by the OS if
    this process dies). Prefect's limit lets no more runs through than there are slots, so one is free
    unless a process outside the flows holds a lock, which the error then says."""
    from filelock import FileLock, Timeout

    for slot in slots:
        lock = FileLock(str(_lock_dir(machine) / f"{slot}.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue
        return slot, lock
    raise FlowError(f"Prefect's limit {limit_name(machine)!r} gave this run a slot, but every GPU of {machine} "
                    f"({', '.join(slots)}) is held by another process (lock files in {_lock_dir(machine)}). "
                    f"Two machines share the name {machine!r}, or the limit is larger than PIPELINES_GPU_SLOTS: "
                    f"give each machine its own PIPELINES_MACHINE, or set the limit to the number of slots")


@contextlib.contextmanager
def gpu_slot(on_wait: Callable[[str], None] | None = None,
             timeout: float = SLOT_TIMEOUT_SECONDS) -> Iterator[tuple[str, dict[str, str]]]:
    """Hold one of this machine's GPU slots for the ``with`` block; yields the slot's name
    (``<machine>/<GPU id>``) and the environment the stages of the block run in. The slot is given
    back when the block ends, however it ends."""
    from prefect.concurrency.sync import concurrency

    machine = machine_name()
    slots = declared_slots()
    declare(slots, machine, update=False)  # a worker started without `flows worker` has none yet
    name = limit_name(machine)
    if on_wait is not None:
        on_wait(f"taking one of {len(slots)} slot(s) of {name!r} (waits while every one is held)")
    try:
        with concurrency(name, occupy=1, timeout_seconds=timeout, strict=True):
            slot, lock = _claim_device(slots, machine)
            try:
                yield f"{machine}/{slot}", slot_env(slot)
            finally:
                lock.release()
    except TimeoutError:
        raise FlowError(f"no GPU slot of {machine} became free within {timeout:.0f} s (limit {name!r}); "
                        "other runs are training on every one") from None
