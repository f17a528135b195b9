"""What a flow reports for a stage, on a two-stage DVC repository of its own (no pipeline, no Prefect):
ran, skipped when ``dvc status`` finds it up to date, cached when DVC restores its outputs from the
run cache, and a failure carrying the exit code of the stage's command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.commands import stage_env
from flows.dvc_runner import CACHED, RAN, SKIPPED, repro_stage
from flows.errors import FlowError, StageFailed

PROJECT = "demo"


@pytest.fixture
def repo(tmp_path) -> Path:
    """``clean@demo`` upper-cases in.txt into out.txt; ``split@demo`` exits 3, as a stage does on bad data."""
    (tmp_path / "upper.py").write_text(  # runs.txt, not an output, counts the runs of the command
        "from pathlib import Path\nPath('out.txt').write_text(Path('in.txt').read_text().upper())\n"
        "with open('runs.txt', 'a') as fh: fh.write('run\\n')\n")
    (tmp_path / "in.txt").write_text("first\n")
    stages = {
        "clean": {"foreach": [PROJECT], "do": {"cmd": f"{sys.executable} upper.py", "deps": ["upper.py", "in.txt"],
                                             "outs": ["out.txt"]}},
        "split": {"foreach": [PROJECT], "do": {"cmd": f"{sys.executable} -c 'import sys; sys.exit(3)'",
                                             "deps": ["out.txt"], "outs": ["never.txt"]}},
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env(), check=True)
    return tmp_path


def env() -> dict[str, str]:
    return stage_env({"DVC_NO_ANALYTICS": "1"})


def repro(root: Path, stage: str = "clean", log: list | None = None):
    return repro_stage(root, stage, PROJECT, log=(log if log is not None else []).append, env=env())


def test_outcome_of_a_stage_comes_from_dvc_status_and_its_run_cache(repo):
    first = repro(repo)
    assert first.target == f"clean@{PROJECT}" and first.status == RAN
    assert (repo / "out.txt").read_text() == "FIRST\n"

    log = []
    again = repro(repo, log=log)  # nothing changed: DVC is not asked to reproduce anything
    assert again.status == SKIPPED and again.stdout_tail == []
    assert log == [f"clean@{PROJECT} is up to date (dvc status): nothing to run"]

    (repo / "in.txt").write_text("second\n")
    log = []
    assert repro(repo, log=log).status == RAN
    assert log[0] == f"clean@{PROJECT} is out of date: changed deps: in.txt (modified)"
    assert (repo / "out.txt").read_text() == "SECOND\n"

    # inputs DVC has seen before: the outputs come back from the run cache, the command does not run
    (repo / "in.txt").write_text("first\n")
    assert repro(repo).status == CACHED
    assert (repo / "out.txt").read_text() == "FIRST\n"
    assert (repo / "runs.txt").read_text().count("run") == 2


def test_failed_stage_carries_the_exit_code_of_its_command(repo):
    repro(repo)
    with pytest.raises(StageFailed) as failed:
        repro(repo, "split")
    assert failed.value.target == f"split@{PROJECT}" and failed.value.exit_code == 3
    assert not failed.value.transient  # 3: bad input data, which a retry cannot fix
    with pytest.raises(FlowError, match="unknown stage 'trian'"):
        repro(repo, "trian")
