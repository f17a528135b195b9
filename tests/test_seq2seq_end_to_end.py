"""`dvc repro` of the translation and summarization projects on tiny configs, offline, on the builtin
data (tests/test_seq2seq_sources.py gives them subsets of the real Multi30k and AESLC files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.tiny import dvc, registry
from tests.tiny import make_repo_copy, tiny_params


def _subset(src: Path, dest: Path, sizes: dict[str, int]) -> Path:
    dest.mkdir(parents=True)
    for split, n in sizes.items():
        lines = (src / f"{split}.jsonl").read_text().splitlines()[:n]
        (dest / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return dest


def _report(root: Path, project: str, stage: str) -> dict:
    return json.loads((root / f"reports/{project}/{stage}.json").read_text())


@pytest.mark.parametrize("project,metrics", [
    ("translation", ("bleu", "chrf")),
    ("summarization", ("rouge1", "rouge2", "rougeL", "rougeLsum")),
])
def test_builtin_repro_evaluates_exports_and_registers(tmp_path, project, metrics):
    # First with finetune.min_source_gain above what any model reaches: finetune fails naming the
    # key and saves no model. Removing the key then finishes from the kept checkpoints.
    params = tiny_params([project], **{f"{project}__finetune__min_source_gain": 1000.0})
    # Translation makes the ORT variants, whose graphs export then reuses; summarization does not,
    # so export writes and checks its own.
    params["projects"][project]["compress"]["onnx_runtime"] = project == "translation"
    root = make_repo_copy(tmp_path, params)
    failed = dvc(root, "repro", check=False)
    assert failed.returncode != 0
    assert "finetune.min_source_gain" in failed.stdout + failed.stderr
    assert not (root / f"models/{project}/finetuned").exists()
    assert not (root / f"reports/{project}/finetune.json").exists()
    params["projects"][project]["finetune"]["min_source_gain"] = None
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(root, "repro")
    assert _report(root, project, "finetune")["resumed_from"] is not None  # not trained again
    ev = _report(root, project, "evaluate")
    for name in ("full", "int8"):
        for m in metrics:
            assert 0.0 <= ev[name][m] <= 100.0
        assert ev[name]["prediction_length"] > 0
    assert "int8_change" in ev
    if project == "translation":
        assert ev["bleu_signature"].startswith("nrefs:1|case:") and "tok:13a" in ev["bleu_signature"]
    else:
        assert "lsum_sentence_split" in ev
    compress = _report(root, project, "compress")
    assert compress["linear_weight_ratio"] > 3.0
    assert compress["int8"]["batch1"]["median_ms"] > 0
    export = _report(root, project, "export")
    assert export["onnx_max_abs_diff"] < 1e-3 and export["onnx_greedy_identical"] == 1.0
    assert export["onnx_reused"] is (project == "translation")
    assert (root / "models" / project / "export" / "hf" / "model.safetensors").exists()
    # the exported model decodes with the evaluate block's settings, not the Trainer's legacy cap
    saved = json.loads((root / "models" / project / "export" / "hf" / "generation_config.json").read_text())
    decoding = params["projects"][project]["evaluate"]
    assert saved["num_beams"] == decoding["num_beams"] and saved["max_new_tokens"] == decoding["max_new_tokens"]
    assert "max_length" not in saved and "min_length" not in saved
    assert (root / "plots" / project / "evaluate.csv").exists()
    reg = registry(root, project)
    assert reg["versions"] == [1] and reg["aliases"].get("champion") == 1
    # the metrics file is declared to DVC
    shown = dvc(root, "metrics", "show", "--json")
    assert f"reports/{project}/evaluate.json" in shown.stdout
