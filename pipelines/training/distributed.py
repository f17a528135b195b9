"""Training on several processes: how many there are, which one this is, and launching them.

With ``PIPELINES_NUM_PROCESSES`` above 1, ``python -m pipelines pretrain|finetune`` becomes the
launcher (torch.distributed.run, as ``torchrun``) of that many copies of itself and waits for them.
Each copy trains on its own batches of the params' ``batch_size`` and DDP averages the gradients, so
one optimiser step sees ``batch_size x gradient_accumulation_steps x processes`` examples. The main
process (rank 0) alone logs to MLflow and writes what the stage outputs; every process runs the
Trainer, whose collective operations need them all.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys

from pipelines.core import settings
from pipelines.core.errors import ConfigError

logger = logging.getLogger(__name__)


def requested() -> int:
    """How many processes PIPELINES_NUM_PROCESSES asks for: ``auto`` is one per visible GPU, 1 without."""
    value = settings.get("PIPELINES_NUM_PROCESSES")
    if value == "auto":
        import torch

        return torch.cuda.device_count() or 1
    return value


def launched() -> bool:
    """True in a process that torchrun started (it sets LOCAL_RANK for each)."""
    return "LOCAL_RANK" in os.environ


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True on one process alone: the one that logs, and writes the stage's outputs."""
    return rank() == 0


def backend(device: str) -> str:
    """The collective backend between processes on ``device``."""
    return "nccl" if device == "cuda" else "gloo"


def join(device: str) -> None:
    """Join the process group of this training (nothing on one process), which the Trainer then uses;
    on CUDA each process takes the GPU of its local rank."""
    if world_size() == 1:
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if device == "cuda":
        gpus = torch.cuda.device_count()
        if gpus < int(os.environ.get("LOCAL_WORLD_SIZE", world_size())):
            # nccl refuses two processes on one GPU, after minutes of loading.
            raise ConfigError(f"PIPELINES_NUM_PROCESSES={settings.get('PIPELINES_NUM_PROCESSES')} starts "
                              f"{world_size()} processes, one per GPU, and {gpus} GPU(s) are visible: use auto "
                              "(one per visible GPU) or fewer processes")
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend(device))
    atexit.register(dist.destroy_process_group)  # nccl warns of a group left open at exit


def barrier() -> None:
    """Wait here until every process of the training has come here (nothing on one process)."""
    if world_size() == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        raise RuntimeError("barrier() before join(device): the processes have no group to wait in")
    dist.barrier()


def exit_with_launcher() -> None:
    """Make this process die when its launcher dies (Linux). torchrun starts each process in a session
    of its own, so a kill of the launcher's process group (an interrupted `dvc repro`) would leave
    them training on and writing outputs that nothing waits for."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the launcher died before the line above
        os.kill(os.getpid(), signal.SIGKILL)


def launch(argv: list[str], processes: int) -> int:
    """Run ``python -m pipelines <argv>`` on ``processes`` processes of this machine and wait for them.

    Returns the stage's exit code: of the processes that ended with an error of their own (not
    stopped by torchrun once one had failed), the main one's, since the others then fail for want of
    it, else the first one's.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # Each process logs its own errors; torchrun's account of them is a traceback of its own.
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    logger.info("training on %d processes", processes)
    # --standalone: the rendezvous listens on port 0 of localhost, so each launch gets a free port from
    # the system and two trainings on one machine never meet on torchrun's fixed default (29500).
    args = parse_args(["--standalone", "--nproc-per-node", str(processes), "--module", "pipelines", *argv])
    try:
        run(args)
    except ChildFailedError as exc:
        own = {r: f for r, f in exc.failures.items() if f.exitcode > 0}  # a negative one is a signal's
        if own:
            failed_rank = 0 if 0 in own else min(own, key=lambda r: (own[r].timestamp, r))
            failure = own[failed_rank]
        else:
            failed_rank, failure = exc.get_first_failure()
        code = failure.exitcode if failure.exitcode > 0 else 128 - failure.exitcode  # -9: 137, as a shell says
        logger.error("process %d of %d ended with exit code %d", failed_rank, processes, code)
        return code
    except SignalException as exc:  # the launcher was stopped; it has stopped the processes
        if exc.sigval == signal.SIGINT:
            raise KeyboardInterrupt from None
        return 128 + int(exc.sigval)
    return 0
