"""The one command line that dvc.yaml, the Prefect flows and users call; installed as the console
script `nlp-pipelines`, which takes the same arguments as `python -m pipelines`.

    python -m pipelines <stage> <project> [--params params.yaml]
    python -m pipelines check [--params params.yaml]
    python -m pipelines predict <project> INPUT [--model DIR_OR_URI] [--output PATH]
    python -m pipelines registry <project> [promote VERSION | rollback] [--reason TEXT] [--json]
    python -m pipelines sweep <project> -S 'KEY=choice(...)|range(lo,hi)|loguniform(lo,hi)' ... [see sweep --help]
    python -m pipelines demo [PROJECT ...] [--model DIR_OR_URI] [--host 127.0.0.1] [--port 7860]
    python -m pipelines summary [--params params.yaml]
    python -m pipelines flows run|retrain|deploy ...      (the Prefect flows: python -m flows, see flows --help)
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys

from pipelines import __version__
from pipelines.stages import STAGES, TRAINING_STAGES

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SUBCOMMANDS = ("predict", "registry", "sweep", "demo", "flows")  # commands with arguments of their own

logger = logging.getLogger("pipelines")


def version() -> str:
    """What every command's --version prints."""
    return f"nlp-pipelines {__version__}"


def plugin(group: str, name: str):
    """What the package ``flows`` (installed beside this one) adds to the command line, found through the
    entry points pyproject.toml declares, so that this package never imports the flows that import it."""
    from importlib.metadata import entry_points

    from pipelines.core.errors import PipelineError

    found = entry_points(group=group, name=name)
    if not found:
        raise PipelineError(f"nothing provides {name!r} ({group} entry point): the installation is incomplete; "
                            "run `make setup` (or `pip install -e .`) in the repository")
    return next(iter(found)).load()


def command_name() -> str:
    """The command as it was typed, for usage lines: the console script or `python -m pipelines`."""
    return "nlp-pipelines" if os.path.basename(sys.argv[0]) == "nlp-pipelines" else "python -m pipelines"


def _parser(subcommand: str | None, description: str | None) -> argparse.ArgumentParser:
    prog = f"{command_name()} {subcommand}" if subcommand else command_name()
    p = argparse.ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=version())
    p.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS,
                   help="default: PIPELINES_LOG_LEVEL, else INFO")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _parser(None, __doc__)
    p.add_argument("stage", choices=STAGES + ("check", "summary") + SUBCOMMANDS,
                   help="stage to run, 'check' to validate params only, 'summary' for one line per project, "
                        "'predict', 'registry', 'sweep', 'demo' or 'flows' (see their --help)")
    p.add_argument("project", nargs="?", help="a project of params.yaml (under projects:)")
    p.add_argument("--params", default="params.yaml", help="path to params.yaml (default: %(default)s)")
    return p


def _start(log_level: str | None) -> None:
    """What every command does first: validate the environment settings, configure logging."""
    from pipelines.training import distributed
    from pipelines.core import settings

    settings.check()
    level = log_level or settings.get("PIPELINES_LOG_LEVEL")
    layout = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    if distributed.launched():  # one process of a multi-process training
        distributed.exit_with_launcher()
        layout = f"%(asctime)s %(levelname)s [process {distributed.rank()}] %(name)s: %(message)s"
        if not distributed.is_main_process() and level == "INFO":
            level = "WARNING"  # the main process tells the progress; the others would repeat it
    logging.basicConfig(level=level, format=layout, datefmt="%H:%M:%S")
    settings.apply_environment_defaults()
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx", "httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _report(message: str) -> None:
    # Into the log (a stage's log in DVC or Prefect) when logging is set up, and always to stderr.
    if logging.getLogger().handlers:
        logger.error("%s", message)
    print(f"error: {message}", file=sys.stderr)


def disk_full(exc: BaseException) -> str | None:
    """A message for an error caused by a full disk (an OSError ENOSPC, or SQLite's "database or disk
    is full" as MLflow and DVC wrap it), naming where; None for any other error."""
    import errno
    import shutil

    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        where = None
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, errno.EDQUOT):
            where = cur.filename or os.getcwd()
        elif "database or disk is full" in str(cur):
            from pipelines.tracking.runs import tracking_uri

            uri = tracking_uri()
            where = uri.removeprefix("sqlite:///") if uri.startswith("sqlite:///") else os.getcwd()
        if where is not None:
            folder = os.path.dirname(os.path.abspath(where)) if not os.path.isdir(where) else where
            while folder and not os.path.exists(folder):
                folder = os.path.dirname(folder)
            try:
                free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free"
            except OSError:
                free = "free space unknown"
            return (f"the disk is full: writing under {where} failed ({free} there). Free some "
                    "space (or point TMPDIR / the project at a larger disk) and re-run: a stage records nothing as "
                    "done until all its outputs are written")
        cur = cur.__cause__ or cur.__context__
    return None


def _at_least_one(what: str):
    """An argparse type: a whole number of at least 1, with ``what`` it counts in the message."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1 ({what})")
        return n
    return parse


def build_predict_parser() -> argparse.ArgumentParser:
    from pipelines.serving import predict

    batch_size = _at_least_one("inputs per model call")

    p = _parser("predict", predict.__doc__)
    p.add_argument("project", help="a project of params.yaml (under projects:)")
    p.add_argument("input", help=".jsonl, .csv or .txt file of inputs (UTF-8), or - for standard input")
    p.add_argument("--model", help="export folder or MLflow model URI (default: models/<project>/export)")
    p.add_argument("--output", help="where to write predictions, - for standard output (default: "
                                    "<input>.predictions.jsonl; standard output for input -)")
    p.add_argument("--batch-size", type=batch_size, default=32, help="inputs per model call (default: %(default)s)")
    p.add_argument("--params", help="where the project is defined (default: params.yaml, when there is one)")
    return p


def build_registry_parser() -> argparse.ArgumentParser:
    from pipelines.tracking import registry

    p = _parser("registry", registry.__doc__)
    p.add_argument("project", help="a project of params.yaml (under projects:)")
    p.add_argument("action", nargs="?", choices=("history", "promote", "rollback"), default="history",
                   help="history (default): every version and each move of its aliases; promote VERSION: move "
                        "champion to it by hand; rollback: move champion back to the version before")
    p.add_argument("version", nargs="?", type=int, help="the version to promote")
    p.add_argument("--reason", default="", help="why champion is moved by hand (required; recorded in the history)")
    p.add_argument("--json", action="store_true", help="print the history as JSON")
    p.add_argument("--params", default="params.yaml", help="path to params.yaml (default: %(default)s)")
    return p


def registry_main(argv: list[str]) -> int:
    parser = build_registry_parser()
    args = parser.parse_args(argv)
    if args.action == "promote" and args.version is None:
        parser.error("promote needs the VERSION to move champion to")
    if args.action != "promote" and args.version is not None:
        parser.error(f"{args.action} takes no version")
    if args.version is not None and not 1 <= args.version < 2**31:
        parser.error(f"version {args.version} cannot exist: registry versions count from 1")
    if args.action in ("promote", "rollback") and not args.reason.strip():
        parser.error(f"{args.action} needs --reason TEXT: why champion is moved by hand (recorded in the history)")

    def run() -> int:
        _start(args.log_level or "WARNING")
        from pipelines.tracking import registry
        from pipelines.config import load_params

        params = load_params(args.params)
        params.project(args.project)  # a project params.yaml does not have is named, with the ones it has
        if args.action == "history":
            found = registry.history(params, args.project)
            print(json.dumps(found, indent=2) if args.json else registry.format_history(found))
            return 0
        if args.action == "promote":
            result = registry.promote(params, args.project, args.version, args.reason)
        else:
            result = registry.rollback(params, args.project, args.reason)
        print(json.dumps(result, indent=2))
        return 0

    return _guarded(run)


def build_sweep_parser() -> argparse.ArgumentParser:
    from pipelines.sweep import study as sweep

    def minutes(value: str) -> float:
        try:
            m = float(value)
        except ValueError:
            m = 0.0
        if not m > 0:
            raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of minutes")
        return m

    def _gain(value: str) -> float:
        try:
            gain = float(value)
        except ValueError:
            gain = -1.0
        if not gain >= 0:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number of at least 0")
        return gain

    p = _parser("sweep", sweep.__doc__)
    p.add_argument("project", help="a project of params.yaml (under projects:)")
    p.add_argument("-S", "--set", dest="dimensions", action="append", default=[], required=True,
                   metavar="KEY=SPACE", help="a setting to search: choice(a,b,...), range(low,high[,step]), "
                                             "loguniform(low,high); repeat for each")
    p.add_argument("--sampler", choices=sweep.SAMPLERS, default="tpe", help="default: %(default)s")
    p.add_argument("--trials", type=_at_least_one("trials"), help="how many trials (grid: default every combination)")
    p.add_argument("--budget-minutes", type=minutes, help="start no trial after this; running ones finish")
    p.add_argument("--jobs", type=_at_least_one("trials at a time"), default=1, help="trials side by side (default: %(default)s)")
    p.add_argument("--pruner", choices=sweep.PRUNERS, default="median",
                   help="stop trials whose validation trails (default: %(default)s)")
    p.add_argument("--name", help="the sweep's name; the same name resumes it (default: <sampler>-<project>)")
    p.add_argument("--apply", choices=("best",), help="apply the best trial to the workspace and score the test "
                                                       "split once with evaluate")
    p.add_argument("--min-gain", type=_gain, metavar="X",
                   help="with --apply best: how much the best trial's validation must beat the workspace's "
                        "configuration by (default: one standard error of the validation accuracy, else 0)")
    p.add_argument("--pool", metavar="POOL", help="run the trials on the workers of this Prefect work pool (gpu), "
                                                  "one per GPU slot, instead of here (docs/sweeps.md)")
    p.add_argument("--storage", metavar="URL", help="the study's Optuna storage (default: sqlite in "
                                                    "sweeps/<project>/); with --pool, a database the workers reach")
    return p


def sweep_main(argv: list[str]) -> int:
    args = build_sweep_parser().parse_args(argv)

    def run() -> int:
        _start(args.log_level)
        # The summary on stdout is JSON; with a tracking server MLflow would print a "View run" line
        # there too (the parent run's id is in the summary).
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        from pipelines.config import load_params
        from pipelines.sweep import space
        from pipelines.sweep import study as sweep
        from pipelines.core.paths import repo_root

        root = repo_root()
        load_params(root / "params.yaml").project(args.project)  # a misspelt project: the list of projects
        dims = [space.parse_dimension(spec, args.project) for spec in args.dimensions]
        trials_on = None
        if args.pool:
            pool_trials = plugin("nlp_pipelines.trial_runners", "pool")
            trials_on = pool_trials(root, args.project, args.pool)
        runner = sweep.Sweep(root, args.project, dims, sampler=args.sampler, trials=args.trials,
                             budget_minutes=args.budget_minutes, jobs=args.jobs, pruner=args.pruner,
                             name=args.name or f"{args.sampler}-{args.project}", storage=args.storage,
                             trials_on=trials_on)
        summary = runner.run()
        if args.apply:
            summary["applied"] = sweep.apply_best(root, args.project, summary, args.min_gain)
        print(json.dumps(summary, indent=2, default=str))
        return 0

    return _guarded(run)


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1 to 65535)")
    return int(value)


def build_demo_parser() -> argparse.ArgumentParser:
    from pipelines.serving import demo

    p = _parser("demo", demo.__doc__)
    p.add_argument("projects", nargs="*", metavar="PROJECT", help="projects to serve (default: every project)")
    p.add_argument("--model", help="export folder or MLflow model URI to serve (one project only; default: the "
                                   "registry's champion, else models/<project>/export)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=_port, default=7860, help="default: %(default)s")
    p.add_argument("--params", default="params.yaml", help="path to params.yaml (default: %(default)s)")
    return p


def demo_main(argv: list[str]) -> int:
    parser = build_demo_parser()
    args = parser.parse_args(argv)

    def run() -> int:
        _start(args.log_level)
        from pipelines.serving import demo_app
        from pipelines.config import load_params

        params = load_params(args.params, training_paths_absent=True)
        projects = args.projects or list(params.projects)
        for name in projects:
            params.project(name)  # a misspelt project: the list of projects
        if args.model and len(projects) != 1:
            parser.error("--model serves one project: name it (python -m pipelines demo PROJECT --model ...)")
        demo_app.launch(params, projects, args.model, args.host, args.port)
        return 0

    return _guarded(run)


def flows_main(argv: list[str]) -> int:
    """The Prefect flows' command line (flows/__main__.py), under this command's name."""
    run_flows = plugin("nlp_pipelines.commands", "flows")
    return run_flows(argv, prog=f"{command_name()} flows")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"predict": predict_main, "registry": registry_main, "sweep": sweep_main, "demo": demo_main,
                "flows": flows_main}
    if argv[:1] and argv[0] in commands:
        return commands[argv[0]](argv[1:])
    args = build_parser().parse_args(argv)
    from pipelines.training import distributed
    from pipelines.config import load_params

    def stage() -> int:
        _start(args.log_level)
        params = load_params(args.params)
        if args.stage == "summary":
            from pipelines.cli.summary import summary

            print(summary(params))
            return 0
        if args.stage == "check":
            listed = "; ".join(f"{name}: {cfg.task}, preset {cfg.preset}" for name, cfg in params.projects.items())
            print(f"{args.params}: OK ({listed})")
            return 0
        if not args.project:
            raise SystemExit("a project is required: python -m pipelines <stage> <project>")
        params.project(args.project)  # fails early for a missing block
        if args.stage in TRAINING_STAGES and not distributed.launched():
            processes = distributed.requested()
            if processes > 1:
                return distributed.launch(argv, processes)
        module = importlib.import_module(f"pipelines.stages.{args.stage}")  # the stage's module, named by STAGES
        summary = module.run(params, args.project)
        if summary and distributed.is_main_process():  # one summary, not one per process
            print(json.dumps({"stage": args.stage, "project": args.project, **summary}, indent=2, default=str))
        return 0

    return _guarded(stage)


def predict_main(argv: list[str]) -> int:
    args = build_predict_parser().parse_args(argv)

    def run() -> int:
        _start(args.log_level)
        from pipelines.serving import predict

        summary = predict.run(args.project, args.input, args.model, args.batch_size, args.output,
                              params_path=args.params)
        # With the predictions on standard output, the summary goes to standard error.
        print(json.dumps(summary, indent=2), file=sys.stderr if summary["output"] == "-" else sys.stdout)
        return 0

    return _guarded(run)


def _guarded(command) -> int:
    """Run a command; errors a user can act on become their message and exit code, not a traceback."""
    from pipelines.core.errors import PipelineError

    try:
        return command()
    except PipelineError as exc:
        # A full disk behind a tracking or data error is what the user has to fix.
        message = disk_full(exc)
        _report(message or str(exc))
        return 1 if message else exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: outputs of this stage were not written; re-run to continue", file=sys.stderr)
        return 130
    except Exception as exc:
        message = disk_full(exc)
        if message is None:
            raise
        _report(message)
        return 1


if __name__ == "__main__":
    sys.exit(main())
