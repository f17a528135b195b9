"""Flows: what Prefect orchestration costs on top of plain `dvc repro`, and how long a scheduled
retraining that finds nothing changed takes to end.

    python -m benchmarks.run flows

With one long-lived Prefect server, three fresh copies of the same tiny classification project:
  - plain `dvc repro` (the reference);
  - `python -m flows run classification --no-push` (wall time of the command, interpreter start
    included, and the flow run's own duration as the server recorded it);
  - the `retrain-classification` deployment triggered by hand and run by a `gpu` process worker
    (trigger to final state: worker pick-up, flow process start, lineage check included);
then the same deployment again, which finds nothing changed and ends early.

Target (issue 4): flow run / plain `dvc repro` <= 1.15. On a machine shared with other work the
wall-time ratio moves with the other load; the CPU-time ratio and the fixed cost measured with
nothing to do (a flow run where DVC skips every stage, against a `dvc repro` that does nothing)
are the steadier figures.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

from devsupport.processes import free_port, stop_group, wait_for_http
from devsupport.workspace import make_repo_copy, pipeline_env

from .common import ROOT, SHARED, project_params, save, seconds_sized

logger = logging.getLogger(__name__)

PROJECT = "classification"
WORKER_POLL_SECONDS = 2  # how often the worker asks for work (Prefect's default is 10)


def _params() -> tuple[dict, str]:
    """The `demo` preset sized to run in seconds; the builtin data when its generator exists, else
    an SST-2 subset."""
    overrides = seconds_sized(PROJECT)
    if importlib.util.find_spec(f"pipelines.data.builtin_{PROJECT}") is not None:
        return project_params(PROJECT, overrides=overrides), "builtin (tiny)"
    work = Path(tempfile.mkdtemp(prefix="bench-flows-data-"))
    for split, n in (("train", 400), ("validation", 60), ("test", 80)):
        lines = (SHARED / PROJECT / "sst2" / f"{split}.jsonl").read_text().splitlines()[:n]
        (work / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    overrides["data"]["source"] = str(work)
    return project_params(PROJECT, overrides=overrides), "sst2 subset 400/60/80"


def _copy(base: Path, name: str, params: dict) -> Path:
    root = make_repo_copy(base / name, params)
    # flows/ and prefect.yaml may not be committed yet
    shutil.copytree(ROOT / "flows", root / "flows", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "prefect.yaml", root / "prefect.yaml")
    return root


def _timed(cmd: list[str], root: Path, env: dict) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, the command and all it started) and stdout of ``cmd``.

    On a shared machine the wall time moves with the other load; CPU time much less, so the
    ratio of CPU times is the steadier measure of what orchestration adds."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=log.parent, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> float:
    """Seconds until the server at ``url`` answers its health check."""
    t0 = time.perf_counter()
    wait_for_http(f"{url}/health", proc, timeout, log=log.read_text)
    return time.perf_counter() - t0


def _flow_run_seconds(flow_run) -> float | None:
    if flow_run.start_time and flow_run.end_time:
        return round((flow_run.end_time - flow_run.start_time).total_seconds(), 2)
    return None


def main() -> dict:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call otherwise
    base = Path(tempfile.mkdtemp(prefix="bench-flows-"))
    params, data = _params()
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    home = base / "prefect-home"
    home.mkdir()
    prefect_env = {"PREFECT_API_URL": url, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                   "PREFECT_WORKER_QUERY_SECONDS": str(WORKER_POLL_SECONDS)}
    bin_dir = Path(sys.executable).parent
    server_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    server_env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    server = _start([str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                    server_env, home / "server.log")
    worker = None
    try:
        server_ready = _wait_healthy(url, server, home / "server.log")
        logger.info("prefect server ready in %.1f s", server_ready)

        plain_root = _copy(base, "plain", params)
        logger.info("plain dvc repro")
        plain, plain_cpu, _ = _timed([sys.executable, "-m", "dvc", "repro"], plain_root, pipeline_env(plain_root))

        cli_root = _copy(base, "cli", params)
        logger.info("python -m flows run")
        cli_env = pipeline_env(cli_root, **prefect_env)
        cli, cli_cpu, out = _timed([sys.executable, "-m", "flows", "run", PROJECT, "--no-push"], cli_root, cli_env)
        cli_run_id = json.loads(out[out.index("{"):])["flow_run_id"]
        # everything up to date: what a flow run costs on top of `dvc repro` when no stage has work
        noop_cli, _, _ = _timed([sys.executable, "-m", "flows", "run", PROJECT, "--no-push"], cli_root, cli_env)
        noop_plain, _, _ = _timed([sys.executable, "-m", "dvc", "repro"], plain_root, pipeline_env(plain_root))
        cli_retrain, _, _ = _timed([sys.executable, "-m", "flows", "retrain", PROJECT, "--no-push"], cli_root, cli_env)

        worker_root = _copy(base, "worker", params)
        worker_env = pipeline_env(worker_root, **prefect_env)
        subprocess.run([str(bin_dir / "prefect"), "work-pool", "create", "gpu", "--type", "process"], env=worker_env,
                       check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "flows", "deploy", "retrain-classification"], cwd=worker_root,
                       env=worker_env, check=True, capture_output=True)
        worker = _start([str(bin_dir / "prefect"), "worker", "start", "--pool", "gpu"], worker_env,
                        home / "worker.log")
        time.sleep(WORKER_POLL_SECONDS + 3)  # let the worker come up: its start is not what is measured

        from prefect.client.orchestration import get_client
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: url, PREFECT_HOME: str(home)}):
            with get_client(sync_client=True) as client:
                cli_run = client.read_flow_run(UUID(cli_run_id))
            runs = {}
            for label in ("first", "unchanged"):
                logger.info("deployment run (%s)", label)
                t0 = time.perf_counter()
                flow_run = run_deployment("nlp-retrain/retrain-classification", timeout=1800, poll_interval=0.5)
                wall = time.perf_counter() - t0
                if not flow_run.state.is_completed():
                    raise RuntimeError(f"deployment run {label} ended {flow_run.state.name}: {flow_run.state.message}")
                runs[label] = {"wall": wall, "flow_run": _flow_run_seconds(flow_run), "state": flow_run.state.name}
    finally:
        if worker is not None:
            stop_group(worker)
        stop_group(server)

    cli_flow = _flow_run_seconds(cli_run)
    results = {
        "data": data,
        "prefect_server_start_seconds": round(server_ready, 1),
        "plain_dvc_repro_seconds": round(plain, 1),
        "plain_dvc_repro_cpu_seconds": round(plain_cpu, 1),
        "flow_cli": {"wall_seconds": round(cli, 1), "flow_run_seconds": cli_flow,
                     "overhead_ratio": round(cli / plain, 3),
                     "cpu_seconds": round(cli_cpu, 1), "cpu_overhead_ratio": round(cli_cpu / plain_cpu, 3),
                     "flow_run_overhead_ratio": round(cli_flow / plain, 3) if cli_flow else None},
        "nothing_to_do": {"flow_cli_seconds": round(noop_cli, 1), "plain_dvc_repro_seconds": round(noop_plain, 1),
                          "fixed_overhead_seconds": round(noop_cli - noop_plain, 1),
                          "overhead_ratio_from_fixed_cost": round((plain + noop_cli - noop_plain) / plain, 3)},
        "deployment_on_worker": {"trigger_to_end_seconds": round(runs["first"]["wall"], 1),
                                 "flow_run_seconds": runs["first"]["flow_run"],
                                 "overhead_ratio": round(runs["first"]["wall"] / plain, 3),
                                 "worker_poll_seconds": WORKER_POLL_SECONDS},
        "retrain_unchanged": {"deployment_trigger_to_end_seconds": round(runs["unchanged"]["wall"], 1),
                              "deployment_flow_run_seconds": runs["unchanged"]["flow_run"],
                              "final_state": runs["unchanged"]["state"],
                              "cli_wall_seconds": round(cli_retrain, 1)},
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "targets": {"overhead_ratio": 1.15},
    }
    shutil.rmtree(base, ignore_errors=True)
    save("flows", results)
    return results
