"""The sequence-to-sequence task code (translation, summarization) on tiny in-process models."""

from __future__ import annotations

import copy
import random

import pytest
import sacrebleu
import torch

from pipelines.models.files import load_quantized, quantize_dynamic_int8, save_quantized
from pipelines.tasks.summarization import SummarizationProject
from pipelines.tasks.translation import TranslationProject
from pipelines.tasks.seq2seq import model as seq2seq

EN = "a the man woman dog cat runs sits walks on in near red blue small big street park house".split()
DE = "ein der mann frau hund katze läuft sitzt geht auf im nahe rot blau klein groß straße park haus".split()
TINY = {"hidden_size": 32, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "intermediate_size": 64,
        "dropout": 0.0}


def _pairs(n, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        idx = [rng.randrange(len(EN)) for _ in range(rng.randint(3, 12))]
        out.append({"source": " ".join(EN[i] for i in idx), "target": " ".join(DE[i] for i in idx)})
    return out


def _cfg(shared=True, layer_norm="post", **tokenizer):
    return TranslationProject.model_validate({
        "model": {**TINY, "layer_norm": layer_norm},
        "tokenizer": {"type": "bpe", "vocab_size": 300, "max_length": 32, "max_target_length": 32,
                      "shared_vocab": shared, "lowercase": False, **tokenizer},
        "pretrain": {"mask_ratio": 0.3, "span_length": 3.0},
        "evaluate": {"num_beams": 2, "max_new_tokens": 12, "batch_size": 4, "sample_predictions": 100},
    })


@pytest.fixture(scope="module")
def splits():
    return {"train": _pairs(120), "validation": _pairs(12, 1), "test": _pairs(12, 2)}


@pytest.fixture(scope="module")
def shared(splits):
    cfg = _cfg()
    toks = seq2seq.build_tokenizers(splits, cfg)
    torch.manual_seed(0)
    model = seq2seq.build_pretrain_model(cfg, toks).eval()
    return cfg, toks, model


class Echo(torch.nn.Module):
    """A stand-in model whose "generation" is its input: predictions are then known exactly."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def generate(self, input_ids, attention_mask, **kwargs):
        self.batches.append(attention_mask.sum(1).tolist())
        return input_ids


# --------------------------------------------------------------------------- pretraining
def test_denoising_collator_masks_spans_and_keeps_labels():
    torch.manual_seed(0)
    pad, mask, eos = 0, 4, 3
    collate = seq2seq.DenoisingCollator(pad, mask, eos, mask_ratio=0.3, span_length=3.0)
    features = [{"input_ids": [random.Random(i).randrange(5, 300) for _ in range(100)] + [eos]} for i in range(16)]
    batch = collate(features)
    covered, spans = 0, 0
    for f, inp, lab in zip(features, batch["input_ids"].tolist(), batch["labels"].tolist()):
        assert lab == f["input_ids"]  # the decoder reconstructs the original
        inp = inp[: inp.index(eos) + 1]
        assert inp[-1] == eos and mask in inp
        kept = [t for t in inp[:-1] if t != mask]
        # what survives is the original in order, with each masked run replaced by one <mask>
        it = iter(f["input_ids"])
        assert all(any(t == o for o in it) for t in kept)
        assert all(not (a == mask and b == mask) for a, b in zip(inp, inp[1:]))
        covered += 100 - len(kept)
        spans += inp.count(mask)
    assert covered / (100 * len(features)) == pytest.approx(0.3, abs=0.01)
    assert covered / spans > 1.8  # spans, not single tokens (Poisson mean 3, clipped at the ratio)


def test_denoising_with_two_vocabularies_reconstructs_in_decoder_vocabulary():
    collate = seq2seq.DenoisingCollator(0, 4, 3, mask_ratio=0.5, span_length=2.0)
    batch = collate([{"input_ids": [10, 11, 12, 13, 3], "denoise_labels": [20, 21, 3]}])
    assert batch["labels"].tolist() == [[20, 21, 3]]


def test_pretraining_uses_both_sides_with_a_shared_vocabulary(splits, shared):
    cfg, toks, model = shared
    dsd = seq2seq.encode(splits, toks, cfg)
    train, val = seq2seq.pretrain_datasets(dsd, cfg)
    assert len(train) == 2 * len(splits["train"]) and len(val) == 2 * len(splits["validation"])
    batch = seq2seq.pretrain_collator(toks, cfg)([{k: r[k] for k in seq2seq.PRETRAIN_KEYS if k in r}
                                                   for r in train.select(range(8))])
    loss = model(**batch).loss
    assert torch.isfinite(loss)


def test_two_vocabularies_give_separate_embeddings(splits):
    cfg = _cfg(shared=False)
    toks = seq2seq.build_tokenizers(splits, cfg)
    assert set(toks) == {"tokenizer", "target"}
    dsd = seq2seq.encode(splits, toks, cfg)
    model = seq2seq.build_pretrain_model(cfg, toks)
    assert model.get_encoder().embed_tokens.num_embeddings == len(toks["tokenizer"])
    assert model.lm_head.out_features == len(toks["target"])
    train, _ = seq2seq.pretrain_datasets(dsd, cfg)
    batch = seq2seq.pretrain_collator(toks, cfg)([{k: r[k] for k in seq2seq.PRETRAIN_KEYS if k in r}
                                                   for r in train.select(range(4))])
    assert torch.isfinite(model(**batch).loss)


# --------------------------------------------------------------------------- data
def test_encode_truncates_to_the_max_lengths(splits):
    cfg = _cfg(max_length=8, max_target_length=6)
    toks = seq2seq.build_tokenizers(splits, cfg)
    long = {"source": " ".join(EN * 3), "target": " ".join(DE * 3)}
    dsd = seq2seq.encode({"train": splits["train"] + [long]}, toks, cfg)
    ds = dsd["train"]
    eos = toks["tokenizer"].eos_token_id
    assert max(len(x) for x in ds["input_ids"]) == 8 and max(len(x) for x in ds["labels"]) == 6
    assert all(x[-1] == eos for x in ds["input_ids"]) and all(x[-1] == eos for x in ds["labels"])
    assert list(ds["length"]) == [len(x) for x in ds["input_ids"]]


def test_tokenizer_learns_from_training_text_only(splits):
    cfg = _cfg()
    unseen = {"source": "zyxqv", "target": "zyxqv"}
    toks = seq2seq.build_tokenizers({**splits, "test": [unseen]}, cfg)
    assert "zyxqv" not in toks["tokenizer"].get_vocab() and "Ġzyxqv" not in toks["tokenizer"].get_vocab()


# --------------------------------------------------------------------------- inference and metrics
def test_predict_texts_returns_input_order(shared):
    cfg, toks, _ = shared
    texts = ["a man", "the red dog sits in the park near a big house", "a cat runs", "woman",
             "the blue cat walks on the street", "a big dog"]
    echo = Echo()
    out = seq2seq.predict_texts(echo, toks, texts, cfg)
    assert [o["translation"] for o in out] == texts
    lengths = [n for b in echo.batches for n in b]
    assert lengths == sorted(lengths, reverse=True)  # batched by length inside
    assert all(len(b) <= cfg.evaluate.batch_size for b in echo.batches)


def test_predict_texts_with_a_real_model(shared):
    cfg, toks, model = shared
    out = seq2seq.predict_texts(model, toks, ["a man runs", "the dog"], cfg)
    assert len(out) == 2 and all(isinstance(o["translation"], str) for o in out)


def test_generate_does_not_warn_about_a_trainer_saved_min_length(shared):
    """Seq2SeqTrainer saves min_length 0 in the generation config; generation must not then warn on
    every batch that min_new_tokens takes precedence, and must give the same outputs."""
    import logging

    cfg, toks, model = shared
    texts = ["a man runs", "the dog", "a red cat sits"]
    plain = seq2seq.generate(model, toks, texts, cfg)
    model.generation_config.min_length = 0
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    hf_logger = logging.getLogger("transformers.generation.utils")
    hf_logger.addHandler(handler)
    try:
        again = seq2seq.generate(model, toks, texts, cfg)
    finally:
        hf_logger.removeHandler(handler)
    assert again == plain
    assert not [r for r in records if "min_new_tokens" in r.getMessage()]


def test_a_saved_model_generates_with_the_evaluate_settings(shared, tmp_path):
    """model.generate on a fine-tuned folder, with no arguments, decodes as evaluate does: the
    Trainer's legacy max_length 20 and min_length 0 are not what gets saved."""
    import copy

    from transformers import AutoModelForSeq2SeqLM

    cfg, toks, model = shared
    cfg = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"max_new_tokens": 30})})
    model = copy.deepcopy(model)
    model.generation_config.update(max_length=20, min_length=0)  # what Seq2SeqTrainer's validation leaves
    with torch.no_grad():  # an untrained model repeats tokens: make it run to the length cap
        model.final_logits_bias[0, seq2seq.target_tokenizer(toks).eos_token_id] = -1e4
    seq2seq.prepare_for_saving(model, cfg)
    model.save_pretrained(str(tmp_path))
    loaded = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path)).eval()
    texts = ["a man runs", "the red dog sits near a house"]
    s_tok = seq2seq.source_tokenizer(toks)
    ids, mask = seq2seq.pad_batch([s_tok(t)["input_ids"] for t in texts], s_tok.pad_token_id)
    out = loaded.generate(input_ids=ids, attention_mask=mask)
    assert out.shape[1] == 31  # the decoder start and 30 new tokens, not 20 in all
    assert seq2seq.decode(seq2seq.target_tokenizer(toks), out) == seq2seq.generate(model, toks, texts, cfg)


def test_generate_takes_the_project_beam_search_with_generates_outputs(shared, monkeypatch):
    """Evaluate, predict and serving decode with the project's beam loop; they must translate
    exactly as model.generate does (tests/test_beam_search.py compares the loops in detail)."""
    cfg, toks, model = shared
    texts = [r["source"] for r in _pairs(10, 5)]
    calls = []
    real = seq2seq.decoding.beam_search
    monkeypatch.setattr(seq2seq.decoding, "beam_search", lambda *a, **k: calls.append(1) or real(*a, **k))
    ours = seq2seq.generate(model, toks, texts, cfg)
    assert calls  # the project's beam settings take the project's loop
    # evaluate.decoder: generate turns it off, with the same outputs
    plain = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"decoder": "generate"})})
    calls.clear()
    assert seq2seq.generate(model, toks, texts, plain) == ours and not calls
    monkeypatch.setattr(seq2seq.decoding, "supports", lambda model, settings: False)
    assert seq2seq.generate(model, toks, texts, cfg) == ours


def test_a_generation_field_the_beam_loop_does_not_know_sends_decoding_to_generate(shared):
    from pipelines.models import decoding

    cfg, _, model = shared
    settings = seq2seq.decoding_settings(cfg)
    assert decoding.supports(model, settings) and not decoding.unknown_fields(model.generation_config)
    saved = model.generation_config
    try:
        model.generation_config = copy.deepcopy(saved)
        model.generation_config.some_future_field = 3  # a field a later transformers might add
        assert decoding.unknown_fields(model.generation_config) == ["some_future_field"]
        assert not decoding.supports(model, settings)
    finally:
        model.generation_config = saved
    assert cfg.evaluate.decoder == "auto"


def test_evaluate_bleu_equals_sacrebleu(shared):
    cfg, toks, _ = shared
    records = [{"source": "a man runs in the park", "target": "a man walks in the park"},
               {"source": "the red dog sits", "target": "the red dog sits"},
               {"source": "a small cat near a house", "target": "a cat near the big house"}]
    res = seq2seq.evaluate_model(Echo(), toks, records, cfg)
    preds = [s["prediction"] for s in res["samples"]]
    assert preds == [r["source"] for r in records]
    expected = sacrebleu.corpus_bleu(preds, [[r["target"] for r in records]])
    assert res["metrics"]["bleu"] == pytest.approx(expected.score)
    assert res["primary"] == res["metrics"]["bleu"]
    assert res["metrics"]["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, [[r["target"] for r in records]]).score)
    assert "bleu_signature" in res["report_extra"]
    rows, columns = seq2seq.plot_rows(res)
    assert columns == ["actual", "predicted"] and len(rows) == 3


def test_summarization_scores_against_all_references(shared):
    _, toks, _ = shared
    cfg = SummarizationProject.model_validate({"model": TINY, "tokenizer": {"max_length": 64, "max_target_length": 16},
                                               "evaluate": {"num_beams": 1, "max_new_tokens": 8}})
    records = [{"document": "the red dog sits in the park", "summary": "a cat",
                "references": ["a cat", "the red dog sits in the park"]},
               {"document": "a man runs near the house", "summary": "the man runs near the house"}]
    res = seq2seq.evaluate_model(Echo(), toks, records, cfg)
    # first example: the second reference equals the prediction
    assert res["metrics"]["rouge1"] == pytest.approx(100 * (1 + 5 / 6) / 2)
    assert set(res["metrics"]) >= {"rouge1", "rouge2", "rougeL", "rougeLsum", "examples_per_second"}
    assert res["primary"] == res["metrics"]["rougeL"]
    assert "lsum_sentence_split" in res["report_extra"]
    assert seq2seq.predict_texts(Echo(), toks, ["a dog"], cfg) == [{"summary": "a dog"}]


# --------------------------------------------------------------------------- compression and export
@pytest.mark.parametrize("shared_vocab, layer_norm", [(True, "post"), (False, "post"), (True, "pre")])
def test_int8_save_load_round_trip_generates_the_same(splits, tmp_path, shared_vocab, layer_norm):
    cfg = _cfg(shared=shared_vocab, layer_norm=layer_norm)
    toks = seq2seq.build_tokenizers(splits, cfg)
    torch.manual_seed(0)
    model = seq2seq.build_pretrain_model(cfg, toks).eval()
    model.config.architectures = [type(model).__name__]  # what save_pretrained records
    model.config.use_cache = False  # as the Trainer leaves it
    qmodel = quantize_dynamic_int8(model)
    save_quantized(qmodel, tmp_path)
    loaded = load_quantized(tmp_path)
    texts = [r["source"] for r in splits["test"]]
    greedy = {"num_beams": 1}
    assert seq2seq.generate(loaded, toks, texts, cfg, **greedy) == seq2seq.generate(qmodel, toks, texts, cfg, **greedy)
    assert loaded.generation_config.use_cache
    # the output layer is an int8 copy of the tied embedding, still close to the float model
    ids = toks["tokenizer"](texts[:2], return_tensors="pt", padding=True)
    with torch.inference_mode():
        a = model(**ids, decoder_input_ids=ids["input_ids"]).logits
        b = loaded(**ids, decoder_input_ids=ids["input_ids"]).logits
    assert (a - b).abs().max() < 0.1 * a.abs().max()


def test_pre_norm_builds_an_mbart_that_starts_decoding_where_training_did(splits):
    """MBart shifts labels by moving their last token (</s>) to the front; generation must start there too."""
    from transformers import MBartForConditionalGeneration

    cfg = _cfg(layer_norm="pre")
    toks = seq2seq.build_tokenizers(splits, cfg)
    model = seq2seq.build_pretrain_model(cfg, toks)
    assert isinstance(model, MBartForConditionalGeneration)
    assert model.model.encoder.layer_norm is not None  # the final norm a pre-LN stack ends with
    seq2seq.set_generation_ids(model, toks)
    dsd = seq2seq.encode(splits, toks, cfg)
    batch = seq2seq.collator(toks, cfg, model)([{k: dsd["train"][i][k] for k in seq2seq.FINETUNE_KEYS}
                                               for i in range(4)])
    eos = toks["tokenizer"].eos_token_id
    assert batch["decoder_input_ids"][:, 0].tolist() == [eos] * 4
    assert model.generation_config.decoder_start_token_id == eos


@pytest.mark.parametrize("layer_norm", ["post", "pre"])
def test_export_onnx_greedy_identical(splits, tmp_path, layer_norm):
    cfg = _cfg(layer_norm=layer_norm)
    toks = seq2seq.build_tokenizers(splits, cfg)
    torch.manual_seed(0)
    model = seq2seq.build_pretrain_model(cfg, toks).eval()
    seq2seq.set_generation_ids(model, toks)
    from pipelines.tasks.seq2seq.export import export_onnx

    report = export_onnx(model, toks, splits["test"], tmp_path, cfg)
    assert (tmp_path / "encoder.onnx").is_file() and (tmp_path / "decoder.onnx").is_file()
    assert report["onnx_max_abs_diff"] < 1e-4
    assert report["onnx_greedy_identical"] == 1.0


@pytest.mark.parametrize("layer_norm", ["post", "pre"])
def test_source_gain_tells_a_model_that_ignores_its_source(splits, layer_norm):
    """finetune reports how much worse the validation loss gets with another example's source; a
    model whose cross-attention is cut off scores zero, one that reads its source scores well above
    (BART and, with layer_norm pre, MBart)."""
    import copy

    from pipelines.training.harness import KeepKeys

    cfg = _cfg(layer_norm=layer_norm)
    toks = seq2seq.build_tokenizers(splits, cfg)
    dsd = seq2seq.encode(splits, toks, cfg)
    torch.manual_seed(0)
    model = seq2seq.build_pretrain_model(cfg, toks)
    collator = KeepKeys(seq2seq.collator(toks, cfg, model), seq2seq.FINETUNE_KEYS)
    # A few hundred steps on the word-for-word toy language teach it to read the source.
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rows = [{k: ex[k] for k in seq2seq.FINETUNE_KEYS} for ex in dsd["train"]]
    rng = random.Random(0)
    model.train()
    for _ in range(300):
        loss = model(**collator(rng.sample(rows, 16))).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    reading = seq2seq.training_diagnostics(model, dsd, collator, cfg)
    assert reading["source_gain"] > 0.1, reading

    deaf = copy.deepcopy(model)
    for layer in deaf.model.decoder.layers:
        torch.nn.init.zeros_(layer.encoder_attn.out_proj.weight)
        torch.nn.init.zeros_(layer.encoder_attn.out_proj.bias)
    ignored = seq2seq.training_diagnostics(deaf, dsd, collator, cfg)
    assert abs(ignored["source_gain"]) < 1e-5, ignored

    # finetune.min_source_gain turns the diagnosis into a failed stage
    from pipelines.core.errors import TrainingError
    from pipelines.tasks.seq2seq.model import check_source_gain

    check_source_gain(reading, 0.05)
    check_source_gain(ignored, None)
    with pytest.raises(TrainingError, match=r"source_gain .* below finetune\.min_source_gain 0\.05"):
        check_source_gain(ignored, 0.05)


def test_export_writes_the_decoding_settings_into_a_saved_folder(shared, tmp_path):
    """Fine-tuning does not read the evaluate block (dvc.yaml does not declare it there); export does,
    and writes its decoding settings into the folder it exports, whichever variant that is."""
    import json

    cfg, toks, model = shared
    cfg = cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"max_new_tokens": 30, "num_beams": 3})})
    model.save_pretrained(str(tmp_path))
    seq2seq.save_decoding_settings(tmp_path, cfg)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert saved["max_new_tokens"] == 30 and saved["num_beams"] == 3
    assert saved.get("max_length") is None and saved.get("min_length") is None
