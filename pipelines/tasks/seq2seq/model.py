"""Translation and summarization: a small BART-style encoder-decoder.

From scratch, the tokenize stage trains a subword tokenizer on the training split (one shared
vocabulary for both sides, or one per side), pretrain teaches a small encoder-decoder to undo BART
text infilling on the training text, and finetune trains it on the task with ``Seq2SeqTrainer``.
A shared vocabulary gives a ``BartForConditionalGeneration`` (one embedding matrix for encoder,
decoder and output layer); two vocabularies give a ``MarianMTModel`` with separate encoder and
decoder embeddings. With ``model.init`` naming a checkpoint, its tokenizer and weights are used.

Which of the two tasks is running comes from ``cfg.task``; only the field names, the metric module
and the output key differ between them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from pipelines.core.errors import TrainingError
from pipelines.core.settings import progress
from pipelines.data.tokenization import BART_SPECIALS
from pipelines.models import decoding
from pipelines.tasks import get_task

logger = logging.getLogger(__name__)

SPECIALS = BART_SPECIALS  # the tokenizer's special tokens
# Pretraining rows hold the clean token ids; the collator corrupts them and makes the labels.
# "denoise_labels" exists only with two vocabularies (the same text in the decoder's vocabulary).
PRETRAIN_KEYS = ("input_ids", "denoise_labels")
FINETUNE_KEYS = ("input_ids", "attention_mask", "labels")
FIGURE_NAME = "length_histogram.png"



# --------------------------------------------------------------------------- tokenizers and data
def _fields(cfg) -> tuple[str, str]:
    task = get_task(cfg.task)
    return task.input_field, task.target_field


def source_tokenizer(tokenizers: dict):
    return tokenizers["tokenizer"]


def target_tokenizer(tokenizers: dict):
    """The decoder's tokenizer: its own with two vocabularies, else the shared one."""
    return tokenizers.get("target", tokenizers["tokenizer"])


def build_tokenizers(splits: dict[str, list[dict]], cfg) -> dict:
    """Train tokenizer(s) on the training split only, or take the checkpoint's."""
    from pipelines.data.tokenization import load_checkpoint_tokenizer, train_tokenizer

    if not cfg.model.from_scratch:
        return {"tokenizer": load_checkpoint_tokenizer(cfg.model.init)}
    src, tgt = _fields(cfg)
    train = splits["train"]
    max_len = max(cfg.tokenizer.max_length, cfg.tokenizer.max_target_length)
    if cfg.tokenizer.shared_vocab:
        def both():
            for rec in train:
                yield rec[src]
                yield rec[tgt]

        return {"tokenizer": train_tokenizer(both(), cfg.tokenizer, SPECIALS, max_length=max_len)}
    return {
        "tokenizer": train_tokenizer((r[src] for r in train), cfg.tokenizer, SPECIALS),
        "target": train_tokenizer((r[tgt] for r in train), cfg.tokenizer, SPECIALS,
                                  max_length=cfg.tokenizer.max_target_length),
    }


def encode(splits: dict[str, list[dict]], tokenizers: dict, cfg):
    """input_ids / attention_mask (source, truncated to tokenizer.max_length), labels (target with the
    target tokenizer, truncated to tokenizer.max_target_length) and the source length in tokens."""
    import datasets

    src, tgt = _fields(cfg)
    s_tok, t_tok = source_tokenizer(tokenizers), target_tokenizer(tokenizers)
    two_vocabs = "target" in tokenizers
    columns = {
        "input_ids": datasets.Sequence(datasets.Value("int32")),
        "attention_mask": datasets.Sequence(datasets.Value("int8")),
        "labels": datasets.Sequence(datasets.Value("int32")),
        "length": datasets.Value("int32"),
    }
    if two_vocabs:
        columns["denoise_labels"] = datasets.Sequence(datasets.Value("int32"))
    features = datasets.Features(columns)
    out = {}
    for split, records in splits.items():
        sources = [r[src] for r in records]
        enc = s_tok(sources, truncation=True, max_length=cfg.tokenizer.max_length)
        labels = t_tok([r[tgt] for r in records], truncation=True, max_length=cfg.tokenizer.max_target_length)
        data = {
            "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"],
            "labels": labels["input_ids"],
            "length": [len(x) for x in enc["input_ids"]],
        }
        if two_vocabs:
            # Denoising pretraining reconstructs the source text, which the decoder can only write
            # in its own vocabulary.
            data["denoise_labels"] = t_tok(sources, truncation=True, max_length=cfg.tokenizer.max_length)["input_ids"]
        out[split] = datasets.Dataset.from_dict(data, features=features)
    return datasets.DatasetDict(out)


# --------------------------------------------------------------------------- pretraining
def pretrain_datasets(dsd, cfg):
    """Denoising rows for train and validation: the text of both sides with one shared vocabulary
    (the target side is read from ``labels``, already in that vocabulary), else the source side."""
    import datasets

    def rows(ds):
        if "denoise_labels" in ds.column_names:
            return ds.select_columns(["input_ids", "denoise_labels", "length"])
        labels = list(ds["labels"])
        target = datasets.Dataset.from_dict(
            {"input_ids": labels, "length": [len(x) for x in labels]},
            features=datasets.Features({"input_ids": ds.features["input_ids"], "length": ds.features["length"]}),
        )
        return datasets.concatenate_datasets([ds.select_columns(["input_ids", "length"]), target])

    return rows(dsd["train"]), rows(dsd["validation"])


class DenoisingCollator:
    """BART text infilling: spans with Poisson(span_length) lengths (at least 1 token) are chosen
    until ``mask_ratio`` of a sequence's tokens are covered; each maximal masked run becomes one
    ``<mask>``. The final ``</s>`` is never masked. Labels are the original sequence (or
    ``denoise_labels`` when the decoder has its own vocabulary); padding in labels is -100.

    Randomness comes from torch's global generator, which the Trainer seeds and checkpoints.
    """

    def __init__(self, pad_id: int, mask_id: int, eos_id: int, mask_ratio: float, span_length: float):
        self.pad_id, self.mask_id, self.eos_id = pad_id, mask_id, eos_id
        self.mask_ratio, self.span_length = mask_ratio, span_length

    def mask_positions(self, n: int) -> np.ndarray:
        """Which of n tokens to mask: about mask_ratio of them, in spans."""
        masked = np.zeros(n, dtype=bool)
        goal = int(round(n * self.mask_ratio))
        covered, tries = 0, 0
        rate = torch.tensor([self.span_length], dtype=torch.float)
        while covered < goal and tries < 10 * n + 10:
            tries += 1
            length = max(1, int(torch.poisson(rate).item()))
            length = min(length, goal - covered, n)  # never overshoot the ratio
            start = int(torch.randint(0, n - length + 1, (1,)).item())
            masked[start:start + length] = True
            covered = int(masked.sum())
        return masked

    def corrupt(self, ids: list[int]) -> list[int]:
        body, tail = (ids[:-1], ids[-1:]) if ids and ids[-1] == self.eos_id else (ids, [])
        masked = self.mask_positions(len(body))
        out = []
        for i, tok in enumerate(body):
            if not masked[i]:
                out.append(tok)
            elif i == 0 or not masked[i - 1]:
                out.append(self.mask_id)
        return out + tail

    def __call__(self, features: list[dict]) -> dict:
        inputs = [self.corrupt(list(f["input_ids"])) for f in features]
        labels = [list(f["denoise_labels"]) if f.get("denoise_labels") is not None else list(f["input_ids"])
                  for f in features]
        width = max(len(x) for x in inputs)
        lwidth = max(len(x) for x in labels)
        return {
            "input_ids": torch.tensor([x + [self.pad_id] * (width - len(x)) for x in inputs], dtype=torch.long),
            "attention_mask": torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in inputs], dtype=torch.long),
            "labels": torch.tensor([x + [-100] * (lwidth - len(x)) for x in labels], dtype=torch.long),
        }


def pretrain_collator(tokenizers, cfg):
    tok = source_tokenizer(tokenizers)
    return DenoisingCollator(tok.pad_token_id, tok.mask_token_id, tok.eos_token_id, cfg.pretrain.mask_ratio,
                             cfg.pretrain.span_length)


def max_positions(cfg) -> int:
    """Position table size (config.position_table_size); evaluate.max_new_tokens is checked to fit it."""
    from pipelines.tasks.seq2seq import position_table_size

    return position_table_size(cfg.tokenizer)


def build_pretrain_model(cfg, tokenizers):
    """A small encoder-decoder sized from params: BART with one shared vocabulary (MBart with
    ``model.layer_norm: pre``), Marian (separate encoder and decoder embeddings) with two."""
    from transformers import BartConfig, BartForConditionalGeneration, MarianConfig, MarianMTModel

    m = cfg.model
    s_tok, t_tok = source_tokenizer(tokenizers), target_tokenizer(tokenizers)
    if (s_tok.pad_token_id, s_tok.eos_token_id, s_tok.bos_token_id) != (
            t_tok.pad_token_id, t_tok.eos_token_id, t_tok.bos_token_id):
        raise ValueError("source and target tokenizers disagree on the ids of <pad>, <s> and </s>")
    common = dict(
        d_model=m.hidden_size, encoder_layers=m.num_layers, decoder_layers=m.num_decoder_layers,
        encoder_attention_heads=m.num_heads, decoder_attention_heads=m.num_heads,
        encoder_ffn_dim=m.intermediate_size, decoder_ffn_dim=m.intermediate_size, dropout=m.dropout,
        activation_function="gelu", max_position_embeddings=max_positions(cfg), scale_embedding=False,
        pad_token_id=s_tok.pad_token_id, bos_token_id=s_tok.bos_token_id, eos_token_id=s_tok.eos_token_id,
        # The labels end with </s> and do not start with <s>: the decoder starts from <s>.
        decoder_start_token_id=s_tok.bos_token_id, forced_bos_token_id=None, forced_eos_token_id=None,
    )
    if "target" in tokenizers:
        config = MarianConfig(vocab_size=len(s_tok), decoder_vocab_size=len(t_tok),
                              share_encoder_decoder_embeddings=False, **common)
        config._attn_implementation = m.attention
        return MarianMTModel(config)
    if m.layer_norm == "pre":
        from transformers import MBartConfig, MBartForConditionalGeneration

        # MBart builds the decoder input by moving each label sequence's last token (our </s>) to the
        # front, whatever decoder_start_token_id says; generation must start from that same token.
        config = MBartConfig(vocab_size=len(s_tok), **{**common, "decoder_start_token_id": s_tok.eos_token_id})
        config._attn_implementation = m.attention
        return MBartForConditionalGeneration(config)
    config = BartConfig(vocab_size=len(s_tok), **common)
    config._attn_implementation = m.attention
    return BartForConditionalGeneration(config)


# --------------------------------------------------------------------------- fine-tuning
def set_generation_ids(model, tokenizers) -> None:
    """Make generation start, stop and pad with our tokenizer's ids, with no forced first token."""
    tok = target_tokenizer(tokenizers)
    gc = model.generation_config
    start = model.config.decoder_start_token_id
    if start is None:
        start = tok.bos_token_id if tok.bos_token_id is not None else tok.pad_token_id
    gc.decoder_start_token_id = start
    gc.eos_token_id = tok.eos_token_id
    gc.pad_token_id = tok.pad_token_id
    gc.forced_bos_token_id = None
    if getattr(gc, "forced_eos_token_id", None) not in (None, tok.eos_token_id):
        gc.forced_eos_token_id = tok.eos_token_id


def build_model(cfg, init: str | Path, dsd, tokenizers):
    """The encoder-decoder, from the pretrained folder or a checkpoint name."""
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(str(init), attn_implementation=cfg.model.attention)
    set_generation_ids(model, tokenizers)
    return model


def collator(tokenizers, cfg, model=None):
    """Pads inputs, pads labels with -100 and builds decoder_input_ids from the labels."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(source_tokenizer(tokenizers), model=model, label_pad_token_id=-100)


def training_diagnostics(model, dsd, collator, cfg) -> dict:
    """How much the trained model reads its source: validation loss (plain cross-entropy) with each
    example's own source and with the next example's. A gain near zero means the decoder learnt the
    target side alone and the encoder is ignored, whatever the loss curve looks like."""
    val = dsd["validation"]
    n = min(len(val), 128)
    if n < 2:
        return {}
    own = [{k: val[i][k] for k in FINETUNE_KEYS} for i in range(n)]
    other = [{**row, "input_ids": own[(i + 1) % n]["input_ids"], "attention_mask": own[(i + 1) % n]["attention_mask"]}
             for i, row in enumerate(own)]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    losses = []
    with torch.inference_mode():
        for rows in (own, other):
            total = 0.0
            for start in range(0, n, 32):
                batch = {k: v.to(device) for k, v in collator(rows[start:start + 32]).items()}
                total += float(model(**batch).loss) * len(rows[start:start + 32])
            losses.append(total / n)
    model.train(was_training)
    gain = losses[1] - losses[0]
    if gain < 0.05:
        logger.warning("the model barely reads its source: validation loss %.3f with the right sources, %.3f with "
                       "another example's. Train longer, or lower the learning rate (a post-LN encoder trained "
                       "from scratch at a high rate can collapse to one vector).", losses[0], losses[1])
    return {"validation_loss_own_source": losses[0], "validation_loss_other_source": losses[1],
            "source_gain": gain}


def trainer_class():
    from transformers import Seq2SeqTrainer

    return Seq2SeqTrainer


def eval_dataset(dsd, cfg):
    """The first validation examples: generating on every one each epoch would dominate training time."""
    val = dsd["validation"]
    return val.select(range(min(len(val), cfg.finetune.validation_generate_samples)))


def decode(tokenizer, ids) -> list[str]:
    return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]


def score(task_name: str, predictions: list[str], references: list[list[str]], lowercase: bool = False,
          per_example: bool = False) -> dict:
    """The task's metric module (BLEU / chrF, ROUGE...) on the predictions; with ``per_example``,
    also each example's sentence scores (``per_example``: one dict per prediction)."""
    from pipelines.metrics import load_metric

    task = get_task(task_name)
    # A lowercasing tokenizer can only produce lowercase text: compare case-insensitively then.
    options = {"lowercase": lowercase} if task.metric_lowercase else {}
    if per_example:
        options["per_example"] = True
    return load_metric(task.metric_module).compute(predictions=predictions, references=references, **options)


def compute_metrics_fn(dsd, tokenizers, cfg):
    """Scores of greedy generations on the validation subset (the Trainer generates them)."""
    tok = target_tokenizer(tokenizers)
    keys = get_task(cfg.task).validation_metrics

    def compute(eval_pred):
        preds, labels = eval_pred
        if isinstance(preds, tuple):
            preds = preds[0]
        preds = np.where(np.asarray(preds) < 0, tok.pad_token_id, preds)
        labels = np.where(np.asarray(labels) < 0, tok.pad_token_id, labels)
        pred_texts, ref_texts = decode(tok, preds), decode(tok, labels)
        res = score(cfg.task, pred_texts, [[r] for r in ref_texts], cfg.tokenizer.lowercase)
        out = {k: res[k] for k in keys}
        out["gen_len"] = float(np.mean([(p != tok.pad_token_id).sum() for p in preds]))
        return out

    return compute


# --------------------------------------------------------------------------- inference
def pad_batch(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input_ids and attention_mask."""
    width = max(len(s) for s in seqs)
    ids = torch.tensor([list(s) + [pad_id] * (width - len(s)) for s in seqs], dtype=torch.long)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], dtype=torch.long)
    return ids, mask


def decoding_settings(cfg) -> dict:
    """``model.generate`` keyword arguments for the evaluate block's beam search."""
    ev = cfg.evaluate
    return dict(num_beams=ev.num_beams, length_penalty=ev.length_penalty, max_new_tokens=ev.max_new_tokens,
                min_new_tokens=min(ev.min_new_tokens, ev.max_new_tokens),
                no_repeat_ngram_size=ev.no_repeat_ngram_size, do_sample=False,
                early_stopping=ev.num_beams > 1,
                # A saved generation config may carry max_length; max_new_tokens rules here. The
                # Trainer leaves config.use_cache False, and decoding without the cache is slow.
                max_length=None, use_cache=True)


def serving_params(cfg) -> dict:
    """A request may set the beams, the length penalty and the output's length."""
    ev = cfg.evaluate
    return {"num_beams": ev.num_beams, "length_penalty": float(ev.length_penalty), "max_new_tokens": ev.max_new_tokens}


def prepare_for_saving(model, cfg) -> None:
    """Put the evaluate block's decoding settings in the model's generation config, so that
    ``model.generate`` on the saved folder decodes as evaluate and serving do. Seq2SeqTrainer's
    validation leaves the legacy defaults there instead (``max_length`` 20, which cuts every output
    at 19 tokens, and ``min_length`` 0, which makes generate warn on every call)."""
    _apply_decoding_settings(model.generation_config, cfg)


def save_decoding_settings(folder: Path, cfg) -> None:
    """Write the evaluate block's decoding settings into the generation_config.json of a saved model
    folder (export does, for every variant it exports: it declares the evaluate block, which the
    training stages do not)."""
    from transformers import GenerationConfig

    folder = Path(folder)
    if not (folder / "generation_config.json").exists():
        return
    gc = GenerationConfig.from_pretrained(str(folder))
    _apply_decoding_settings(gc, cfg)
    gc.save_pretrained(str(folder))


def _apply_decoding_settings(gc, cfg) -> None:
    gc.update(**decoding_settings(cfg), min_length=None)
    gc._from_model_config = False  # ours, not derived from the model config: keep it as it is


@torch.inference_mode()
def generate(model, tokenizers, texts: list[str], cfg, device="cpu", desc: str | None = None,
             **overrides) -> list[str]:
    """Batched beam search with the evaluate block's settings; batches are formed from inputs of
    similar length (less padding) and the outputs come back in input order. With ``desc``, a
    progress bar of that name."""
    s_tok, t_tok = source_tokenizer(tokenizers), target_tokenizer(tokenizers)
    ev = cfg.evaluate
    settings = decoding_settings(cfg)
    settings.update(overrides)
    gc = getattr(model, "generation_config", None)
    if gc is not None and gc.min_length == 0:
        # Models saved before prepare_for_saving carry Seq2SeqTrainer's legacy min_length 0, and
        # generate then warns on every batch that min_new_tokens wins.
        gc.min_length = None
    model.eval()
    # Our own beam loop where it gives generate's outputs: the same translations, less time per step.
    lean = ev.decoder == "auto" and decoding.supports(model, settings)
    ids = s_tok(list(texts), truncation=True, max_length=cfg.tokenizer.max_length)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: len(ids[i]), reverse=True)
    out: list[str | None] = [None] * len(texts)
    batches = range(0, len(order), ev.batch_size)
    for i in (progress(batches, desc, unit="batch") if desc else batches):
        chunk = order[i:i + ev.batch_size]
        input_ids, attention_mask = pad_batch([ids[j] for j in chunk], s_tok.pad_token_id)
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        if lean:
            gen = decoding.beam_search(model, input_ids, attention_mask, **settings)
        else:
            gen = model.generate(input_ids=input_ids, attention_mask=attention_mask, **settings)
        for j, text in zip(chunk, decode(t_tok, gen.cpu())):
            out[j] = text
    return out


def predict_texts(model, tokenizers, texts: list[str], cfg, device="cpu") -> list[dict]:
    """Translations or summaries of raw texts (serving, latency measurements), in input order."""
    key = get_task(cfg.task).output_key
    return [{key: t} for t in generate(model, tokenizers, texts, cfg, device)]


def references_of(rec: dict, cfg) -> list[str]:
    """The target, plus any further human references the record carries (summarization)."""
    _, tgt = _fields(cfg)
    refs = [rec[tgt]]
    refs += [r for r in (rec.get("references") or []) if r and r not in refs]
    return refs


def evaluate_model(model, tokenizers, records: list[dict], cfg, device="cpu") -> dict:
    """Generate for the test records with beam search and score them: metrics, the primary metric,
    sample rows, the metric signature for the report, and lengths for the plot."""
    src, _ = _fields(cfg)
    task = get_task(cfg.task)
    t_tok = target_tokenizer(tokenizers)
    texts = [r[src] for r in records]
    refs = [references_of(r, cfg) for r in records]
    start = time.perf_counter()
    preds = generate(model, tokenizers, texts, cfg, device, desc="test outputs")
    seconds = time.perf_counter() - start
    res = score(cfg.task, preds, refs, cfg.tokenizer.lowercase, per_example=True)

    def n_tokens(strings):
        return [len(x) for x in t_tok(strings, add_special_tokens=False)["input_ids"]]

    pred_len, ref_len = n_tokens(preds), n_tokens([r[0] for r in refs])
    metrics = {name: res[key] for name, key in task.test_metrics.items()}
    extra = {key: res[key] for key in task.metric_records}
    metrics |= {
        "prediction_length": float(np.mean(pred_len)),
        "reference_length": float(np.mean(ref_len)),
        "examples_per_second": len(texts) / seconds if seconds > 0 else 0.0,
    }
    samples = [{src: t, "reference": r[0], "prediction": p}
               for t, r, p in list(zip(texts, refs, preds))[: cfg.evaluate.sample_predictions]]
    return {"metrics": metrics, "primary": metrics[task.primary_metric], "samples": samples, "report_extra": extra,
            "predictions": preds, "lengths": list(zip(ref_len, pred_len)), "references": refs,
            "per_example": res["per_example"]}


def prediction_rows(records: list[dict], result: dict, cfg):
    """One row per test example: the input, its references, the output, and its sentence scores
    (BLEU and chrF, or ROUGE); ``score`` is the sentence score of the task's primary metric."""
    src, _ = _fields(cfg)
    primary = get_task(cfg.task).primary_metric
    for i, (rec, refs, pred, scores) in enumerate(zip(records, result["references"], result["predictions"],
                                                      result["per_example"])):
        yield {"example": i, "input": rec[src], "reference": refs[0], "references": refs, "prediction": pred,
               "score": round(scores[primary], 4), "scores": {k: round(v, 4) for k, v in scores.items()}}


def plot_rows(result: dict) -> tuple[list[dict], list[str]]:
    """One row per test example: reference (actual) and prediction length in tokens, drawn as a
    scatter by the task's plot template (pipelines/plots/<task>.json)."""
    columns = ["actual", "predicted"]
    return [dict(zip(columns, pair)) for pair in result["lengths"]], columns


def figure(result: dict):
    """Histogram of reference and prediction lengths, for the MLflow run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref, pred = (np.asarray(x) for x in zip(*result["lengths"])) if result["lengths"] else ([], [])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    top = int(max([*ref, *pred, 1]))
    bins = np.arange(0, top + 2) if top <= 60 else 30
    ax.hist(ref, bins=bins, alpha=0.5, label="reference")
    ax.hist(pred, bins=bins, alpha=0.5, label="prediction")
    ax.set_xlabel("length (tokens)")
    ax.set_ylabel("test examples")
    ax.legend()
    ax.set_title("output lengths")
    fig.tight_layout()
    return fig


def check_source_gain(report: dict, floor: float | None) -> None:
    """finetune.min_source_gain: a model that ignores its source fails the stage instead of being
    saved, evaluated and registered. The MLflow run keeps its curves and ends as failed."""
    gain = report.get("source_gain")
    if floor is None or gain is None or gain >= floor:
        return
    raise TrainingError(
        f"the fine-tuned model ignores its source: source_gain {gain:.4f} is below finetune.min_source_gain "
        f"{floor} (validation loss {report['validation_loss_own_source']:.3f} with each example's source, "
        f"{report['validation_loss_other_source']:.3f} with another's). Train longer (finetune.epochs), lower "
        f"finetune.learning_rate, or start from a checkpoint (model.init); to keep this model, lower or remove "
        f"finetune.min_source_gain (the checkpoints are kept, so the re-run does not train again).")
