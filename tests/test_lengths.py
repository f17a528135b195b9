"""Sequence lengths derived from the data (tokenizer.max_length / max_target_length: auto, evaluate.max_new_tokens:
auto): the value chosen from the train split, its caps, the share it cuts, the warning, and a user value winning."""

from __future__ import annotations

import json
import logging
import random

import pytest

from pipelines.config import parse_params
from pipelines.core.errors import ConfigError
from pipelines.data import lengths
from tests.tiny import make_repo_copy, run_stages, tiny_params

WORDS = ("good bad film plot actor scene music story slow fast dull great long short funny sad dark bright quiet loud "
         "warm cold").split()


def _tokenizer(**values):
    block = {"task": "classification", "tokenizer": values}
    return parse_params({"projects": {"p": block}}).project("p").tokenizer


def test_auto_takes_the_percentile_of_the_training_lengths_rounded_up_to_eight():
    tok = _tokenizer(max_length="auto", auto_percentile=90, auto_max_length=512)
    train = list(range(1, 101))  # the 90th percentile is 90
    record = lengths.resolve(tok, {"max_length": {"train": train, "test": [100, 200]}}, positions=None)
    entry = record["max_length"]
    assert (entry["setting"], entry["at_percentile"], entry["value"], entry["limited_by"]) == ("auto", 90, 96, None)
    assert entry["truncated"]["train"] == {"rows": 4, "share": 0.04}
    assert entry["truncated"]["test"] == {"rows": 2, "share": 1.0}
    assert entry["longest"] == 100


def test_auto_stops_at_the_preset_cap_and_at_the_checkpoint_positions():
    tok = _tokenizer(max_length="auto", auto_max_length=64)
    long = {"max_length": {"train": [300] * 10}}
    assert lengths.resolve(tok, long, None)["max_length"] | {"truncated": None} == {
        "setting": "auto", "value": 64, "percentile": 99, "at_percentile": 300, "limited_by": "tokenizer.auto_max_length",
        "longest": 300, "truncated": None}
    tok = _tokenizer(max_length="auto", auto_max_length=1024)
    assert lengths.resolve(tok, long, 128)["max_length"]["limited_by"] == "the checkpoint's positions"
    assert lengths.resolve(tok, long, 128)["max_length"]["value"] == 128
    # Short texts still get the least length the block accepts.
    assert lengths.resolve(tok, {"max_length": {"train": [3, 4]}}, None)["max_length"]["value"] == 8


def test_a_value_set_by_the_user_wins_and_its_cut_is_reported():
    tok = _tokenizer(max_length=40, auto_max_length=16)
    record = lengths.resolve(tok, {"max_length": {"train": [50] * 9 + [10]}}, None)
    assert record["max_length"]["value"] == 40 and record["max_length"]["setting"] == 40
    (problem,) = lengths.warnings(record, "reviews")
    assert "90% of the training inputs are longer than tokenizer.max_length (40 tokens" in problem
    assert "raise projects.reviews.tokenizer.max_length or set it to auto" in problem


def test_the_warning_names_the_cap_to_raise_and_stays_quiet_under_five_percent():
    tok = _tokenizer(max_length="auto", auto_max_length=32)
    record = lengths.resolve(tok, {"max_length": {"train": [100] * 6 + [10] * 4}}, None)
    (problem,) = lengths.warnings(record, "p")
    assert "60% of the training inputs" in problem and "raise projects.p.tokenizer.auto_max_length" in problem
    quiet = lengths.resolve(tok, {"max_length": {"train": [100] + [10] * 99}}, None)
    assert lengths.warnings(quiet, "p") == []


def test_max_new_tokens_auto_is_the_target_length_and_a_fixed_one_must_fit_any_derived_table():
    def project(**evaluate):
        block = {"task": "summarization", "tokenizer": {"max_length": "auto", "max_target_length": "auto"},
                 "evaluate": evaluate}
        return parse_params({"projects": {"p": block}}).project("p")

    cfg = project(max_new_tokens="auto").with_lengths({"max_length": 40, "max_target_length": 12})
    assert (cfg.tokenizer.max_length, cfg.tokenizer.max_target_length, cfg.evaluate.max_new_tokens) == (40, 12, 12)
    assert project(max_new_tokens=31).with_lengths({"max_length": 8, "max_target_length": 4}).evaluate.max_new_tokens == 31
    with pytest.raises(ConfigError, match=r"evaluate.max_new_tokens \(100\) may not fit .* set evaluate.max_new_tokens "
                                          r"to auto"):
        project(max_new_tokens=100)
    fixed = {"task": "summarization", "tokenizer": {"max_length": "auto", "max_target_length": 100},
             "evaluate": {"max_new_tokens": 100}}
    assert parse_params({"projects": {"p": fixed}}).project("p").evaluate.max_new_tokens == 100


def _reviews(path, rows: int, words: tuple[int, int], seed: int = 0):
    rng = random.Random(seed)
    with path.open("w") as fh:
        for i in range(rows):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words)))
            fh.write(json.dumps({"text": text, "label": ("pos", "neg")[i % 2]}) + "\n")
    return path


@pytest.mark.parametrize("words, cap, expect_cut", [((3, 8), 64, False), ((150, 250), 64, True)])
def test_tokenize_derives_the_length_and_pretraining_sizes_the_positions_to_it(tmp_path, caplog, words, cap,
                                                                               expect_cut):
    source = _reviews(tmp_path / "reviews.jsonl", 200, words)
    params = tiny_params(["classification"], classification__data__source=str(source))
    params["projects"]["classification"]["tokenizer"].update(max_length="auto", auto_max_length=cap)
    params["projects"]["classification"]["pretrain"]["max_steps"] = 1
    root = make_repo_copy(tmp_path / "repo", params)
    with caplog.at_level(logging.WARNING):
        run_stages(root, until="pretrain")
    report = json.loads((root / "reports/classification/tokenize.json").read_text())
    entry = report["lengths"]["max_length"]
    assert entry["setting"] == "auto"
    assert json.loads((root / "data/classification/tokenizer/lengths.json").read_text()) == report["lengths"]
    config = json.loads((root / "models/classification/pretrained/config.json").read_text())
    encoded_longest = max(len(x) for x in _encoded_ids(root))
    if expect_cut:
        assert entry["value"] == cap and entry["limited_by"] == "tokenizer.auto_max_length"
        assert entry["truncated"]["train"]["share"] > 0.9
        assert "raise projects.classification.tokenizer.auto_max_length" in caplog.text
        assert config["max_position_embeddings"] == cap
        assert encoded_longest == cap
    else:
        assert entry["value"] <= 16 and entry["truncated"]["train"]["rows"] == 0
        assert "tokenizer.max_length" not in caplog.text
        assert encoded_longest <= entry["value"]
    from pipelines.cli.summary import length_warnings

    assert bool(length_warnings("classification", root)) == expect_cut


def _encoded_ids(root):
    import datasets

    return datasets.load_from_disk(str(root / "data/classification/encoded"))["train"]["input_ids"]
