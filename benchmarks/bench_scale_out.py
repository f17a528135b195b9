"""Scale-out: four flow runs on two workers against one, each worker standing for a machine.

    python -m benchmarks.run scale_out

The topology of docs/scale-out.md on this machine: a Prefect server, an MLflow server, a DVC
remote in a shared folder, and one or two workers of the `gpu` pool, each in its own clone with one
GPU slot (PIPELINES_GPU_SLOTS=cpu) and training on one thread (OMP_NUM_THREADS=1), so that this
2-core machine stands for two one-core machines. Four classification projects of the builtin data
(each its own model: nothing is restored from another's run cache) are submitted at once as
retraining runs; the wall time runs from the first start to the last end that Prefect reports.
Target (issue 24): at least 1.6x faster with two workers.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from devsupport.processes import prefect_server
from devsupport.team import team, wait_for_flow_runs

from .common import default_params, save, seconds_sized

logger = logging.getLogger(__name__)

PROJECTS = ("reviews_a", "reviews_b", "reviews_c", "reviews_d")
SIZE = 1600  # builtin examples per project: training is most of a run, as on a real worker


def _params() -> dict:
    from pipelines.config import merged

    raw = default_params()
    demo = raw["projects"]["classification"]
    block = merged({**demo, "preset": "demo"}, seconds_sized("classification", SIZE))
    return {**{k: raw[k] for k in ("common", "runtime", "tracking")},
            "projects": {name: block for name in PROJECTS}}


def _one_setup(base: Path, machines: tuple[str, ...], prefect_env: dict) -> dict:
    from prefect.deployments import run_deployment

    with team(base, _params(), machines, prefect_env, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
              PIPELINES_FLOW_RETRIES="0") as crew:
        t0 = time.perf_counter()
        submitted = [run_deployment(f"nlp-retrain/retrain-{p}", parameters={"force": True}, timeout=0)
                     for p in PROJECTS]
        runs = wait_for_flow_runs([r.id for r in submitted], timeout=3600)
        waited = time.perf_counter() - t0
        failed = [(r.name, r.state.name, r.state.message) for r in runs if not r.state.is_completed()]
        if failed:
            raise RuntimeError(f"flow runs failed: {failed}\n{crew.logs()}")
        start, end = min(r.start_time for r in runs), max(r.end_time for r in runs)
        per_machine: dict[str, int] = {}
        for r in runs:
            machine = next(t.split(":", 1)[1] for t in r.tags if t.startswith("machine:"))
            per_machine[machine] = per_machine.get(machine, 0) + 1
        return {"workers": len(machines), "wall_seconds": (end - start).total_seconds(),
                "submit_to_done_seconds": waited,
                "run_seconds": sorted(round((r.end_time - r.start_time).total_seconds(), 1) for r in runs),
                "runs_per_machine": per_machine}


def main(root: Path | None = None) -> dict:
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll of the flow runs otherwise
    base = root or Path(tempfile.mkdtemp(prefix="bench-scale-out-"))
    home = base / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    results = {}
    with prefect_server(home) as env:
        os.environ.update(env)
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"], PREFECT_HOME: str(home)}):
            for machines in (("machine-a",), ("machine-a", "machine-b")):
                logger.info("%d worker(s): four flow runs", len(machines))
                results[f"{len(machines)}_workers"] = _one_setup(base / f"{len(machines)}-workers", machines, env)
    one, two = results["1_workers"]["wall_seconds"], results["2_workers"]["wall_seconds"]
    results["speedup"] = one / two
    results["target_speedup"] = 1.6
    results["projects"] = list(PROJECTS)
    results["size"] = SIZE
    save("scale_out", results)
    return results


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(main())
