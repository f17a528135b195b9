"""The project's metric modules load offline by path and agree with the libraries they wrap."""

import os

# Before evaluate / datasets are imported anywhere: a mistaken hub lookup must fail fast, not retry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")

import subprocess
import sys

import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF
from sklearn import metrics as skm

from pipelines.metrics import available_metrics, compute, load_metric

# sacrebleu's README example: three segments, two reference streams.
HYPS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]
REF_STREAMS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
REFS_PER_EXAMPLE = [list(refs) for refs in zip(*REF_STREAMS)]

# Three classes; "neutral" (id 1) occurs in the references but is never predicted.
LABELS = ["negative", "neutral", "positive"]
CLS_REFS = [0, 0, 1, 1, 2, 2, 2, 0, 1, 2]
CLS_PREDS = [0, 2, 0, 2, 2, 2, 0, 0, 2, 2]

SUMMARIES = [
    "The cats sat on the mat. They were happy!",
    "Police arrested two men after the robbery",
    "Rain is expected tomorrow.\nTake an umbrella.",
]
SUMMARY_REFS = [
    ["The cat sat on a mat and was happy.", "Cats sat on mats. Happy cats!"],
    ["Two men were arrested by police after a bank robbery.", "Robbery: police arrest two"],
    ["Take an umbrella tomorrow.\nRain is expected.", "Expect rain tomorrow."],
]
ROUGE_TYPES = ["rouge1", "rouge2", "rougeL", "rougeLsum"]


def _mean_x100(values):
    return 100 * sum(values) / len(values)


# --------------------------------------------------------------------------- loading
def test_available_metrics_lists_the_shipped_modules():
    assert available_metrics() == ["classification_report", "rouge_scores", "sacrebleu_scores"]


@pytest.mark.parametrize("name", ["classification_report", "rouge_scores", "sacrebleu_scores"])
def test_each_metric_loads_offline_by_path(name):
    import evaluate

    metric = load_metric(name)
    assert isinstance(metric, evaluate.Metric)
    assert metric.info.description and metric.info.citation and metric.info.inputs_description


@pytest.mark.parametrize("name", ["bleu", "../classification_report", "classification_report/"])
def test_unknown_name_raises_naming_the_available_ones(name):
    with pytest.raises(ValueError, match="unknown metric") as err:
        load_metric(name)
    for available in ("classification_report", "rouge_scores", "sacrebleu_scores"):
        assert available in str(err.value)


def test_importing_the_package_does_not_import_evaluate():
    code = "import sys, pipelines.metrics; print('evaluate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- classification_report
def test_classification_report_matches_sklearn_with_a_never_predicted_class():
    res = compute("classification_report", predictions=CLS_PREDS, references=CLS_REFS, labels=LABELS)
    ids = list(range(len(LABELS)))

    assert res["labels"] == LABELS
    assert res["accuracy"] == pytest.approx(skm.accuracy_score(CLS_REFS, CLS_PREDS))
    assert res["macro_f1"] == pytest.approx(
        skm.f1_score(CLS_REFS, CLS_PREDS, labels=ids, average="macro", zero_division=0)
    )
    assert res["weighted_f1"] == pytest.approx(
        skm.f1_score(CLS_REFS, CLS_PREDS, labels=ids, average="weighted", zero_division=0)
    )
    precision = skm.precision_score(CLS_REFS, CLS_PREDS, labels=ids, average=None, zero_division=0)
    recall = skm.recall_score(CLS_REFS, CLS_PREDS, labels=ids, average=None, zero_division=0)
    f1 = skm.f1_score(CLS_REFS, CLS_PREDS, labels=ids, average=None, zero_division=0)
    assert list(res["per_class"]) == LABELS
    for i, name in enumerate(LABELS):
        pc = res["per_class"][name]
        assert pc["precision"] == pytest.approx(precision[i])
        assert pc["recall"] == pytest.approx(recall[i])
        assert pc["f1"] == pytest.approx(f1[i])
        assert pc["support"] == CLS_REFS.count(i)
    assert res["per_class"]["neutral"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 3}
    assert res["confusion_matrix"] == skm.confusion_matrix(CLS_REFS, CLS_PREDS, labels=ids).tolist()


def test_classification_report_reports_a_named_class_that_never_occurs():
    res = compute("classification_report", predictions=[0, 1, 1], references=[0, 1, 0], labels=["a", "b", "c"])
    assert res["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert res["macro_f1"] == pytest.approx(
        skm.f1_score([0, 1, 0], [0, 1, 1], labels=[0, 1, 2], average="macro", zero_division=0)
    )
    assert res["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]


def test_classification_report_without_labels_uses_sorted_ids_seen():
    refs, preds = [3, 1, 3, 7], [1, 1, 3, 3]
    res = compute("classification_report", predictions=preds, references=refs)
    assert res["labels"] == ["1", "3", "7"]
    assert list(res["per_class"]) == ["1", "3", "7"]
    assert res["confusion_matrix"] == skm.confusion_matrix(refs, preds).tolist()
    assert res["macro_f1"] == pytest.approx(skm.f1_score(refs, preds, average="macro", zero_division=0))


def test_classification_report_rejects_ids_without_a_name():
    with pytest.raises(ValueError, match=r"label ids \[2\] are outside 0..1"):
        compute("classification_report", predictions=[0, 2], references=[0, 1], labels=["a", "b"])


# --------------------------------------------------------------------------- sacrebleu_scores
def _assert_same_as_sacrebleu(res, bleu, chrf):
    assert res["bleu"] == pytest.approx(bleu.score)
    assert res["chrf"] == pytest.approx(chrf.score)
    assert res["bp"] == pytest.approx(bleu.bp)
    assert res["precisions"] == pytest.approx(bleu.precisions)
    assert res["sys_len"] == bleu.sys_len
    assert res["ref_len"] == bleu.ref_len


def test_sacrebleu_scores_one_reference_matches_sacrebleu():
    v = sacrebleu.__version__
    res = compute("sacrebleu_scores", predictions=HYPS, references=REF_STREAMS[0])  # plain strings
    _assert_same_as_sacrebleu(
        res, sacrebleu.corpus_bleu(HYPS, REF_STREAMS[:1]), sacrebleu.corpus_chrf(HYPS, REF_STREAMS[:1])
    )
    assert res["bleu_signature"] == f"nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:{v}"
    assert res["chrf_signature"] == f"nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{v}"
    # A list of one reference per example is the same thing.
    as_lists = compute("sacrebleu_scores", predictions=HYPS, references=[[r] for r in REF_STREAMS[0]])
    assert as_lists == res


def test_sacrebleu_scores_two_references_match_sacrebleu():
    v = sacrebleu.__version__
    res = compute("sacrebleu_scores", predictions=HYPS, references=REFS_PER_EXAMPLE)
    bleu = sacrebleu.corpus_bleu(HYPS, REF_STREAMS)
    _assert_same_as_sacrebleu(res, bleu, sacrebleu.corpus_chrf(HYPS, REF_STREAMS))
    assert res["bleu"] == pytest.approx(48.53, abs=0.01)  # the value sacrebleu's README gives
    assert res["bleu_signature"] == f"nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:{v}"
    assert res["chrf_signature"] == f"nrefs:2|case:mixed|eff:yes|nc:6|nw:0|space:no|version:{v}"


def test_sacrebleu_scores_varying_reference_counts_pad_with_none():
    refs = [REFS_PER_EXAMPLE[0], REFS_PER_EXAMPLE[1][:1], REFS_PER_EXAMPLE[2]]
    streams = [REF_STREAMS[0], [REF_STREAMS[1][0], None, REF_STREAMS[1][2]]]
    res = compute("sacrebleu_scores", predictions=HYPS, references=refs)

    bleu_metric, chrf_metric = BLEU(), CHRF()
    _assert_same_as_sacrebleu(
        res, bleu_metric.corpus_score(HYPS, streams), chrf_metric.corpus_score(HYPS, streams)
    )
    assert res["bleu_signature"] == str(bleu_metric.get_signature())
    assert res["bleu_signature"].startswith("nrefs:var|")
    assert res["chrf_signature"] == str(chrf_metric.get_signature())


def test_sacrebleu_scores_passes_tokenize_and_lowercase():
    hyps = [h.upper() for h in HYPS]
    res = compute("sacrebleu_scores", predictions=hyps, references=REFS_PER_EXAMPLE, tokenize="char", lowercase=True)
    bleu = sacrebleu.corpus_bleu(hyps, REF_STREAMS, tokenize="char", lowercase=True)
    chrf = CHRF(lowercase=True).corpus_score(hyps, REF_STREAMS)
    _assert_same_as_sacrebleu(res, bleu, chrf)
    assert "|case:lc|" in res["bleu_signature"] and "|tok:char|" in res["bleu_signature"]


def test_sacrebleu_scores_unknown_tokenizer_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="unknown tokenize 'moses'.*13a"):
        compute("sacrebleu_scores", predictions=HYPS, references=REFS_PER_EXAMPLE, tokenize="moses")


# --------------------------------------------------------------------------- rouge_scores
def test_rouge_scores_single_reference_matches_rouge_score():
    refs = [r[0] for r in SUMMARY_REFS]
    res = compute("rouge_scores", predictions=SUMMARIES, references=refs)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    direct = [scorer.score(r, p) for r, p in zip(refs, SUMMARIES)]
    for t in ["rouge1", "rouge2", "rougeL"]:
        assert res[t] == pytest.approx(_mean_x100([s[t].fmeasure for s in direct]))
    for t in ["rouge1", "rougeL"]:
        assert res[f"{t}_precision"] == pytest.approx(_mean_x100([s[t].precision for s in direct]))
        assert res[f"{t}_recall"] == pytest.approx(_mean_x100([s[t].recall for s in direct]))
    assert res["lsum_sentence_split"] == "newline, else regex [.!?] + whitespace"
    assert set(res) == {"rouge1", "rouge2", "rougeL", "rougeLsum", "rouge1_precision", "rouge1_recall",
                        "rougeL_precision", "rougeL_recall", "lsum_sentence_split"}


def test_rouge_scores_several_references_take_the_best_f_per_example_and_type():
    res = compute("rouge_scores", predictions=SUMMARIES[:2], references=SUMMARY_REFS[:2])
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for t in ["rouge1", "rouge2", "rougeL"]:
        best = [max(scorer.score(r, p)[t].fmeasure for r in refs) for p, refs in zip(SUMMARIES, SUMMARY_REFS[:2])]
        assert res[t] == pytest.approx(_mean_x100(best))
    # The best reference really differs between examples and is not always the first one.
    first_only = compute("rouge_scores", predictions=SUMMARIES[:2], references=[r[0] for r in SUMMARY_REFS[:2]])
    assert res["rouge1"] > first_only["rouge1"]


def test_rouge_scores_use_stemmer_is_passed_on():
    refs = [r[0] for r in SUMMARY_REFS]
    res = compute("rouge_scores", predictions=SUMMARIES, references=refs, use_stemmer=False)
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False)
    direct = [scorer.score(r, p)["rouge1"].fmeasure for r, p in zip(refs, SUMMARIES)]
    assert res["rouge1"] == pytest.approx(_mean_x100(direct))


def test_rouge_lsum_splits_sentences_on_newlines_else_after_punctuation():
    preds = ["the dog barked loudly! the cat sat on the mat.", "Rain tomorrow.\nTake an umbrella. Or two."]
    refs = ["the cat sat on the mat? the dog barked loudly.", "Take an umbrella. Or two.\nRain tomorrow."]
    # The stated split, written out by hand: the second pair has newlines, so only those split.
    split_preds = ["the dog barked loudly!\nthe cat sat on the mat.", "Rain tomorrow.\nTake an umbrella. Or two."]
    split_refs = ["the cat sat on the mat?\nthe dog barked loudly.", "Take an umbrella. Or two.\nRain tomorrow."]
    res = compute("rouge_scores", predictions=preds, references=refs)

    scorer = rouge_scorer.RougeScorer(["rougeLsum", "rougeL"], use_stemmer=True)
    lsum = [scorer.score(r, p)["rougeLsum"].fmeasure for r, p in zip(split_refs, split_preds)]
    assert res["rougeLsum"] == pytest.approx(_mean_x100(lsum))
    assert res["rougeLsum"] == pytest.approx(100.0)  # same sentences, reordered
    # Without the split, Lsum would see one sentence each, i.e. plain rougeL on the first pair.
    assert scorer.score(refs[0], preds[0])["rougeLsum"].fmeasure < 1.0
    rouge_l = [scorer.score(r, p)["rougeL"].fmeasure for r, p in zip(refs, preds)]
    assert res["rougeL"] == pytest.approx(_mean_x100(rouge_l)) and res["rougeL"] < 100.0


# --------------------------------------------------------------------------- add_batch
@pytest.mark.parametrize(
    "name, predictions, references, kwargs",
    [
        ("classification_report", CLS_PREDS, CLS_REFS, {"labels": LABELS}),
        ("sacrebleu_scores", HYPS, REFS_PER_EXAMPLE, {}),
        ("sacrebleu_scores", HYPS, REF_STREAMS[0], {}),
        ("rouge_scores", SUMMARIES, SUMMARY_REFS, {}),
        ("rouge_scores", SUMMARIES, [r[0] for r in SUMMARY_REFS], {"use_stemmer": False}),
    ],
)
def test_add_batch_then_compute_equals_compute(name, predictions, references, kwargs):
    metric = load_metric(name)
    expected = metric.compute(predictions=predictions, references=references, **kwargs)
    # The same module object is reused after compute, as in a training loop.
    metric.add_batch(predictions=predictions[:2], references=references[:2])
    metric.add_batch(predictions=predictions[2:], references=references[2:])
    assert metric.compute(**kwargs) == expected


# --------------------------------------------------------------------------- per example
def test_per_example_scores_are_the_reference_libraries_sentence_scores():
    import sacrebleu

    res = compute("sacrebleu_scores", predictions=HYPS, references=REFS_PER_EXAMPLE, per_example=True)
    assert len(res["per_example"]) == len(HYPS)
    for hyp, refs, row in zip(HYPS, REFS_PER_EXAMPLE, res["per_example"]):
        assert row["bleu"] == pytest.approx(sacrebleu.sentence_bleu(hyp, refs).score)
        assert row["chrf"] == pytest.approx(sacrebleu.sentence_chrf(hyp, refs).score)
    assert "per_example" not in compute("sacrebleu_scores", predictions=HYPS, references=REFS_PER_EXAMPLE)

    res = compute("rouge_scores", predictions=SUMMARIES, references=SUMMARY_REFS, per_example=True)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    for pred, refs, row in zip(SUMMARIES, SUMMARY_REFS, res["per_example"]):
        best = scorer.score_multi(refs, pred)
        for t in ("rouge1", "rouge2", "rougeL"):
            assert row[t] == pytest.approx(100 * best[t].fmeasure)
    # the corpus figure is the mean of the per-example ones
    assert res["rougeL"] == pytest.approx(_mean_x100([r["rougeL"] / 100 for r in res["per_example"]]))
