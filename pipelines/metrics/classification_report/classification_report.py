"""Classification report: accuracy, macro / weighted F1, per-class scores and the confusion matrix.

Computed by ``sklearn.metrics``, with every class of ``labels`` reported (also one that never
occurs). A score whose denominator is zero (a class never predicted, or absent from both
predictions and references) is 0.0 (``zero_division=0``).

Loaded by path, offline: ``evaluate.load("pipelines/metrics/classification_report")``.
evaluate scans this file's imports to check its dependencies: keep one import per line.
"""

import datasets
import evaluate
import numpy as np
from sklearn import metrics

_DESCRIPTION = """\
Accuracy, macro and weighted F1, per-class precision / recall / F1 / support and the confusion
matrix (rows = reference, columns = prediction) for single-label classification with integer ids.
Scores with a zero denominator are 0.0.
"""

_CITATION = """\
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and others},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`): predicted label ids.
    references (`list` of `int`): reference label ids.
    labels (`list` of `str`, optional): names of the ids 0..k-1. Every class is reported, also one
        that never occurs; an id outside 0..k-1 is an error. If None, the classes are the sorted
        ids seen in predictions and references, named by their id.
Returns:
    accuracy (`float`), macro_f1 (`float`), weighted_f1 (`float`, weighted by support),
    per_class (`dict`: name -> {"precision", "recall", "f1", "support"}),
    confusion_matrix (`list` of `list` of `int`; rows = reference, columns = prediction, in the
        order of `labels`),
    labels (`list` of `str`): the class names, in matrix order.
Examples:
    >>> metric = evaluate.load("pipelines/metrics/classification_report")
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0], labels=["neg", "pos"])["accuracy"]
    0.6666666666666666
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClassificationReport(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int64"),
                    "references": datasets.Value("int64"),
                }
            ),
            reference_urls=["https://scikit-learn.org/stable/modules/model_evaluation.html"],
        )

    def _compute(self, predictions, references, labels=None):
        y_pred = np.asarray(predictions, dtype=np.int64)
        y_true = np.asarray(references, dtype=np.int64)
        if y_true.size == 0:
            raise ValueError("classification_report needs at least one prediction / reference pair")

        if labels is None:
            ids = np.unique(np.concatenate([y_true, y_pred]))  # sorted
            names = [str(i) for i in ids.tolist()]
        else:
            names = [str(n) for n in labels]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"labels must be unique; repeated: {duplicates}")
            ids = np.arange(len(names))
            seen = np.unique(np.concatenate([y_true, y_pred]))
            outside = seen[(seen < 0) | (seen >= len(names))].tolist()
            if outside:
                raise ValueError(
                    f"label ids {outside} are outside 0..{len(names) - 1}: `labels` names "
                    f"{len(names)} classes ({names}); give a name for every id"
                )

        precision, recall, f1, support = metrics.precision_recall_fscore_support(
            y_true, y_pred, labels=ids, average=None, zero_division=0)
        cm = metrics.confusion_matrix(y_true, y_pred, labels=ids)

        return {
            "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1.mean()),
            "weighted_f1": float((f1 * support).sum() / support.sum()),
            "per_class": {
                name: {
                    "precision": float(precision[i]),
                    "recall": float(recall[i]),
                    "f1": float(f1[i]),
                    "support": int(support[i]),
                }
                for i, name in enumerate(names)
            },
            "confusion_matrix": cm.tolist(),
            "labels": names,
        }
