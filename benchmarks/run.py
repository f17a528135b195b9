"""Run benchmarks and rebuild benchmarks/RESULTS.md.

    python -m benchmarks.run [NAME ...]      # names: classification, translation, summarization,
                                             # training, flows; none given: all
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from pathlib import Path

from .common import RESULTS

# Every benchmarks/bench_<name>.py is a benchmark.
NAMES = tuple(sorted(p.stem.removeprefix("bench_") for p in Path(__file__).parent.glob("bench_*.py")))


def render() -> str:
    """RESULTS.md: every results file as a section of key / value rows."""
    lines = ["# Benchmark results", "",
             "Written by `python -m benchmarks.run`; each section comes from `benchmarks/results/<name>.json`.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        lines += [f"## {data.get('benchmark', path.stem)}", "",
                  f"Measured {data.get('measured_at')} on {data.get('machine', {}).get('cpu_count')} CPUs"
                  f" ({data.get('machine', {}).get('cuda') or 'no GPU'}).", "", "| measurement | value |",
                  "| --- | --- |"]
        skip = {"benchmark", "measured_at", "machine"}

        def walk(prefix, node):
            if isinstance(node, dict):
                for k, v in node.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                value = f"{node:.4g}" if isinstance(node, float) else str(node)
                lines.append(f"| {prefix} | {value} |")

        walk("", {k: v for k, v in data.items() if k not in skip})
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run, of: {', '.join(NAMES)}")
    parser.add_argument("--skip-real", action="store_true",
                        help="task benchmarks: skip the long runs on SST-2 / Multi30k / AESLC")
    parser.add_argument("--skip-default", action="store_true",
                        help="task benchmarks: skip the default (builtin data) run; earlier figures are kept")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(NAMES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from pipelines.core import settings

    settings.apply_environment_defaults(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PIPELINES_PROGRESS="0")
    for name in args.names or NAMES:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        kwargs = ({"skip_real": args.skip_real, "skip_default": args.skip_default}
                  if name in ("classification", "translation", "summarization") else {})
        result = module.main(**kwargs)
        print(json.dumps({name: result}, indent=2, default=str))
    (RESULTS.parent / "RESULTS.md").write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
