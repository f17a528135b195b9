"""How sure a generated-text score is: the scorer that resamples test examples, and the trivial
baseline every model must beat (the source copied for translation, its leading sentences for
summarization)."""

from __future__ import annotations

import re
import statistics


from pipelines.tasks import get_task
from pipelines.tasks.seq2seq.model import references_of, score

# Sentence ends, as the ROUGE-Lsum split of the metric module: [.!?] and whitespace, or a newline.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def resample_scorer(result: dict, cfg):
    """The task's test metrics on a resample: BLEU and chrF from summed sentence statistics, ROUGE
    as the mean of per-example F-measures (as the metric modules compute them on the whole split)."""
    from pipelines.metrics.resample import mean_scorer, sacrebleu_scorer

    task = get_task(cfg.task)
    names = {key: name for name, key in task.test_metrics.items()}
    if task.metric_module == "sacrebleu_scores":
        lowercase = bool(cfg.tokenizer.lowercase) if task.metric_lowercase else False
        inner = sacrebleu_scorer(result["predictions"], result["references"], lowercase=lowercase)
    else:
        per_example = result["per_example"]
        inner = mean_scorer(per_example, [k for k in names if per_example and k in per_example[0]])
    return lambda idx: {names[k]: v for k, v in inner(idx).items() if k in names}


def test_outputs(result: dict) -> list[str]:
    """The generated text of each scored example."""
    return list(result["predictions"])


def result_from_outputs(records: list[dict], outputs: list[str], cfg) -> dict:
    """Predictions and references again, with the per-example scores ROUGE's resampling needs."""
    if len(outputs) != len(records):
        raise ValueError(f"{len(outputs)} outputs for {len(records)} test examples")
    refs = [references_of(r, cfg) for r in records]
    per_example = []
    if records and get_task(cfg.task).metric_module != "sacrebleu_scores":
        per_example = score(cfg.task, list(outputs), refs, cfg.tokenizer.lowercase, per_example=True)["per_example"]
    return {"predictions": list(outputs), "references": refs, "per_example": per_example}


def lead(text: str, words: int) -> str:
    """The leading sentences of ``text``, whole, until they hold at least ``words`` words."""
    taken, count = [], 0
    for sentence in filter(None, (s.strip() for s in SENTENCE_END.split(text))):
        taken.append(sentence)
        count += len(sentence.split())
        if count >= words:
            break
    return " ".join(taken)


def baseline_result(records: list[dict], train: list[dict], full: dict, cfg) -> tuple[str, dict]:
    """Translation: the source copied unchanged. Summarization: the document's leading sentences, as
    many as reach the median summary length of the train split (in words)."""
    task = get_task(cfg.task)
    src, tgt = task.input_field, task.target_field
    if task.metric_module == "sacrebleu_scores":
        name, predictions = "the source copied", [r[src] for r in records]
    else:
        words = max(1, int(statistics.median(len(r[tgt].split()) for r in train))) if train else 1
        name, predictions = f"leading sentences (at least {words} words)", [lead(r[src], words) for r in records]
    refs = [references_of(r, cfg) for r in records]
    result = {"predictions": predictions, "references": refs, "per_example": []}
    if not records:
        return name, {**result, "metrics": {}, "primary": None}
    res = score(cfg.task, predictions, refs, cfg.tokenizer.lowercase, per_example=True)
    metrics = {m: res[key] for m, key in task.test_metrics.items() if key in res}
    result.update(per_example=res["per_example"], metrics=metrics, primary=metrics[task.primary_metric])
    return name, result



