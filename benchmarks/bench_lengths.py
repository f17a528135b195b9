"""Sequence lengths derived from the data against the fixed ones the `base` presets used to carry.

    python -m benchmarks.run lengths

For each shared data set, `dvc repro tokenize@<project>` with the `base` preset as it is (lengths
`auto`) and with the fixed lengths the preset held before (classification 64; translation 64 / 64;
summarization 64 / 24): the lengths chosen, the share of training and test examples each cuts, and
the mean tokens per example (what a training step costs grows with it). For summarization, whose
documents are long, the seconds per pretraining step at both settings too (`pretrain.max_steps`
steps of the preset's model, batch and precision).
"""

from __future__ import annotations

import logging

from .common import SHARED, load_previous, project_params, run_pipeline, save

logger = logging.getLogger(__name__)

DATA = {"classification": "classification/sst2", "translation": "translation/multi30k_en_de",
        "summarization": "summarization/aeslc"}
FIXED = {"classification": {"max_length": 64},
         "translation": {"max_length": 64, "max_target_length": 64},
         "summarization": {"max_length": 64, "max_target_length": 24}}
STEPS = 12


def lengths_of(reports: dict) -> dict:
    tokenize = reports["tokenize"]
    out = {"mean_tokens_train": round(tokenize["mean_tokens"]["train"], 1)}
    for key, entry in tokenize["lengths"].items():
        out[key] = {"value": entry["value"], "at_percentile": entry.get("at_percentile"),
                    "limited_by": entry.get("limited_by"), "longest_train": entry["longest"],
                    "cut_train": entry["truncated"]["train"]["share"], "cut_test": entry["truncated"]["test"]["share"]}
    return out


def main(skip_real: bool = False, skip_default: bool = False) -> dict:
    results = load_previous("lengths")
    for task, folder in DATA.items():
        for name, tokenizer in (("auto", {}), ("fixed", FIXED[task])):
            overrides = {"tokenizer": tokenizer}
            timed = task == "summarization"
            if timed:
                overrides["pretrain"] = {"max_steps": STEPS, "save_steps": 1000, "logging_steps": 1}
            if task == "summarization":
                overrides["data"] = {"references_field": None}
            logger.info("%s, %s lengths", task, name)
            params = project_params(task, str(SHARED / folder), preset="base", overrides=overrides, register=False)
            run = run_pipeline(params, [task], f"{'pretrain' if timed else 'tokenize'}@{task}")
            row = lengths_of(run["reports"][task])
            if timed:
                pretrain = run["reports"][task]["pretrain"]
                row["pretrain_seconds_per_step"] = round(pretrain["train_seconds"] / STEPS, 3)
            results.setdefault(task, {})[name] = row
    save("lengths", results)
    return results
