"""Text classification: a BERT-style encoder with a classification head."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from pipelines.core.settings import progress
from pipelines.data.tokenization import BERT_SPECIALS
from pipelines.tasks import get_task
from pipelines.tasks.contract import TaskModel

logger = logging.getLogger(__name__)

SPECIALS = BERT_SPECIALS  # the tokenizer's special tokens
PRETRAIN_KEYS = ("input_ids", "attention_mask")
FINETUNE_KEYS = ("input_ids", "attention_mask", "labels")


def training_texts(splits: dict[str, list[dict]]):
    """The texts a tokenizer may learn from: the training split only."""
    for rec in splits["train"]:
        yield rec["text"]


def build_tokenizers(splits: dict[str, list[dict]], cfg) -> dict:
    """Train a tokenizer on the training text, or take the checkpoint's."""
    from pipelines.data.tokenization import load_checkpoint_tokenizer, train_tokenizer

    if cfg.model.from_scratch:
        return {"tokenizer": train_tokenizer(training_texts(splits), cfg.tokenizer, SPECIALS)}
    return {"tokenizer": load_checkpoint_tokenizer(cfg.model.init)}


def token_lengths(records: list[dict], tokenizers: dict, cfg) -> dict[str, list[int]]:
    """Each text's length in tokens, special tokens included, before truncation."""
    ids = tokenizers["tokenizer"]([r["text"] for r in records], truncation=False, verbose=False,
                                  return_attention_mask=False)["input_ids"]
    return {"max_length": [len(x) for x in ids]}


def encode(splits: dict[str, list[dict]], tokenizers: dict, cfg):
    """Token ids per split as a DatasetDict; labels as a ClassLabel over the training labels."""
    import datasets

    tokenizer = tokenizers["tokenizer"]
    names = sorted({r["label"] for r in splits["train"]})
    label_ids = {n: i for i, n in enumerate(names)}
    features = datasets.Features({
        "input_ids": datasets.Sequence(datasets.Value("int32")),
        "attention_mask": datasets.Sequence(datasets.Value("int8")),
        "labels": datasets.ClassLabel(names=names),
        "length": datasets.Value("int32"),
    })
    out = {}
    for split, records in splits.items():
        enc = tokenizer([r["text"] for r in records], truncation=True, max_length=cfg.tokenizer.max_length)
        out[split] = datasets.Dataset.from_dict({
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": [label_ids[r["label"]] for r in records],
            "length": [len(x) for x in enc["input_ids"]],
        }, features=features)
    return datasets.DatasetDict(out)


def label_names(dsd) -> list[str]:
    return dsd["train"].features["labels"].names


# --------------------------------------------------------------------------- models
def build_pretrain_model(cfg, tokenizers):
    """A small BERT for masked-language-model pretraining, sized from params."""
    from transformers import BertConfig

    tokenizer = tokenizers["tokenizer"]
    m = cfg.model
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
        num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
        hidden_dropout_prob=m.dropout, attention_probs_dropout_prob=m.dropout,
        max_position_embeddings=max(cfg.tokenizer.max_length, 32), type_vocab_size=2,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = m.attention
    return _masked_positions_mlm()(config)


@functools.cache
def _masked_positions_mlm():
    from transformers import BertForMaskedLM
    from transformers.modeling_outputs import MaskedLMOutput

    class MaskedPositionsMLM(BertForMaskedLM):
        """BertForMaskedLM that scores only the masked positions, as BERT's own pretraining did.

        The output layer spans the whole vocabulary (SST-2 at word level: 20,892 entries), and
        BertForMaskedLM applies it to every position although the loss reads the ~15% that are
        masked. Same weights, same loss (the mean cross-entropy over masked positions): one SST-2 epoch
        of a 4-layer, 256-wide model takes 90 s instead of 310 s on one thread, with the same losses to
        the sixth digit, and 1.55 GB of memory instead of 2.45 GB (docs/benchmark-findings.md). The saved
        folder (model_type bert) loads with AutoModelForMaskedLM, or as the encoder of a classifier.
        """

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
            if labels is None:
                return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                                       token_type_ids=token_type_ids, **kwargs)
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            scored = labels != -100
            logits = self.cls(hidden[scored])
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[scored])
            return MaskedLMOutput(loss=loss, logits=logits)

    return MaskedPositionsMLM


def pretrain_datasets(dsd, cfg):
    """Masked-language-model training on train, its loss measured on validation."""
    return dsd["train"], dsd["validation"]


def pretrain_collator(tokenizers, cfg):
    from transformers import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(tokenizers["tokenizer"], mlm_probability=cfg.pretrain.mlm_probability)


def build_model(cfg, init: str | Path, dsd, tokenizers):
    """The classifier, initialised from the pretrained encoder (a folder or a checkpoint name)."""
    from transformers import AutoModelForSequenceClassification

    labels = label_names(dsd)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(init), num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)}, attn_implementation=cfg.model.attention,
    )
    return model


def collator(tokenizers, cfg, model=None):
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizers["tokenizer"])


def training_diagnostics(model, dsd, collator, cfg) -> dict:
    """Whether the trained classifier's answer depends on its input: the share of validation examples
    given its most frequent label, and how much the encoder's first-token ([CLS]) output varies
    between examples (its standard deviation across them, averaged over dimensions). Accuracy at the
    majority-class rate can hide a model that answers the same for every text; these two say so."""
    val = dsd["validation"]
    n = min(len(val), 256)
    if n < 2:
        return {}
    rows = [{k: val[i][k] for k in FINETUNE_KEYS} for i in range(n)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds, first = [], []
    with torch.inference_mode():
        for start in range(0, n, 64):
            batch = {k: v.to(device) for k, v in collator(rows[start:start + 64]).items()}
            out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        output_hidden_states=True)
            preds.append(out.logits.argmax(-1).cpu())
            first.append(out.hidden_states[-1][:, 0].float().cpu())
    model.train(was_training)
    preds = torch.cat(preds)
    spread = float(torch.cat(first).std(0).mean())
    share = float(torch.bincount(preds).max()) / n
    true_share = float(torch.bincount(torch.tensor([r["labels"] for r in rows])).max()) / n
    if share >= 0.99 and true_share < 0.99:
        logger.warning(
            "the classifier gives one label to %.0f%% of the validation examples (the most frequent true label "
            "covers %.0f%%): it has not learnt from the text. Its [CLS] output varies by %.4f between inputs; "
            "masked-LM pretraining that is long for the amount of text can leave it the same for every input "
            "(SST-2, 384 wide: 0.0006 after an MLM epoch, when fine-tuning stalled; 0.022 after five steps). "
            "Pretrain fewer steps (pretrain.max_steps) or on more text, or change finetune.learning_rate.",
            100 * share, 100 * true_share, spread)
    return {"validation_majority_prediction_share": share, "validation_cls_spread": spread}


def compute_metrics_fn(dsd, tokenizers, cfg):
    from pipelines.metrics import load_metric

    labels = label_names(dsd)
    metric = load_metric("classification_report")

    def compute(eval_pred):
        logits, refs = eval_pred
        preds = np.asarray(logits).argmax(-1)
        res = metric.compute(predictions=preds.tolist(), references=np.asarray(refs).tolist(), labels=labels)
        return {"accuracy": res["accuracy"], "macro_f1": res["macro_f1"]}

    return compute


# --------------------------------------------------------------------------- inference
@torch.inference_mode()
def predict(model, tokenizer, texts: list[str], batch_size: int = 64, max_length: int = 128, device="cpu",
            desc: str | None = None):
    """Predicted label ids and every label's probability (one row per text, in label-id order), in
    input order; with ``desc``, a progress bar of that name."""
    model.eval()
    ids, probs = [], []
    batches = range(0, len(texts), batch_size)
    for i in (progress(batches, desc, unit="batch") if desc else batches):
        enc = tokenizer(texts[i:i + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(device)
        logits = model(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}).logits
        p = torch.softmax(logits.float(), -1)
        ids.extend(p.argmax(-1).tolist())
        probs.extend(p.tolist())
    return ids, probs


def evaluate_predictions(pred_ids: list[int], ref_ids: list[int], labels: list[str]) -> dict:
    """Accuracy, macro F1, per-class precision / recall and the confusion matrix."""
    from pipelines.metrics import load_metric

    return load_metric("classification_report").compute(predictions=pred_ids, references=ref_ids, labels=labels)


def evaluate_model(model, tokenizers, records: list[dict], cfg, device="cpu") -> dict:
    """Run the model over test records: metrics, the primary metric and a table of samples."""
    tokenizer = tokenizers["tokenizer"]
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    texts = [r["text"] for r in records]
    label_ids = {n: i for i, n in enumerate(labels)}
    unknown = sorted({r["label"] for r in records} - set(label_ids))
    if unknown:
        from pipelines.core.errors import DataError

        raise DataError(f"test labels {unknown} are unknown to the model (it knows {labels})")
    refs = [label_ids[r["label"]] for r in records]
    pred, prob = predict(model, tokenizer, texts, cfg.evaluate.batch_size, cfg.tokenizer.max_length, device,
                         desc="test predictions")
    metrics = evaluate_predictions(pred, refs, labels)
    samples = [
        {"text": t, "reference": labels[r], "prediction": labels[p], "probability": round(pr[p], 4)}
        for t, r, p, pr in list(zip(texts, refs, pred, prob))[: cfg.evaluate.sample_predictions]
    ]
    flat = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "weighted_f1": metrics["weighted_f1"]}
    for name, pc in metrics["per_class"].items():
        flat[f"precision.{name}"] = pc["precision"]
        flat[f"recall.{name}"] = pc["recall"]
    return {"metrics": flat, "details": metrics, "samples": samples, "primary": metrics["accuracy"],
            "pairs": [(labels[r], labels[p]) for r, p in zip(refs, pred)], "labels": labels, "probabilities": prob}


def prediction_rows(records: list[dict], result: dict, cfg):
    """One row per test example: the text, its label, the prediction with every label's probability
    (highest first), whether it is right (``score`` 1 or 0) and the model's confidence."""
    labels = result["labels"]
    for i, (rec, (actual, predicted), probs) in enumerate(zip(records, result["pairs"], result["probabilities"])):
        ranked = sorted(zip(labels, probs), key=lambda kv: -kv[1])
        yield {"example": i, "input": rec["text"], "reference": actual, "prediction": predicted,
               "score": float(actual == predicted), "confidence": round(ranked[0][1], 6),
               "probabilities": {name: round(p, 6) for name, p in ranked}}


def resample_scorer(result: dict, cfg):
    """Accuracy, macro and weighted F1 of a resample of the scored examples."""
    from pipelines.metrics.resample import classification_scorer

    ids = {name: i for i, name in enumerate(result["labels"])}
    refs, preds = zip(*[(ids[a], ids[p]) for a, p in result["pairs"]]) if result["pairs"] else ((), ())
    return classification_scorer(refs, preds, len(ids))


def test_outputs(result: dict) -> list[str]:
    """The predicted label of each scored example."""
    return [predicted for _, predicted in result["pairs"]]


def result_from_outputs(records: list[dict], outputs: list[str], cfg) -> dict:
    labels = sorted({r["label"] for r in records} | set(outputs))
    return {"pairs": [(r["label"], o) for r, o in zip(records, outputs, strict=True)], "labels": labels}


def baseline_result(records: list[dict], train: list[dict], full: dict, cfg) -> tuple[str, dict]:
    """Always the most frequent label of the train split (the first in label order on a tie)."""
    from collections import Counter

    labels = full["labels"]
    counts = Counter(r["label"] for r in train)
    majority = max(labels, key=lambda name: (counts.get(name, 0), -labels.index(name)))
    pairs = [(r["label"], majority) for r in records]
    result = {"pairs": pairs, "labels": labels}
    metrics = resample_scorer(result, cfg)(np.arange(len(pairs))) if pairs else {}
    return f"majority class ({majority!r})", {**result, "metrics": metrics, "primary": metrics.get("accuracy")}


FIGURE_NAME = "confusion_matrix.png"


def plot_rows(result: dict) -> tuple[list[dict], list[str]]:
    """One row per test example for DVC's confusion template."""
    return [{"actual": a, "predicted": p} for a, p in result["pairs"]], ["actual", "predicted"]


def figure(result: dict):
    """The confusion matrix as a matplotlib figure, for the MLflow run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    det = result["details"]
    labels, cm = det["labels"], np.asarray(det["confusion_matrix"])
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(labels), 1 + 0.8 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=8)
    ax.set_title(f"accuracy {det['accuracy']:.3f}")
    fig.tight_layout()
    return fig


def onnx_example(tokenizers, records: list[dict], cfg):
    enc = tokenizers["tokenizer"]([r["text"] for r in records], truncation=True, max_length=cfg.tokenizer.max_length,
                                  padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def predict_texts(model, tokenizers, texts: list[str], cfg, device="cpu") -> list[dict]:
    """For raw texts (serving, predict, the demo, latency measurements): the label, its probability,
    and every label's probability, highest first."""
    ids, probs = predict(model, tokenizers["tokenizer"], texts, cfg.evaluate.batch_size, cfg.tokenizer.max_length,
                         device)
    names = [model.config.id2label[i] for i in range(len(probs[0]))] if probs else []
    out = []
    for i, p in zip(ids, probs):
        ranked = dict(sorted(zip(names, p), key=lambda kv: -kv[1]))
        out.append({"label": names[i], "score": p[i], "probabilities": ranked})
    return out


def export_onnx(model, tokenizers, records: list[dict], folder: Path, cfg) -> dict:
    """model.onnx (logits from input_ids + attention_mask, dynamic batch and length), checked with
    onnxruntime against PyTorch on test texts."""
    import onnxruntime as ort

    model = model.cpu().eval()
    example = onnx_example(tokenizers, records[:8], cfg)
    path = Path(folder) / "model.onnx"

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask).logits

    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    # The dynamo exporter traces the real attention-mask logic; the TorchScript one froze a padding
    # branch at the example's shapes and disagreed with PyTorch by 5e-2 on other batches.
    # The wrapper is a new Module, in training mode until told otherwise (the exporter warns).
    wrapped = Logits(model).eval()
    torch.onnx.export(
        wrapped, (example["input_ids"], example["attention_mask"]), str(path), dynamo=True,
        external_data=False, input_names=["input_ids", "attention_mask"], output_names=["logits"],
        opset_version=cfg.export.onnx_opset,
        dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
    )
    check = onnx_example(tokenizers, records[:32], cfg)
    with torch.inference_mode():
        ref = wrapped(check["input_ids"], check["attention_mask"]).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {k: v.numpy() for k, v in check.items()})[0]
    diff = float(np.abs(got - ref).max())
    return {"onnx_file": path.name, "onnx_max_abs_diff": diff, "onnx_argmax_agreement": float(
        (got.argmax(-1) == ref.argmax(-1)).mean()), "onnx_checked_examples": len(ref)}


# --------------------------------------------------------------------------- compression
def build_student(teacher, settings):
    """A smaller BERT classifier (compress.distillation: layers, width, heads, feed-forward size; null
    keeps the teacher's), initialised from the teacher wherever shapes match."""
    from pipelines.compression.distillation import copy_matching_weights, student_config
    from pipelines.models.files import PRUNED_HEADS_KEY
    from pipelines.core.errors import ConfigError

    shape = {"num_hidden_layers": settings.num_layers, "hidden_size": settings.hidden_size,
             "num_attention_heads": settings.num_heads, "intermediate_size": settings.intermediate_size}
    config = student_config(teacher.config, shape)
    if config.hidden_size % config.num_attention_heads:
        raise ConfigError(f"compress.distillation: student width {config.hidden_size} is not divisible by its "
                          f"{config.num_attention_heads} heads")
    if hasattr(config, PRUNED_HEADS_KEY):
        delattr(config, PRUNED_HEADS_KEY)
    student = type(teacher)(config)
    return student, copy_matching_weights(student, teacher)


class OrtClassifier:
    """An ONNX Runtime session behind the interface :func:`predict` uses (``config``, ``eval``, call)."""

    def __init__(self, folder: Path, config):
        from pipelines.models.files import ort_session

        self.session = ort_session(Path(folder) / "model.onnx")
        self.config = config

    def eval(self):
        return self

    def __call__(self, input_ids, attention_mask):
        from types import SimpleNamespace

        logits = self.session.run(["logits"], {"input_ids": input_ids.cpu().numpy(),
                                               "attention_mask": attention_mask.cpu().numpy()})[0]
        return SimpleNamespace(logits=torch.from_numpy(logits))


def onnx_files(folder: Path) -> list[Path]:
    return [Path(folder) / "model.onnx"]


def ort_model(folder: Path, tokenizers, cfg):
    """The ONNX graph written by :func:`export_onnx` (fp32 or ORT-quantized) as a model that
    :func:`predict_texts` and :func:`evaluate_model` accept; labels come from the saved config."""
    from transformers import AutoConfig

    return OrtClassifier(folder, AutoConfig.from_pretrained(str(folder)))


class ClassificationModel(TaskModel):
    """A BERT-style encoder with a classification head (pipelines.tasks.contract)."""

    generates_text = False
    PRETRAIN_KEYS = PRETRAIN_KEYS
    FINETUNE_KEYS = FINETUNE_KEYS
    FIGURE_NAME = FIGURE_NAME
    build_tokenizers = staticmethod(build_tokenizers)
    token_lengths = staticmethod(token_lengths)
    encode = staticmethod(encode)
    pretrain_datasets = staticmethod(pretrain_datasets)
    pretrain_collator = staticmethod(pretrain_collator)
    build_pretrain_model = staticmethod(build_pretrain_model)
    build_model = staticmethod(build_model)
    collator = staticmethod(collator)
    training_diagnostics = staticmethod(training_diagnostics)
    compute_metrics_fn = staticmethod(compute_metrics_fn)
    predict_texts = staticmethod(predict_texts)
    evaluate_model = staticmethod(evaluate_model)
    resample_scorer = staticmethod(resample_scorer)
    baseline_result = staticmethod(baseline_result)
    test_outputs = staticmethod(test_outputs)
    result_from_outputs = staticmethod(result_from_outputs)
    prediction_rows = staticmethod(prediction_rows)
    plot_rows = staticmethod(plot_rows)
    figure = staticmethod(figure)
    export_onnx = staticmethod(export_onnx)
    onnx_files = staticmethod(onnx_files)
    ort_model = staticmethod(ort_model)
    build_student = staticmethod(build_student)
