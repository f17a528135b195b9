"""Command line of the flows.

    python -m flows run <project> [-S key=value ...] [--keep-overrides] [--checkout DIR] [--retries N] [--no-push]
    python -m flows retrain <project> [--force] [--checkout DIR]
    python -m flows deploy [NAME ...] [--checkout DIR]
    python -m flows worker [--checkout DIR] [--pool gpu] [--name NAME]

The same command is `nlp-pipelines flows ...` (the console script) and `python -m pipelines flows ...`.

Without PREFECT_API_URL, `run` and `retrain` use Prefect's local mode (a temporary server for this
process; nothing to start), which may take PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (here 120
unless set) to come up. With it, they report to that server like a worker's runs. `deploy` and `worker`
need a server: `deploy` creates the deployments of prefect.yaml there; `worker` declares this
machine's GPU slots (PIPELINES_GPU_SLOTS, else the visible GPUs) and starts a Prefect worker of the
pool that runs flow runs in this checkout, one at a time (docs/scale-out.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pipelines import __version__


def build_parser(prog: str = "python -m flows") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"nlp-pipelines {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run every stage of a project (DVC skips what is up to date)")
    run.add_argument("project")
    run.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="a param for this run, as `dvc exp run -S` (repeatable); params.yaml is put back "
                          "afterwards unless --keep-overrides")
    run.add_argument("--keep-overrides", action="store_true",
                     help="leave the -S values in params.yaml after the run")
    retrain = sub.add_parser("retrain", help="retrain if the data or params changed since the champion")
    retrain.add_argument("project")
    retrain.add_argument("--force", action="store_true", help="retrain even when nothing changed")
    for sp in (run, retrain):
        sp.add_argument("--checkout", default=".", help="the repository checkout to run in (default: %(default)s)")
        sp.add_argument("--retries", type=int, default=None,
                        help="retries of a failed stage (default: PIPELINES_FLOW_RETRIES or 1)")
        sp.add_argument("--no-push", action="store_true", help="do not `dvc push` outputs at the end")
        sp.add_argument("--no-pull", action="store_true",
                        help="use the checkout as it is: no `git pull`, no restoring from the DVC remote")
    deploy = sub.add_parser("deploy", help="create the deployments of prefect.yaml on the server")
    deploy.add_argument("names", nargs="*", help="deployment names (default: all)")
    deploy.add_argument("--checkout", default=".", help="working directory of the deployments (default: %(default)s)")
    worker = sub.add_parser("worker", help="declare this machine's GPU slots and start a worker in this checkout")
    worker.add_argument("--checkout", default=".", help="the checkout its flow runs work in (default: %(default)s)")
    worker.add_argument("--pool", default="gpu", help="the work pool to poll (default: %(default)s)")
    worker.add_argument("--name", default=None, help="the worker's name (default: <machine>-<checkout folder>)")
    return p


# Seconds Prefect's temporary local server may take to start (Prefect's default is 20): on a small
# machine that is busy with training it can take longer than that.
EPHEMERAL_STARTUP_TIMEOUT_SECONDS = 120


def set_environment_defaults() -> None:
    """Settings of this command unless the user set them; Prefect reads its own when it is first
    imported, so this runs before any module that imports it."""
    from pipelines.core import settings

    settings.apply_environment_defaults(
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=str(EPHEMERAL_STARTUP_TIMEOUT_SECONDS))


def _misspelt_project(checkout: Path, project: str) -> str | None:
    """Why ``project`` looks like a typo of one of the checkout's projects, before any server starts; None
    when it is one of them, or nothing like them (the run's git pull may still bring it)."""
    import difflib

    import yaml

    try:
        projects = (yaml.safe_load((checkout / "params.yaml").read_text()) or {}).get("projects") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    names = [str(name) for name in projects] if isinstance(projects, dict) else []
    if project in names:
        return None
    close = difflib.get_close_matches(project, names, n=1)
    if not close:
        return None
    return (f"project {project!r} is not in {checkout / 'params.yaml'}; did you mean {close[0]!r}? "
            f"(its projects: {', '.join(names)})")


def main(argv: list[str] | None = None, prog: str = "python -m flows") -> int:
    """``prog``: the command's name in usage lines (`nlp-pipelines flows` when called from there)."""
    args = build_parser(prog).parse_args(argv)
    from pipelines.core import settings
    from pipelines.core.errors import ConfigError

    try:
        settings.check()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.get("PIPELINES_LOG_LEVEL"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    set_environment_defaults()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call otherwise
    from flows.errors import FlowError
    from flows.overrides import parse_overrides

    checkout = str(Path(args.checkout).resolve())
    try:
        if args.command == "deploy":
            from flows.deploy import deploy

            ids = deploy(Path(checkout), args.names or None)
            print(json.dumps(ids, indent=2))
            return 0
        if args.command == "worker":
            from flows.worker import start_worker

            return start_worker(Path(checkout), args.pool, args.name)
        typo = _misspelt_project(Path(checkout), args.project)
        if typo:
            print(f"error: {typo}", file=sys.stderr)
            return 2
        from flows.pipeline import pipeline, retrain, start_local_api

        start_local_api()
        common = {"checkout": checkout, "retries": args.retries, "push": not args.no_push, "pull": not args.no_pull}
        if args.command == "run":
            state = pipeline(args.project, overrides=parse_overrides(args.overrides), return_state=True,
                             keep_overrides=args.keep_overrides, **common)
        else:
            state = retrain(args.project, force=args.force, return_state=True, **common)
    except FlowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not state.is_completed():
        print(f"error: {state.message}", file=sys.stderr)
        return 1
    result = state.result()
    print(json.dumps(result if result is not None else {"message": state.message}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
