"""Corpus-level BLEU and chrF from sacrebleu, with their signatures.

References may be one string per example or a list of strings per example, and the number of
references may differ between examples. sacrebleu takes references as parallel streams (one list
per reference "slot", each as long as the predictions); an example with fewer references gets
``None`` in the slots it lacks, which sacrebleu skips ("nrefs:var" in the signature). ``""`` would
not do: sacrebleu would count it as a real, empty reference.

Loaded by path, offline: ``evaluate.load("pipelines/metrics/sacrebleu_scores")``.
evaluate scans this file's imports to check its dependencies: keep one import per line.
"""

import datasets
import evaluate
from sacrebleu.metrics import BLEU
from sacrebleu.metrics import CHRF

_DESCRIPTION = """\
Corpus-level BLEU and chrF computed with sacrebleu (BLEU and CHRF metric objects), returned with
their reproducibility signatures. One or several references per example; the count may vary.
"""

_CITATION = """\
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    publisher = "Association for Computational Linguistics",
    url = "https://www.aclweb.org/anthology/W18-6319",
    pages = "186--191",
}
@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\\'c}, Maja",
    booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
    year = "2015",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/W15-3049",
    pages = "392--395",
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): one hypothesis per example.
    references (`list` of `str`, or `list` of `list` of `str`): one reference per example, or a
        list of one or more references per example (the count may vary between examples).
    tokenize (`str`, default "13a"): BLEU tokenizer, one of sacrebleu's BLEU.TOKENIZERS.
        ("flores101", "flores200", "spBLEU-1K", "ja-mecab", "ko-mecab" need downloads.)
    lowercase (`bool`, default False): case-insensitive BLEU and chrF.
    per_example (`bool`, default False): also return each example's sentence BLEU and chrF.
Returns:
    bleu (`float`, 0-100), chrf (`float`, 0-100), bleu_signature (`str`), chrf_signature (`str`),
    bp (`float`, brevity penalty), precisions (`list` of 4 `float`, n-gram precisions 0-100),
    sys_len (`int`), ref_len (`int`); with per_example, per_example (`list` of {"bleu", "chrf"}):
    sentence BLEU (effective n-gram order, as sacrebleu's sentence_bleu) and sentence chrF.
Examples:
    >>> metric = evaluate.load("pipelines/metrics/sacrebleu_scores")
    >>> metric.compute(predictions=["the cat sat on the mat"], references=[["the cat sat on the mat"]])["bleu"]
    100.00000000000004
"""


def _reference_streams(references) -> list[list]:
    """Per-example references -> sacrebleu's parallel streams, ``None`` where an example has fewer."""
    per_example = [[refs] if isinstance(refs, str) else list(refs) for refs in references]
    empty = [i for i, refs in enumerate(per_example) if not refs]
    if empty:
        raise ValueError(f"every example needs at least one reference; none for examples {empty[:10]}")
    n_streams = max(len(refs) for refs in per_example)
    return [[refs[j] if j < len(refs) else None for refs in per_example] for j in range(n_streams)]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SacrebleuScores(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # Alternatives, tried in order on the first example: several references, or one.
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Sequence(datasets.Value("string")),
                    }
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Value("string"),
                    }
                ),
            ],
            codebase_urls=["https://github.com/mjpost/sacreBLEU"],
            reference_urls=["https://github.com/mjpost/sacreBLEU#readme"],
        )

    def _compute(self, predictions, references, tokenize="13a", lowercase=False, per_example=False):
        if len(predictions) == 0:
            raise ValueError("sacrebleu_scores needs at least one prediction / reference pair")
        if tokenize not in BLEU.TOKENIZERS:
            raise ValueError(f"unknown tokenize {tokenize!r}; allowed: {', '.join(BLEU.TOKENIZERS)}")
        streams = _reference_streams(references)

        bleu_metric = BLEU(tokenize=tokenize, lowercase=lowercase)
        chrf_metric = CHRF(lowercase=lowercase)
        bleu = bleu_metric.corpus_score(predictions, streams)
        chrf = chrf_metric.corpus_score(predictions, streams)
        # Signatures read the reference count from the last corpus_score call: take them after it.
        result = {
            "bleu": float(bleu.score),
            "chrf": float(chrf.score),
            "bleu_signature": str(bleu_metric.get_signature()),
            "chrf_signature": str(chrf_metric.get_signature()),
            "bp": float(bleu.bp),
            "precisions": [float(p) for p in bleu.precisions],
            "sys_len": int(bleu.sys_len),
            "ref_len": int(bleu.ref_len),
        }
        if per_example:
            # A sentence rarely has every 4-gram: effective order, as sacrebleu's sentence_bleu does.
            sentence_bleu = BLEU(tokenize=tokenize, lowercase=lowercase, effective_order=True)
            result["per_example"] = [
                {"bleu": float(sentence_bleu.sentence_score(pred, [r for r in refs if r is not None]).score),
                 "chrf": float(chrf_metric.sentence_score(pred, [r for r in refs if r is not None]).score)}
                for pred, refs in zip(predictions, zip(*streams))
            ]
        return result
