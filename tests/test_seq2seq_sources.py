"""The stages of the translation and summarization projects on subsets of the real Multi30k and
AESLC files given as local folders (a file of its own so that it runs beside the builtin-data
end-to-end tests on another worker)."""

from __future__ import annotations

import json

from tests.test_seq2seq_end_to_end import _report, _subset
from tests.tiny import int8_only, make_repo_copy, run_stages, tiny_params


def test_multi30k_subset_through_local_folder(tmp_path, shared_data):
    src = _subset(shared_data / "translation/multi30k_en_de", tmp_path / "multi30k",
                  {"train": 300, "validation": 30, "test": 30})
    params = tiny_params(["translation"], translation__data__source=str(src))
    params["tracking"]["register_model"] = False
    root = make_repo_copy(tmp_path / "repo", int8_only(params))
    run_stages(root, until="evaluate")
    split = _report(root, "translation", "split")
    assert split["rows"]["test"] <= 30 and split["rows"]["train"] >= 250
    ev = _report(root, "translation", "evaluate")
    assert ev["examples"] == split["rows"]["test"]
    assert 0.0 <= ev["full"]["bleu"] <= 100.0 and ev["full"]["chrf"] > 0.0


def test_aeslc_subset_scores_against_every_reference(tmp_path, shared_data):
    src = _subset(shared_data / "summarization/aeslc", tmp_path / "aeslc",
                  {"train": 200, "validation": 20, "test": 20})
    params = tiny_params(["summarization"], summarization__data__source=str(src),
                         summarization__data__references_field="references")
    params["projects"]["summarization"]["tokenizer"]["max_length"] = 128
    params["tracking"]["register_model"] = False
    root = make_repo_copy(tmp_path / "repo", int8_only(params))
    run_stages(root, until="evaluate")
    test_rows = [json.loads(x) for x in (root / "data/summarization/splits/test.jsonl").read_text().splitlines()]
    # the three human subject lines of AESLC's test file travel with each example
    assert all(len(r.get("references") or []) >= 1 for r in test_rows)
    ev = _report(root, "summarization", "evaluate")
    assert ev["examples"] == len(test_rows)
    assert 0.0 <= ev["full"]["rougeL"] <= 100.0
