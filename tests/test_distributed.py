"""Training on several processes (PIPELINES_NUM_PROCESSES), on CPU with the gloo backend: two
processes with batch B learn as one process with batch 2B, log one MLflow run, pass the stage's exit
code through the launcher, and a killed launch resumes from its last checkpoint.

Each test runs `python -m pipelines finetune` in a copy whose stages up to pretrain ran once.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipelines.training import distributed
from pipelines.core.errors import ConfigError
from pipelines.training.harness import train
from tests.tiny import dvc, free_port, make_repo_copy, mlflow_json, pipeline_env, tiny_params

PROJECT = "classification"
BATCH = 8  # per process
# Two processes take the two halves of each batch of one process's data order (the launcher shards
# the batches of one shared sampler), and with dropout 0 the same examples give the same mean loss:
# until the end of the first epoch the curves differ by float summation order and padding alone
# (each half is padded to its own longest text; measured: 2e-7). The split's 457 examples are not a
# multiple of 2B, so at the epoch's last step the second process's half wraps round to the first
# examples, and from there the two trainings part as two seeds would: measured 0.028 at most over
# three epochs, where a loss off by the number of processes (2.77 for 1.39) or another data order
# would differ by far more.
SAME_EXAMPLES_TOLERANCE = 1e-4
AFTER_THE_FIRST_EPOCH_TOLERANCE = 0.05
# A killed and resumed launch ends where an uninterrupted one does: Trainer restores each process's
# RNG state and skips the batches already seen (tests/test_resume.py holds one process to 1e-3).
RESUME_TOLERANCE = 1e-3


def _params(batch_size: int) -> dict:
    params = tiny_params([PROJECT], size=600)
    block = params["projects"][PROJECT]
    block["model"].update(dropout=0.0)
    block["finetune"].update(batch_size=batch_size, epochs=3, save_steps=4, logging_steps=2, learning_rate=3e-3)
    params["tracking"]["register_model"] = False
    return params


def _finetune(root: Path, processes: int, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines", "finetune", PROJECT], cwd=root,
                          env=pipeline_env(root, PIPELINES_NUM_PROCESSES=str(processes), **env),
                          capture_output=True, text=True, timeout=300)


def _report(root: Path) -> dict:
    return json.loads((root / f"reports/{PROJECT}/finetune.json").read_text())


def _curve(root: Path) -> dict[int, tuple[float, float]]:
    with open(root / f"plots/{PROJECT}/finetune_loss.csv") as fh:
        return {int(r["step"]): (float(r["epoch"]), float(r["loss"])) for r in csv.DictReader(fh)}


def _finetune_runs(root: Path) -> list[dict]:
    """Every MLflow run of the finetune stage in the copy's store, with how many training losses it holds."""
    return mlflow_json(root, (
        "ids = [e.experiment_id for e in c.search_experiments()];"
        "runs = c.search_runs(ids, filter_string=\"tags.stage = 'finetune'\");"
        "print(json.dumps([{'id': r.info.run_id, 'status': r.info.status,"
        " 'losses': len(c.get_metric_history(r.info.run_id, 'train/loss'))} for r in runs]))"))


def _copy(template: Path, dest: Path, batch_size: int = BATCH) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["projects"][PROJECT]["finetune"]["batch_size"] = batch_size
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def _processes_in(root: Path) -> list[int]:
    """Processes whose working directory is ``root``: the stage's, orphaned or not."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(root):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = make_repo_copy(tmp_path_factory.mktemp("pretrained"), _params(BATCH))
    dvc(root, "repro", f"pretrain@{PROJECT}")
    return root


@pytest.fixture(scope="module")
def two_processes(template, tmp_path_factory) -> Path:
    root = _copy(template, tmp_path_factory.mktemp("runs") / "two")
    proc = _finetune(root, 2)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root


def test_two_processes_learn_as_one_with_the_double_batch_and_log_one_run(template, two_processes, tmp_path):
    one = _copy(template, tmp_path / "one", batch_size=2 * BATCH)
    proc = _finetune(one, 1)
    assert proc.returncode == 0, proc.stderr[-4000:]

    single, double = _report(one), _report(two_processes)
    assert (single["processes"], double["processes"]) == (1, 2)
    assert single["effective_batch_size"] == double["effective_batch_size"] == 2 * BATCH
    assert single["global_steps"] == double["global_steps"] > 40
    ref, got = _curve(one), _curve(two_processes)
    assert sorted(ref) == sorted(got)
    gaps = {step: abs(ref[step][1] - got[step][1]) for step in ref}
    first_epoch = [step for step, (epoch, _) in ref.items() if epoch < 1 - 1e-9]
    assert len(first_epoch) > 10
    assert max(gaps[step] for step in first_epoch) <= SAME_EXAMPLES_TOLERANCE, gaps
    assert max(gaps.values()) <= AFTER_THE_FIRST_EPOCH_TOLERANCE, gaps
    assert ref[max(ref)][1] < ref[min(ref)][1] - 0.1, "the model must learn for the comparison to mean anything"

    # One MLflow run, FINISHED, holding as many training losses as the run of one process (not one per process).
    runs, [reference] = _finetune_runs(two_processes), _finetune_runs(one)
    assert [(r["id"], r["status"], r["losses"]) for r in runs] == [(double["mlflow_run_id"], "FINISHED",
                                                                    reference["losses"])]
    # Each process saved its own RNG state with the checkpoint, which a resumed launch restores.
    ckpt = two_processes / f"models/{PROJECT}/checkpoints/{double['best_checkpoint']}"
    assert {p.name for p in ckpt.glob("rng_state*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_number_of_processes_is_refused_naming_the_variable(tmp_path, repo, value):
    proc = subprocess.run([sys.executable, "-m", "pipelines", "finetune", PROJECT, "--params",
                           str(repo / "params.yaml")], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(repo), "PATH": "/usr/bin:/bin", "PIPELINES_NUM_PROCESSES": value})
    assert proc.returncode == 2, proc.stderr
    assert f"PIPELINES_NUM_PROCESSES={value!r}" in proc.stderr and "auto (one per visible GPU)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_auto_is_one_process_per_visible_gpu(monkeypatch):
    import torch

    monkeypatch.setenv("PIPELINES_NUM_PROCESSES", "auto")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert distributed.requested() == 4
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert distributed.requested() == 1


def test_more_processes_than_gpus_are_refused_before_training(monkeypatch):
    import torch

    for name, value in {"PIPELINES_NUM_PROCESSES": "2", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "RANK": "1",
                        "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"PIPELINES_NUM_PROCESSES=2 starts 2 processes, one per GPU, and 1 GPU"):
        distributed.join("cuda")


def test_auto_batch_size_is_refused_on_several_processes(monkeypatch, tmp_path):
    """It halves the batch of the process that ran out of memory, and the others would wait for it."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="auto_batch_size: true does not work on 2 processes"):
        train(None, None, None, None, None, tmp_path, auto_batch_size=True)


def test_the_stage_exit_code_passes_through_the_launcher(template, tmp_path):
    """The main process fails alone (no tracking server) while the other waits for it in the Trainer:
    the launch ends with the stage's code 4, not the launcher's 1, and does not hang."""
    root = _copy(template, tmp_path / "no-server")
    begin = time.monotonic()
    proc = _finetune(root, 2, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 4, proc.stderr[-4000:]
    assert "does not answer" in proc.stderr
    assert time.monotonic() - begin < 120
    assert not (root / f"models/{PROJECT}/finetuned").exists()
    assert _processes_in(root) == []


def test_a_killed_launch_resumes_from_its_last_checkpoint(template, two_processes, tmp_path):
    root = _copy(template, tmp_path / "killed")
    ckpt = root / f"models/{PROJECT}/checkpoints"
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", "finetune", PROJECT], cwd=root,
                            env=pipeline_env(root, PIPELINES_NUM_PROCESSES="2"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        done = [p for p in ckpt.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
        if done:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "finetune finished before it could be killed; make the config larger"
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher's process group, as an interrupted `dvc repro` is
    proc.wait(timeout=30)
    time.sleep(2)
    assert _processes_in(root) == [], "the training processes must die with their launcher"
    assert not (root / f"models/{PROJECT}/finetuned").exists()
    run_before = json.loads((ckpt / "resume.json").read_text())["run_id"]

    again = _finetune(root, 2)
    assert again.returncode == 0, again.stderr[-4000:]
    report = _report(root)
    assert report["resumed_from"] and report["resumed_from"].startswith("checkpoint-")
    assert report["mlflow_run_id"] == run_before
    assert [r["id"] for r in _finetune_runs(root)] == [run_before]
    uninterrupted = _report(two_processes)
    assert report["global_steps"] == uninterrupted["global_steps"]
    assert abs(report["best_validation"] - uninterrupted["best_validation"]) <= RESUME_TOLERANCE
    last = max(_curve(root))
    assert abs(_curve(root)[last][1] - _curve(two_processes)[last][1]) <= RESUME_TOLERANCE
