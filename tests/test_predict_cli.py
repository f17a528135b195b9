"""`python -m pipelines predict` refuses bad input files and bad arguments with a message and an exit
code, never a traceback, and writes nothing. A file is read and checked before any model loads, so
these run without one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from pipelines.cli.main import main
from tests.tiny import pipeline_env, tiny_params


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with a params.yaml defining only the classification project, as the working directory."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(["classification"]), sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def jsonl(*records) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


BAD_FILES = {
    "broken JSON line": ("in.jsonl", jsonl({"text": "good"}, '{"text": "no closing brace"'),
                         ["in.jsonl, line 2", "not valid JSON"]),
    "a list, not an object": ("in.jsonl", jsonl({"text": "good"}, ["a", "list"]),
                              ["in.jsonl, line 2", "expected a JSON object", "got a list"]),
    "a record without the field": ("in.jsonl", jsonl({"text": "good"}, {"text": "fine"}, {"review": "x"}),
                                   ["in.jsonl, line 3", "no 'text' field"]),
    "a number, not a text": ("in.jsonl", jsonl({"text": "good"}, {"text": 3}),
                             ["in.jsonl, line 2", "'text' is int, expected a string"]),
    "latin-1": ("in.txt", "fine\ncaf\u00e9 au lait\n".encode("latin-1"),
                ["in.txt, line 2", "not UTF-8", "latin-1", "iconv -f LATIN1 -t UTF-8"]),
    "UTF-16 with a byte-order mark": ("in.txt", "fine\ngood\n".encode("utf-16"),
                                      ["in.txt, line 1", "UTF-16", "iconv -f UTF-16 -t UTF-8"]),
    "UTF-16 without a byte-order mark": ("in.txt", "fine\ngood\n".encode("utf-16-le"),
                                         ["in.txt, line 1", "UTF-16", "iconv -f UTF-16LE -t UTF-8"]),
    "latin-1 CSV": ("in.csv", "text\nfine\ncaf\u00e9\n".encode("latin-1"), ["in.csv, line 3", "not UTF-8"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_input_file_exits_3_naming_the_line_and_the_fix(project, capsys, case):
    name, content, expected = BAD_FILES[case]
    (project / name).write_bytes(content)
    assert main(["predict", "classification", name]) == 3
    err = capsys.readouterr().err
    for part in expected:
        assert part in err, err
    assert not (project / f"{name}.predictions.jsonl").exists()


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_batch_size_below_1_is_a_usage_error(project, capsys, value):
    (project / "in.txt").write_text("fine\n")
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "classification", "in.txt", "--batch-size", value])
    assert exit_.value.code == 2
    assert "--batch-size" in capsys.readouterr().err
    assert not (project / "in.txt.predictions.jsonl").exists()


def test_an_unknown_project_names_the_projects_there_are(project, capsys):
    (project / "in.txt").write_text("fine\n")
    assert main(["predict", "clasification", "in.txt"]) == 2
    err = capsys.readouterr().err
    assert "unknown project 'clasification'" in err and "did you mean 'classification'" in err, err
    assert main(["predict", "translation", "in.txt"]) == 2  # a task, but not a project of this params.yaml
    assert "params.yaml defines classification" in capsys.readouterr().err


def test_the_real_command_prints_no_traceback(project):
    (project / "in.jsonl").write_bytes(jsonl({"text": "good"}, ["a", "list"]))
    proc = subprocess.run([sys.executable, "-m", "pipelines", "predict", "classification", "in.jsonl"], cwd=project,
                          env=pipeline_env(project), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3 and "in.jsonl, line 2" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr


def test_a_host_without_the_training_data_can_still_predict(tmp_path, monkeypatch, capsys):
    """params.yaml names training data and a checkpoint that only the training machine has; predict
    needs neither, so it gets past the params to the input file."""
    raw = tiny_params(["classification"])
    raw["projects"]["classification"]["data"]["source"] = "/data/only/on/the/trainer.csv"
    raw["projects"]["classification"]["model"]["init"] = "/checkpoints/only/on/the/trainer"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_bytes(jsonl({"text": "good"}, ["a", "list"]))
    assert main(["predict", "classification", "in.jsonl"]) == 3
    assert "in.jsonl, line 2" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["predict"], ["registry"], ["sweep"], ["demo"], ["flows"]])
def test_every_command_says_its_version(command, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out.startswith("nlp-pipelines ")
