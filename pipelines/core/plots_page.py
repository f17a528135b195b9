"""The HTML template of `dvc plots show`, with the vega libraries inlined so that the page draws offline.

    python -m pipelines.core.plots_page [--force]

DVC's own page loads vega, vega-lite and vega-embed from a CDN: without the internet it is blank.
This writes ``.dvc/plots/offline.html`` (``.dvc/config`` names it as ``plots.html_template``) with
the three builds from the npm registry inside it. `make setup` runs it once. Without npm it writes
the template with DVC's CDN links instead and says so: the page then draws only online.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pipelines.core.io import atomic_file

logger = logging.getLogger(__name__)

# The builds DVC's vega renderer is written for (vega-lite 5 specs); upgrade together.
PACKAGES = {"vega": "5.33.0", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}
TEMPLATE = Path(".dvc") / "plots" / "offline.html"
STAMP = "<!-- inlined: " + ", ".join(f"{name} {version}" for name, version in PACKAGES.items()) + " -->"
CDN_STAMP = "<!-- vega from a CDN: npm was not found; run `python -m pipelines.core.plots_page --force` with npm -->"

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    STAMP
    SCRIPTS
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


class PlotsPageError(RuntimeError):
    pass


def _npm_builds(npm: str) -> list[str]:
    """The minified builds of PACKAGES, fetched with `npm pack` from the configured registry."""
    with tempfile.TemporaryDirectory(prefix="vega-") as tmp:
        specs = [f"{name}@{version}" for name, version in PACKAGES.items()]
        proc = subprocess.run([npm, "pack", "--silent", *specs], cwd=tmp, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise PlotsPageError(f"`npm pack {' '.join(specs)}` failed: {proc.stderr.strip()[-500:]}")
        scripts = []
        for name, version in PACKAGES.items():
            with tarfile.open(Path(tmp) / f"{name}-{version}.tgz") as tar:
                member = tar.extractfile(f"package/build/{name}.min.js")
                if member is None:
                    raise PlotsPageError(f"{name}@{version} has no build/{name}.min.js")
                code = member.read().decode("utf-8")
            # Inside a <script> element, "</script" would end it early.
            if "</script" in code.lower():
                raise PlotsPageError(f"{name}@{version}'s build contains '</script' and cannot be inlined")
            scripts.append(f"<script>/* {name} {version} */\n{code}\n</script>")
        return scripts


def write_template(root: Path, force: bool = False) -> Path:
    """Write the template under ``root`` unless one with these versions is there."""
    target = root / TEMPLATE
    if not force and target.is_file() and STAMP in target.read_text(encoding="utf-8", errors="replace"):
        return target
    npm = shutil.which("npm")
    if npm is None:
        if target.is_file():
            return target
        logger.warning("npm not found: `dvc plots show` will load vega from a CDN, so its page draws only online. "
                       "Install Node.js and npm, then run `python -m pipelines.core.plots_page --force`")
        scripts = [f'<script src="https://cdn.jsdelivr.net/npm/{n}@{v}"></script>' for n, v in PACKAGES.items()]
        stamp = CDN_STAMP
    else:
        scripts, stamp = _npm_builds(npm), STAMP
    # DVC fills the template with str.replace, so the JavaScript goes in the same way (no format()).
    page = PAGE.replace("STAMP", stamp).replace("SCRIPTS", "\n".join(scripts))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target) as fh:
        fh.write(page)
    target.chmod(0o644)  # a page every user of the checkout reads
    logger.info("wrote %s (%d KB)", target, len(page) // 1024)
    return target


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.core.plots_page", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--force", action="store_true", help="write it again even when it is current")
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    try:
        write_template(Path.cwd(), args.force)
    except (PlotsPageError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
