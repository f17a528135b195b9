"""The project's beam search gives model.generate's outputs, and generation falls back to
model.generate wherever it would not."""
from __future__ import annotations

import pytest
import torch
from transformers import (BartConfig, BartForConditionalGeneration, MarianConfig, MarianMTModel, MBartConfig,
                          MBartForConditionalGeneration)

from pipelines.models.files import quantize_dynamic_int8
from pipelines.models.decoding import beam_search, supports

PAD, BOS, EOS, VOCAB = 1, 0, 2, 120
SHAPE = dict(d_model=32, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
             encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64, scale_embedding=False,
             pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS, decoder_start_token_id=BOS,
             forced_bos_token_id=None, forced_eos_token_id=None, init_std=0.3)


def _model(kind: str, seed: int):
    torch.manual_seed(seed)
    if kind == "bart":
        model = BartForConditionalGeneration(BartConfig(vocab_size=VOCAB, **SHAPE))
    elif kind == "mbart":
        model = MBartForConditionalGeneration(MBartConfig(vocab_size=VOCAB, **{**SHAPE, "decoder_start_token_id": EOS}))
    else:
        model = MarianMTModel(MarianConfig(vocab_size=VOCAB, decoder_vocab_size=VOCAB - 20,
                                           share_encoder_decoder_embeddings=False, **SHAPE))
    with torch.no_grad():
        # A large init makes the distributions peaky, and a push towards </s> ends hypotheses at
        # different steps, so finishing, early stopping and the length cap are all exercised.
        model.final_logits_bias[0, EOS] = 2.5
    return model.eval()


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB - 20, (4, 9), generator=g)
    mask = torch.ones_like(ids)
    for row, length in ((1, 6), (3, 3)):  # right padding, as seq2seq.pad_batch makes it
        ids[row, length:], mask[row, length:] = PAD, 0
    return ids, mask


def _tokens(row, eos=EOS) -> list[int]:
    """Generated tokens up to and including the first </s>, without the decoder start."""
    out = []
    for tok in row[1:].tolist():
        out.append(tok)
        if tok == eos:
            break
    return out


def _settings(**kw) -> dict:
    base = dict(num_beams=4, length_penalty=1.0, max_new_tokens=12, min_new_tokens=1, no_repeat_ngram_size=0,
                do_sample=False, early_stopping=True, max_length=None, use_cache=True)
    return {**base, **kw}


CASES = [dict(), dict(length_penalty=0.6), dict(length_penalty=2.0), dict(min_new_tokens=4),
         dict(num_beams=2, max_new_tokens=5), dict(num_beams=5, max_new_tokens=20, length_penalty=0.0)]


@pytest.mark.parametrize("kind", ["bart", "mbart", "marian"])
def test_beam_search_returns_what_generate_returns(kind):
    compared = ended_early = 0
    for seed in range(3):
        model = _model(kind, seed)
        ids, mask = _inputs(seed)
        for case in CASES:
            settings = _settings(**case)
            assert supports(model, settings)
            expected = model.generate(input_ids=ids, attention_mask=mask, **settings)
            got = beam_search(model, ids, mask, **settings)
            for want, have in zip(expected, got):
                assert _tokens(have) == _tokens(want), (seed, case)
                compared += 1
                ended_early += len(_tokens(want)) < settings["max_new_tokens"]
            # one input alone, without padding (serving, latency)
            alone = beam_search(model, ids[:1], mask[:1], **settings)
            assert _tokens(alone[0]) == _tokens(model.generate(input_ids=ids[:1], attention_mask=mask[:1], **settings)[0])
    # the comparison means something only if some outputs end before the cap and some reach it
    assert 0 < ended_early < compared


def test_beam_search_on_an_int8_model_returns_what_generate_returns():
    qmodel = quantize_dynamic_int8(_model("bart", 0))
    ids, mask = _inputs(0)
    settings = _settings(length_penalty=0.8)
    assert supports(qmodel, settings)
    expected = qmodel.generate(input_ids=ids, attention_mask=mask, **settings)
    got = beam_search(qmodel, ids, mask, **settings)
    assert [_tokens(r) for r in got] == [_tokens(r) for r in expected]


@pytest.mark.parametrize("change", [
    {"num_beams": 1, "early_stopping": False},  # greedy
    {"no_repeat_ngram_size": 2},
    {"early_stopping": False},
    {"do_sample": True},
    {"num_return_sequences": 2},  # a setting this search does not know
])
def test_settings_it_does_not_reproduce_go_to_generate(change):
    assert not supports(_model("bart", 0), _settings(**change))


def test_generation_configs_it_does_not_reproduce_go_to_generate():
    model = _model("bart", 0)
    for field, value in [("forced_bos_token_id", 5), ("forced_eos_token_id", EOS), ("repetition_penalty", 1.2),
                         ("bad_words_ids", [[7]]), ("suppress_tokens", [7]), ("min_length", 3),
                         ("eos_token_id", [EOS, 3])]:
        original = getattr(model.generation_config, field)
        setattr(model.generation_config, field, value)
        assert not supports(model, _settings()), field
        setattr(model.generation_config, field, original)
    assert supports(model, _settings())


def test_other_model_classes_go_to_generate():
    from transformers import T5Config, T5ForConditionalGeneration

    t5 = T5ForConditionalGeneration(T5Config(vocab_size=VOCAB, d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                             num_heads=2, pad_token_id=PAD, eos_token_id=EOS,
                                             decoder_start_token_id=PAD))
    assert not supports(t5, _settings())
