"""ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum from Google's rouge-score package.

Scores are mean F-measures x 100 over the examples. With several references for an example, each
ROUGE type takes the reference with the best F-measure for that example (``score_multi``).

Sentence split for ROUGE-Lsum: rouge-score's Lsum treats each line as a sentence, so texts are
split first. A text that contains a newline is split on newlines; otherwise it is split after
``.``, ``!`` or ``?`` followed by whitespace (regex ``(?<=[.!?])\\s+``). The sentences, stripped
and without empty ones, are joined with "\\n". The result reports this as "lsum_sentence_split".
The split does not change ROUGE-1/2/L: rouge-score's tokenizer treats newlines as any other
whitespace.

Loaded by path, offline: ``evaluate.load("pipelines/metrics/rouge_scores")``.
evaluate scans this file's imports to check its dependencies: keep one import per line.
"""

import re

import datasets
import evaluate
import numpy as np
from rouge_score import rouge_scorer

ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
# Types that also report mean precision and recall.
PR_TYPES = ["rouge1", "rougeL"]
LSUM_SENTENCE_SPLIT = "newline, else regex [.!?] + whitespace"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

_DESCRIPTION = """\
ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum (mean F-measure x 100) computed with rouge-score's
RougeScorer. Several references per example are allowed: for each example and ROUGE type the
reference with the best F-measure counts. For ROUGE-Lsum, texts are split into sentences on
newlines, or if they have none after [.!?] followed by whitespace.
"""

_CITATION = """\
@inproceedings{lin-2004-rouge,
    title = "{ROUGE}: A Package for Automatic Evaluation of Summaries",
    author = "Lin, Chin-Yew",
    booktitle = "Text Summarization Branches Out",
    year = "2004",
    publisher = "Association for Computational Linguistics",
    url = "https://www.aclweb.org/anthology/W04-1013",
    pages = "74--81",
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): one summary per example.
    references (`list` of `str`, or `list` of `list` of `str`): one reference per example, or a
        list of one or more references per example.
    use_stemmer (`bool`, default True): Porter-stem tokens before matching.
    per_example (`bool`, default False): also return each example's scores (per_example, a list of
        {"rouge1", "rouge2", "rougeL", "rougeLsum"} F-measures x 100, best reference).
Returns:
    rouge1, rouge2, rougeL, rougeLsum (`float`, 0-100): mean F-measure x 100,
    rouge1_precision, rouge1_recall, rougeL_precision, rougeL_recall (`float`, 0-100): mean
        precision / recall x 100 of the best-F reference,
    lsum_sentence_split (`str`): how texts were split into sentences for rougeLsum.
Examples:
    >>> metric = evaluate.load("pipelines/metrics/rouge_scores")
    >>> metric.compute(predictions=["the cat sat"], references=[["the cat sat", "a dog"]])["rouge1"]
    100.0
"""


def split_sentences(text: str) -> str:
    """One sentence per line: split on newlines if any, else after [.!?] + whitespace."""
    parts = text.split("\n") if "\n" in text else _SENTENCE_END.split(text)
    return "\n".join(s.strip() for s in parts if s.strip())


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RougeScores(evaluate.Metric):
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
            codebase_urls=["https://github.com/google-research/google-research/tree/master/rouge"],
            reference_urls=["https://pypi.org/project/rouge-score/"],
        )

    def _compute(self, predictions, references, use_stemmer=True, per_example=False):
        if len(predictions) == 0:
            raise ValueError("rouge_scores needs at least one prediction / reference pair")
        references = [[refs] if isinstance(refs, str) else list(refs) for refs in references]
        empty = [i for i, refs in enumerate(references) if not refs]
        if empty:
            raise ValueError(f"every example needs at least one reference; none for examples {empty[:10]}")

        scorer = rouge_scorer.RougeScorer(ROUGE_TYPES, use_stemmer=use_stemmer)
        # One pass on the sentence-split texts serves all four types: the split only adds
        # newlines, which the tokenizer of ROUGE-1/2/L ignores.
        scores = [
            scorer.score_multi([split_sentences(r) for r in refs], split_sentences(pred))
            for pred, refs in zip(predictions, references)
        ]

        result = {t: 100 * float(np.mean([s[t].fmeasure for s in scores])) for t in ROUGE_TYPES}
        for t in PR_TYPES:
            result[f"{t}_precision"] = 100 * float(np.mean([s[t].precision for s in scores]))
            result[f"{t}_recall"] = 100 * float(np.mean([s[t].recall for s in scores]))
        result["lsum_sentence_split"] = LSUM_SENTENCE_SPLIT
        if per_example:
            result["per_example"] = [{t: 100 * float(s[t].fmeasure) for t in ROUGE_TYPES} for s in scores]
        return result
