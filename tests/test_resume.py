"""A killed training resumes: SIGKILL mid-epoch, `dvc repro` again, same MLflow run, same result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tiny import int8_only, make_repo_copy, pipeline_env, tiny_params

# Metrics of a resumed run match an uninterrupted run with the same seed within this tolerance.
# Trainer restores the RNG states and skips the batches already seen, so on CPU they are equal
# up to float summation order.
TOLERANCE = 1e-3


def _params():
    params = tiny_params(["classification"], size=600)
    # A model that learns (about 0.4 to 0.5 accuracy on four labels, not chance): an untrained one has
    # near-tied logits, and the last-bit noise of CPU matrix kernels could flip a prediction.
    params["projects"]["classification"]["model"].update({"hidden_size": 64, "intermediate_size": 128})
    params["projects"]["classification"]["finetune"].update({"epochs": 4, "save_steps": 4, "batch_size": 8,
                                                 "learning_rate": 3e-3})
    params["tracking"]["register_model"] = False
    return int8_only(params)


def _repro(root: Path, target: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", "repro", target], cwd=root, env=pipeline_env(root),
                          capture_output=True, text=True, timeout=900)


def _complete_checkpoints(ckpt: Path) -> list[Path]:
    return [p for p in ckpt.glob("checkpoint-*") if (p / "trainer_state.json").exists()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = make_repo_copy(tmp_path_factory.mktemp("uninterrupted"), _params())
    proc = _repro(root, "evaluate@classification")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def test_sigkill_mid_training_resumes_to_the_same_result(tmp_path, reference):
    root = make_repo_copy(tmp_path / "killed", _params())
    prep = _repro(root, "pretrain@classification")
    assert prep.returncode == 0, prep.stderr[-3000:]

    ckpt = root / "models/classification/checkpoints"
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "finetune@classification"], cwd=root,
                            env=pipeline_env(root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        done = _complete_checkpoints(ckpt)
        # kill after the first mid-epoch checkpoint, well before the end
        if done and max(int(p.name.split("-")[1]) for p in done) >= 4:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "finetune finished before it could be killed; make the config larger"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    # Nothing half-written: no finetuned model, and DVC does not record the stage as complete.
    assert not (root / "models/classification/finetuned").exists()
    run_before = json.loads((ckpt / "resume.json").read_text())["run_id"]
    status = subprocess.run([sys.executable, "-m", "dvc", "status", "finetune@classification"], cwd=root,
                            env=pipeline_env(root), capture_output=True, text=True, timeout=300)
    assert "changed" in status.stdout or "modified" in status.stdout or "deleted" in status.stdout, status.stdout

    again = _repro(root, "evaluate@classification")
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads((root / "reports/classification/finetune.json").read_text())
    assert report["resumed_from"] and report["resumed_from"].startswith("checkpoint-")
    assert report["mlflow_run_id"] == run_before, "the resumed training must continue the same MLflow run"

    ref = json.loads((reference / "reports/classification/evaluate.json").read_text())
    got = json.loads((root / "reports/classification/evaluate.json").read_text())
    assert ref["full"]["accuracy"] > 0.33, "the reference model must learn for the comparison to mean anything"
    assert abs(ref["full"]["accuracy"] - got["full"]["accuracy"]) <= TOLERANCE
    ref_loss = json.loads((reference / "reports/classification/finetune.json").read_text())["best_validation"]
    assert abs(ref_loss - report["best_validation"]) <= TOLERANCE
