"""The installed console script `nlp-pipelines` reaches every command, the flows included, and each
says its usage and version under the script's own name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli.main import SUBCOMMANDS
from pipelines.stages import STAGES

SCRIPT = Path(sys.executable).parent / "nlp-pipelines"

def script(*args: str) -> subprocess.CompletedProcess:
    # `make setup` installs the package, and with it the script: its absence is a broken install.
    assert SCRIPT.is_file(), f"{SCRIPT} is not installed: run `make setup` (pip install -e .)"
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_stage_and_command():
    proc = script("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: nlp-pipelines "), proc.stdout
    for name in (*STAGES, "check", "summary", *SUBCOMMANDS):
        assert name in proc.stdout, name


def test_flows_are_reached_under_the_script_name():
    proc = script("flows", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: nlp-pipelines flows "), proc.stdout
    for command in ("run", "retrain", "deploy"):
        assert command in proc.stdout


@pytest.mark.parametrize("command", [[], ["flows"], ["sweep"]])
def test_the_script_says_its_version(command):
    proc = script(*command, "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("nlp-pipelines "), proc.stdout + proc.stderr
