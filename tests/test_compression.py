"""The compression techniques on tiny in-process models: pruning (unstructured, heads, feed-forward
neurons) that survives saving and loading, distillation that teaches a student, ONNX Runtime's int8
quantization, the serving path of an int8 export, the export's variant choice, and config errors."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from types import SimpleNamespace

import pytest
import torch
import yaml

from pipelines.compression.distillation import distill, distillation_loss, teacher_layers
from pipelines.compression.measurement import count_nonzero, count_parameters, linear_weight_bytes
from pipelines.compression.pruning import block_linears, block_sparsity, make_pruning_permanent, prune_ffn, prune_heads, prune_magnitude
from pipelines.compression.quantization import quantize_onnx_int8
from pipelines.models.files import (attention_modules, load_hf_model, num_heads, quantize_dynamic_int8, save_quantized,
                                   weights_size)
from pipelines.config import ConfigError, parse_params
from pipelines.tasks.classification import ClassificationProject
from pipelines.tasks.translation import TranslationProject
from pipelines.tasks.classification import model as cls_task
from pipelines.tasks.seq2seq import model as seq2seq
from pipelines.data.tokenization import train_tokenizer
from pipelines.training.harness import KeepKeys

WORDS = "the a film plot actor scene music long short boring great awful fine dull witty good bad".split()
TINY = {"hidden_size": 32, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4, "intermediate_size": 64,
        "dropout": 0.0}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and a busy shared machine does not stall them."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _records(n, seed=0):
    """A learnable task: the label says whether the text holds 'good' or 'bad'."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS[:-2]) for _ in range(rng.randint(3, 12))]
        label = rng.choice(["good", "bad"])
        words.insert(rng.randrange(len(words) + 1), label)
        out.append({"text": " ".join(words), "label": "pos" if label == "good" else "neg"})
    return out


@pytest.fixture(scope="module")
def clf():
    """A tiny BERT classifier (random weights), its tokenizer, config and encoded data."""
    cfg = ClassificationProject.model_validate({
        "model": TINY, "tokenizer": {"vocab_size": 120, "max_length": 32},
        "compress": {"distillation": {"enabled": True, "num_layers": 1, "epochs": 3, "batch_size": 16,
                                      "learning_rate": 3e-3, "temperature": 2.0, "alpha": 0.5}},
    })
    splits = {"train": _records(192), "validation": _records(32, 1), "test": _records(64, 2)}
    tok = train_tokenizer((r["text"] for r in splits["train"]), cfg.tokenizer, cls_task.SPECIALS)
    toks = {"tokenizer": tok}
    dsd = cls_task.encode(splits, toks, cfg)
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    pre = cls_task.build_pretrain_model(cfg, toks)
    conf = BertConfig(**{**pre.config.to_dict(), "num_labels": 2, "id2label": {0: "neg", 1: "pos"},
                         "label2id": {"neg": 0, "pos": 1}})
    conf.architectures = ["BertForSequenceClassification"]
    model = BertForSequenceClassification(conf).eval()
    return SimpleNamespace(cfg=cfg, toks=toks, dsd=dsd, splits=splits, model=model)


def _logits(model, clf, n=16):
    enc = clf.toks["tokenizer"]([r["text"] for r in clf.splits["test"][:n]], padding=True, return_tensors="pt")
    with torch.inference_mode():
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits


def _size(folder):
    return weights_size(folder)


# --------------------------------------------------------------------------- quantization
def test_int8_shrinks_linear_weights_and_stays_close(clf, tmp_path):
    q = quantize_dynamic_int8(clf.model)
    assert linear_weight_bytes(clf.model) / linear_weight_bytes(q) == pytest.approx(4.0)
    save_quantized(q, tmp_path)
    clf.model.save_pretrained(tmp_path / "fp32")
    assert _size(tmp_path) < _size(tmp_path / "fp32")
    loaded = load_hf_model(tmp_path)  # the loader serving uses recognises the int8 folder
    a, b = _logits(clf.model, clf), _logits(loaded, clf)
    assert (a - b).abs().max() < 0.05 * a.abs().max() + 1e-3


# --------------------------------------------------------------------------- pruning
def test_magnitude_pruning_zeros_survive_save_and_load(clf, tmp_path):
    model = copy.deepcopy(clf.model)
    targets = prune_magnitude(model, 0.5)
    make_pruning_permanent(targets)
    assert not any(n.endswith("_orig") for n, _ in model.named_parameters())  # the masks are folded in
    assert block_sparsity(model) == pytest.approx(0.5, abs=0.01)
    zeros = {n: (m.weight == 0) for n, m in block_linears(model)}
    # embeddings, pooler and head stay dense
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, clf.model.bert.embeddings.word_embeddings.weight)
    assert torch.equal(model.classifier.weight, clf.model.classifier.weight)
    model.save_pretrained(tmp_path)
    loaded = load_hf_model(tmp_path)
    for name, mask in zeros.items():
        assert torch.equal(loaded.get_submodule(name).weight == 0, mask), name
    assert count_nonzero(loaded) < count_parameters(loaded)
    # int8 of the pruned model keeps the zeros too
    q = quantize_dynamic_int8(loaded)
    assert count_nonzero(q) <= count_nonzero(loaded)


def test_light_magnitude_pruning_keeps_outputs_close(clf):
    model = copy.deepcopy(clf.model)
    make_pruning_permanent(prune_magnitude(model, 0.1))
    a, b = _logits(clf.model, clf), _logits(model, clf)
    assert (a - b).abs().max() < 0.25 * a.abs().max()


def test_head_pruning_shrinks_the_saved_model_and_reloads(clf, tmp_path):
    model = copy.deepcopy(clf.model)
    removed = prune_heads(model, 2)
    assert len(removed) == 2 and all(len(h) == 2 for h in removed.values())
    assert all(num_heads(m) == 2 for m in attention_modules(model).values())
    assert count_parameters(model) < count_parameters(clf.model)
    model.save_pretrained(tmp_path / "pruned")
    clf.model.save_pretrained(tmp_path / "full")
    assert _size(tmp_path / "pruned") < _size(tmp_path / "full")
    loaded = load_hf_model(tmp_path / "pruned")
    assert torch.allclose(_logits(loaded, clf), _logits(model, clf), atol=1e-6)
    # the int8 copy of a head-pruned model loads with the smaller shapes as well
    save_quantized(quantize_dynamic_int8(loaded), tmp_path / "int8")
    assert count_parameters(load_hf_model(tmp_path / "int8")) == count_parameters(loaded)
    with pytest.raises(ValueError, match="at least one must stay"):
        prune_heads(copy.deepcopy(clf.model), 4)


def test_ffn_pruning_narrows_layers_and_config(clf, tmp_path):
    model = copy.deepcopy(clf.model)
    assert prune_ffn(model, 0.5) == {"intermediate_size": 32}
    assert model.config.intermediate_size == 32
    assert all(layer.intermediate.dense.out_features == 32 for layer in model.bert.encoder.layer)
    model.save_pretrained(tmp_path / "pruned")
    clf.model.save_pretrained(tmp_path / "full")
    assert _size(tmp_path / "pruned") < 0.85 * _size(tmp_path / "full")
    # a plain from_pretrained works: the config carries the new width
    from transformers import AutoModelForSequenceClassification

    loaded = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "pruned"))
    assert torch.allclose(_logits(loaded.eval(), clf), _logits(model, clf), atol=1e-6)


def test_structured_pruning_of_an_encoder_decoder_reloads_and_generates(tmp_path):
    from transformers import BartConfig, BartForConditionalGeneration

    conf = BartConfig(vocab_size=80, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                      decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=40,
                      pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                      forced_bos_token_id=None, forced_eos_token_id=None)
    conf.architectures = ["BartForConditionalGeneration"]
    torch.manual_seed(0)
    full = BartForConditionalGeneration(conf).eval()
    model = copy.deepcopy(full)
    assert len(prune_heads(model, 1)) == 3  # encoder self, decoder self and cross attention
    assert prune_ffn(model, 0.25) == {"encoder_ffn_dim": 48, "decoder_ffn_dim": 48}
    model.save_pretrained(tmp_path / "pruned")
    full.save_pretrained(tmp_path / "full")
    assert _size(tmp_path / "pruned") < _size(tmp_path / "full")
    loaded = load_hf_model(tmp_path / "pruned")
    assert loaded.lm_head.weight is loaded.model.shared.weight  # still tied
    ids = torch.randint(3, 80, (2, 7))
    with torch.inference_mode():
        a = model(input_ids=ids, decoder_input_ids=ids).logits
        b = loaded(input_ids=ids, decoder_input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-6)
    assert loaded.generate(input_ids=ids, max_new_tokens=4, num_beams=2).shape[0] == 2


def test_pruned_variant_chains_structured_unstructured_and_recovery(clf, tmp_path):
    """The compress stage's pruned variant: heads and neurons removed, then magnitude pruning whose
    zeros survive the recovery distillation."""
    from pipelines.stages.compress import Distiller, make_pruned

    cfg = clf.cfg.model_copy(update={"compress": clf.cfg.compress.model_copy(update={
        "pruning": clf.cfg.compress.pruning.model_copy(update={"heads": 1, "ffn_fraction": 0.25, "sparsity": 0.4,
                                                               "recovery_epochs": 1})})})
    before = copy.deepcopy(clf.model.state_dict())
    distiller = Distiller(SimpleNamespace(compress_checkpoints=tmp_path / "ckpt"), seed=0)
    distiller.train_data = lambda: clf.dsd["train"]
    model, info = make_pruned(clf.model, cfg, cls_task, clf.toks, distiller)
    assert all(torch.equal(v, clf.model.state_dict()[k]) for k, v in before.items())  # the teacher is untouched
    assert info["ffn_widths"] == {"intermediate_size": 48} and info["recovery"]["steps"] == 12
    assert info["block_sparsity"] == pytest.approx(0.4, abs=0.01)
    model.save_pretrained(tmp_path)
    loaded = load_hf_model(tmp_path)
    assert block_sparsity(loaded) == pytest.approx(0.4, abs=0.01)
    assert count_parameters(loaded) < count_parameters(clf.model)


# --------------------------------------------------------------------------- distillation
def test_distillation_loss_mixes_soft_and_hard_terms():
    torch.manual_seed(0)
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    y = torch.tensor([0, 1, 2, -100, 4, 1])
    ce = torch.nn.functional.cross_entropy(s[y != -100], y[y != -100])
    loss, soft, hard = distillation_loss(s, t, y, temperature=2.0, alpha=0.0)
    assert loss.item() == pytest.approx(ce.item()) and hard.item() == pytest.approx(ce.item())
    loss, soft, _ = distillation_loss(s, t, y, temperature=2.0, alpha=1.0)
    assert loss.item() == pytest.approx(soft.item()) and soft.item() > 0
    assert distillation_loss(t, t, y, 3.0, 1.0)[0].item() == pytest.approx(0.0, abs=1e-6)
    # token level: [batch, positions, vocabulary] with -100 at padding
    loss3, _, _ = distillation_loss(s.view(2, 3, 5), t.view(2, 3, 5), y.view(2, 3), 2.0, 0.5)
    assert loss3.item() == pytest.approx(distillation_loss(s, t, y, 2.0, 0.5)[0].item())


def test_student_takes_every_other_teacher_layer(clf):
    student, info = cls_task.build_student(clf.model, clf.cfg.compress.distillation)
    assert student.config.num_hidden_layers == 1 and info["teacher_layers"] == {"bert.encoder.layer": [0]}
    assert torch.equal(student.bert.encoder.layer[0].attention.self.query.weight,
                       clf.model.bert.encoder.layer[0].attention.self.query.weight)
    assert teacher_layers(3, 6) == [0, 2, 4] and teacher_layers(2, 4) == [0, 2]
    too_big = clf.cfg.compress.distillation.model_copy(update={"num_layers": 3})
    with pytest.raises(ConfigError, match="larger than the teacher"):
        cls_task.build_student(clf.model, too_big)


def _accuracy(model, clf):
    preds = cls_task.predict_texts(model, clf.toks, [r["text"] for r in clf.splits["test"]], clf.cfg)
    return sum(p["label"] == r["label"] for p, r in zip(preds, clf.splits["test"])) / len(preds)


def test_distilled_student_beats_an_untrained_one(clf, tmp_path):
    # A teacher that has learnt the task (plain cross-entropy), then a narrower student (no teacher
    # weight fits, so it starts from scratch) distilled from it.
    teacher = copy.deepcopy(clf.model)
    collator = KeepKeys(cls_task.collator(clf.toks, clf.cfg), cls_task.FINETUNE_KEYS)
    hard_only = clf.cfg.compress.distillation.model_copy(update={"alpha": 0.0, "epochs": 4})
    distill(teacher, copy.deepcopy(teacher), clf.dsd["train"], collator, hard_only, tmp_path / "teacher", seed=0)
    assert _accuracy(teacher, clf) >= 0.9
    settings = clf.cfg.compress.distillation.model_copy(update={"hidden_size": 16, "num_heads": 2,
                                                                "intermediate_size": 32, "epochs": 6})
    torch.manual_seed(0)
    student, info = cls_task.build_student(teacher, settings)
    untrained = _accuracy(copy.deepcopy(student).eval(), clf)
    report = distill(student, teacher, clf.dsd["train"], collator, settings, tmp_path / "student", seed=0)
    assert report["steps"] == 6 * 12 and report["final_soft_loss"] >= 0
    assert _accuracy(student, clf) >= max(untrained + 0.2, 0.85)
    assert count_parameters(student) < count_parameters(teacher) / 2


def test_an_interrupted_distillation_resumes_from_its_checkpoint(clf, tmp_path):
    """Distillation is trained by the shared harness: checkpoints every save_steps, and a re-run
    continues from the last one; gradients are clipped at max_grad_norm like any other training."""
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise KeyboardInterrupt

    collator = KeepKeys(cls_task.collator(clf.toks, clf.cfg), cls_task.FINETUNE_KEYS)
    settings = clf.cfg.compress.distillation.model_copy(update={"epochs": 1, "save_steps": 4, "max_grad_norm": 0.5})
    teacher = copy.deepcopy(clf.model)
    with pytest.raises(KeyboardInterrupt):
        distill(copy.deepcopy(clf.model), teacher, clf.dsd["train"], collator, settings, tmp_path, seed=0,
                callbacks=[Interrupt()])
    assert (tmp_path / "checkpoint-4").is_dir()
    report = distill(copy.deepcopy(clf.model), teacher, clf.dsd["train"], collator, settings, tmp_path, seed=0)
    assert report["resumed_from"] == "checkpoint-4" and report["steps"] == 12
    args = torch.load(tmp_path / "checkpoint-12" / "training_args.bin", weights_only=False)
    assert args.max_grad_norm == 0.5  # the block's setting, not a fixed clip


def test_seq2seq_distillation_matches_the_teacher_token_by_token(tmp_path):
    """Token-level KL with teacher forcing: the student's next-token distributions move towards the
    teacher's on held-out pairs."""
    cfg = TranslationProject.model_validate({
        "model": TINY, "tokenizer": {"type": "bpe", "vocab_size": 200, "max_length": 24, "max_target_length": 24},
        "evaluate": {"max_new_tokens": 24},
        "compress": {"distillation": {"enabled": True, "num_layers": 1, "num_decoder_layers": 1, "epochs": 3,
                                      "batch_size": 16, "learning_rate": 3e-3, "alpha": 1.0}},
    })
    en = "a the man woman dog cat runs sits on in red blue".split()
    rng = random.Random(0)
    pairs = [{"source": " ".join(rng.choice(en) for _ in range(rng.randint(3, 8))), "target": ""} for _ in range(128)]
    for p in pairs:
        p["target"] = " ".join(reversed(p["source"].split()))
    splits = {"train": pairs[:96], "validation": pairs[96:112], "test": pairs[112:]}
    toks = seq2seq.build_tokenizers(splits, cfg)
    dsd = seq2seq.encode(splits, toks, cfg)
    torch.manual_seed(0)
    teacher = seq2seq.build_pretrain_model(cfg, toks)
    seq2seq.set_generation_ids(teacher, toks)
    collator = KeepKeys(seq2seq.collator(toks, cfg, teacher), seq2seq.FINETUNE_KEYS)
    # a teacher with opinions: a few epochs on the task itself (cross-entropy only)
    hard_only = cfg.compress.distillation.model_copy(update={"alpha": 0.0, "epochs": 4})
    distill(teacher, copy.deepcopy(teacher), dsd["train"], collator, hard_only, tmp_path / "teacher", seed=0)
    from pipelines.tasks.seq2seq.export import build_student

    student, info = build_student(teacher, cfg.compress.distillation)
    assert (student.config.encoder_layers, student.config.decoder_layers) == (1, 1)
    assert info["teacher_layers"] == {"model.encoder.layers": [0], "model.decoder.layers": [0]}
    held_out = collator([dsd["test"][i] for i in range(len(dsd["test"]))])

    def kl():
        batch = {k: v for k, v in held_out.items() if k != "labels"}
        with torch.inference_mode():
            return distillation_loss(student.eval()(**batch).logits, teacher(**batch).logits, held_out["labels"],
                                       1.0, 1.0)[0].item()

    before = kl()
    distill(student, teacher, dsd["train"], collator, cfg.compress.distillation, tmp_path / "student", seed=0)
    assert kl() < 0.5 * before
    assert seq2seq.generate(student, toks, ["a red dog"], cfg, num_beams=1)[0] is not None


# --------------------------------------------------------------------------- ONNX Runtime
def test_ort_int8_graph_is_smaller_and_agrees(clf, tmp_path):
    records = clf.splits["test"]
    (tmp_path / "fp32").mkdir()
    cls_task.export_onnx(clf.model, clf.toks, records, tmp_path / "fp32", clf.cfg)
    quantize_onnx_int8(tmp_path / "fp32" / "model.onnx", tmp_path / "int8" / "model.onnx")
    assert weights_size(tmp_path / "int8") < 0.8 * weights_size(tmp_path / "fp32")
    for name in ("fp32", "int8"):
        clf.model.config.save_pretrained(tmp_path / name)
    texts = [r["text"] for r in records]
    ref = _logits(clf.model, clf, n=len(texts))
    enc = clf.toks["tokenizer"](texts, padding=True, return_tensors="pt")
    for name, tol in (("fp32", 1e-4), ("int8", 0.1)):
        ort_model = cls_task.ort_model(tmp_path / name, clf.toks, clf.cfg)
        got = ort_model(enc["input_ids"], enc["attention_mask"]).logits
        assert (got - ref).abs().max() < tol * max(1.0, ref.abs().max().item()), name
        # the ORT model goes through the same prediction code as PyTorch
        preds = cls_task.predict_texts(ort_model, clf.toks, texts[:3], clf.cfg)
        assert [p["label"] for p in preds] == [p["label"] for p in cls_task.predict_texts(clf.model, clf.toks,
                                                                                         texts[:3], clf.cfg)]


# --------------------------------------------------------------------------- serving and export choice
def test_an_exported_int8_variant_serves(clf, tmp_path):
    from pipelines.serving.pyfunc import TextModel
    from pipelines.data.tokenization import save_tokenizers

    hf = tmp_path / "export" / "hf"
    save_quantized(quantize_dynamic_int8(clf.model), hf)
    save_tokenizers(clf.toks, hf)
    settings = clf.cfg.model_dump(mode="json")
    (tmp_path / "export" / "export.json").write_text(json.dumps(
        {"project": "classification", "task": "classification", "settings": settings, "variant": "int8"}))
    served = TextModel()
    served.load_context(SimpleNamespace(artifacts={"export": str(tmp_path / "export")}))
    out = served.predict(None, [r["text"] for r in clf.splits["test"][:4]])
    assert list(out["label"]) == [p["label"] for p in cls_task.predict_texts(
        load_hf_model(hf), clf.toks, [r["text"] for r in clf.splits["test"][:4]], clf.cfg)]


def test_best_under_latency_picks_the_most_accurate_variant_within_budget():
    from pipelines.core.errors import PipelineError
    from pipelines.stages.export import choose_variant

    table = {"full": {"accuracy": 0.90, "latency_ms": 10.0}, "int8": {"accuracy": 0.89, "latency_ms": 4.0},
             "student": {"accuracy": 0.89, "latency_ms": 3.0}, "ort_int8": {"accuracy": 0.95, "latency_ms": 1.0}}
    cfg = SimpleNamespace(variant="best_under_latency", latency_budget_ms=5.0)
    assert choose_variant(cfg, table, "accuracy")[0] == "student"  # tie on accuracy: the faster; ORT is not served
    cfg.latency_budget_ms = 20.0
    assert choose_variant(cfg, table, "accuracy")[0] == "full"
    cfg.latency_budget_ms = 2.0
    with pytest.raises(PipelineError, match="no exportable variant meets"):
        choose_variant(cfg, table, "accuracy")
    assert choose_variant(SimpleNamespace(variant="int8", latency_budget_ms=None), table, "accuracy")[0] == "int8"


def test_export_takes_the_compress_graph_only_of_the_same_model_and_opset(tmp_path):
    from pipelines.stages.export import onnx_graphs
    from pipelines.tasks.classification import model as cls_task
    from pipelines.compression.variants import Variant

    (tmp_path / "compressed/ort_fp32").mkdir(parents=True)
    (tmp_path / "compressed/ort_fp32/model.onnx").write_bytes(b"graph")
    (tmp_path / "dest").mkdir()
    entry = Variant(kind="onnx", path="ort_fp32", source="full", onnx_opset=18,
                    check={"onnx_file": "model.onnx", "onnx_max_abs_diff": 1e-6})
    cfg = SimpleNamespace(export=SimpleNamespace(onnx_opset=18))

    def take(entry, float_name="full", opset=18):
        cfg.export.onnx_opset = opset
        return onnx_graphs(cls_task, entry, tmp_path / "compressed", float_name, tmp_path / "dest", cfg)

    assert take(entry, "student") is None  # another float model: export its own graph
    assert take(entry, opset=17) is None  # params changed since compress ran
    assert take(dataclasses.replace(entry, check=None)) is None  # a manifest from before the check was kept
    assert take(None) is None  # no ORT variants
    assert not (tmp_path / "dest/model.onnx").exists()
    assert take(entry) == {"onnx_file": "model.onnx", "onnx_max_abs_diff": 1e-6, "onnx_reused": True}
    assert (tmp_path / "dest/model.onnx").read_bytes() == b"graph"


# --------------------------------------------------------------------------- configuration
@pytest.fixture
def raw(repo):
    from pipelines.config import resolve_projects

    raw = yaml.safe_load((repo / "params.yaml").read_text())
    raw["projects"] = resolve_projects(raw["projects"], [])  # every key present, so tests can change any
    return raw


def _problems(raw) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_params(raw)
    return str(exc.value)


def _compress(raw, project="classification"):
    return raw["projects"][project]["compress"]


IMPOSSIBLE = [
    ("student deeper than teacher", lambda r: _compress(r)["distillation"].update(enabled=True, num_layers=3),
     "compress.distillation.num_layers (3) is larger than the teacher's model.num_layers (2)"),
    ("student wider than teacher", lambda r: _compress(r)["distillation"].update(enabled=True, hidden_size=256),
     "compress.distillation.hidden_size (256) is larger than the teacher's model.hidden_size (128)"),
    ("student decoder deeper", lambda r: _compress(r, "translation")["distillation"].update(
        enabled=True, num_decoder_layers=5), "projects.translation.compress.distillation.num_decoder_layers (5)"),
    ("student width not divisible", lambda r: _compress(r)["distillation"].update(enabled=True, hidden_size=99),
     "must be divisible"),
    ("sparsity of one", lambda r: _compress(r)["pruning"].update(sparsity=1.0), "compress.pruning.sparsity"),
    ("negative sparsity", lambda r: _compress(r)["pruning"].update(sparsity=-0.1), "compress.pruning.sparsity"),
    ("ffn fraction of one", lambda r: _compress(r)["pruning"].update(ffn_fraction=1.0),
     "compress.pruning.ffn_fraction"),
    ("every head pruned", lambda r: _compress(r)["pruning"].update(heads=2),
     "compress.pruning.heads (2) must be below model.num_heads (2)"),
    ("budget without best_under_latency", lambda r: r["projects"]["classification"]["export"].update(latency_budget_ms=5),
     "latency_budget_ms is set but export.variant is 'full'"),
    ("best_under_latency without budget", lambda r: r["projects"]["classification"]["export"].update(
        variant="best_under_latency", latency_budget_ms=None), "export.latency_budget_ms is not set"),
    ("export of a variant not made", lambda r: (_compress(r)["distillation"].update(enabled=False),
                                                _compress(r).update(quantize=["full"]),
                                                r["projects"]["classification"]["export"].update(variant="student")),
     "export.variant is 'student' but compress makes only"),
    ("export of an ORT variant", lambda r: r["projects"]["classification"]["export"].update(variant="ort_int8"),
     "cannot be served"),
    ("unknown variant to quantize", lambda r: _compress(r).update(quantize=["teacher"]), "compress.quantize"),
    ("alpha above one", lambda r: _compress(r)["distillation"].update(alpha=1.5), "compress.distillation.alpha"),
]


@pytest.mark.parametrize("what, mutate, expected", IMPOSSIBLE, ids=[i[0] for i in IMPOSSIBLE])
def test_impossible_compression_settings_fail_at_config_time(raw, what, mutate, expected):
    mutate(raw)
    msg = _problems(raw)
    assert expected in msg, msg


def test_variants_follow_the_compress_block(raw):
    block = _compress(raw)
    block.update(quantization="none", onnx_runtime=False)
    block.pop("quantize")
    block["pruning"].update(sparsity=0, heads=0, ffn_fraction=0)
    block["distillation"]["enabled"] = False
    assert parse_params(raw).project("classification").compress.variants() == ["full"]
    block.update(quantization="dynamic_int8", quantize=["full", "pruned", "student"], onnx_runtime=True)
    block["pruning"]["heads"] = 1
    block["distillation"]["enabled"] = True
    assert parse_params(raw).project("classification").compress.variants() == [
        "full", "pruned", "student", "int8", "pruned_int8", "student_int8", "ort_fp32", "ort_int8"]


def test_switching_a_technique_off_over_a_preset_needs_one_key(repo):
    """The demo preset quantizes the student; turning distillation or quantization off is one key."""
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    block = raw["projects"]["classification"]
    block["compress"] = {"distillation": {"enabled": False}}
    assert "student_int8" not in parse_params(raw).project("classification").compress.variants()
    block["compress"] = {"quantization": "none", "pruning": {"sparsity": 0.0}}
    assert parse_params(raw).project("classification").compress.variants() == ["full", "student", "ort_fp32",
                                                                               "ort_int8"]


def test_a_checkpoint_teacher_is_not_judged_by_the_model_block(raw, tmp_path):
    """model.* sizes describe the teacher only when it is built here; a checkpoint's are checked at run time."""
    for name in ("config.json", "model.safetensors", "tokenizer.json"):  # what a saved model's folder holds
        (tmp_path / name).write_text("{}")
    raw["projects"]["classification"]["model"]["init"] = str(tmp_path)
    _compress(raw)["distillation"].update(enabled=True, num_layers=4)
    assert parse_params(raw).project("classification").compress.distillation.num_layers == 4


# --------------------------------------------------------------------------- the stages together
@pytest.mark.slow
def test_repro_measures_every_variant_and_registers_the_chosen_one(tmp_path):
    """`dvc repro` of the tiny classification project with every technique on and export choosing by
    latency: the variant table in DVC metrics and plots, and a registry version tagged with its variant
    that serves text."""
    import subprocess
    import sys

    from tests.tiny import dvc, make_repo_copy, pipeline_env, registry, tiny_params

    params = tiny_params(["classification"])
    block = params["projects"]["classification"]
    block["model"].update(num_layers=2, num_heads=2)
    block["compress"].update(quantize=["full", "pruned", "student"], onnx_runtime=True)
    block["compress"]["pruning"].update(sparsity=0.3, heads=1, ffn_fraction=0.25)
    block["compress"]["distillation"].update(enabled=True, num_layers=1)
    block["export"].update(variant="best_under_latency", latency_budget_ms=1e6)
    root = make_repo_copy(tmp_path, params)
    dvc(root, "repro")
    table = json.loads((root / "reports/classification/variants.json").read_text())["variants"]
    assert set(table) == {"full", "pruned", "student", "int8", "pruned_int8", "student_int8", "ort_fp32", "ort_int8"}
    assert table["pruned"]["parameters"] < table["full"]["parameters"]
    assert table["pruned"]["nonzero_parameters"] < table["pruned"]["parameters"]
    assert all(row["latency_ms"] > 0 and "metric_change" in row for row in table.values())
    assert "reports/classification/variants.json" in dvc(root, "metrics", "show", "--json").stdout
    assert "plots/classification/variants.csv" in dvc(root, "plots", "show", "--json").stdout
    # distillation (student, pruned recovery) trains like fine-tuning: its curves are in the model's run
    run_id = json.loads((root / "reports/classification/finetune.json").read_text())["mlflow_run_id"]
    history = subprocess.run([sys.executable, "-c", "import mlflow, sys; c = mlflow.MlflowClient(); print(len("
                              f"c.get_metric_history({run_id!r}, 'distillation/student/loss')))"],
                             cwd=root, env=pipeline_env(root), capture_output=True, text=True, timeout=120)
    assert history.returncode == 0 and int(history.stdout) >= 1, history.stderr[-2000:]
    assert not (root / "models/classification/compress-checkpoints").exists()  # removed once compress succeeded
    chosen = json.loads((root / "reports/classification/export.json").read_text())["variant"]
    assert chosen in table and not chosen.startswith("ort_")
    assert registry(root, "classification")["tags"]["1"]["variant"] == chosen
    (root / "in.txt").write_text("a wonderful film\n")
    proc = subprocess.run([sys.executable, "-m", "pipelines", "predict", "classification", "in.txt", "--model",
                           "models:/classification@champion"], cwd=root, env=pipeline_env(root), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
