"""Decoding: a beam search over the modules of the BART-family models this project builds (BART,
MBart, Marian) that returns what ``model.generate(num_beams=k, early_stopping=True, ...)`` returns,
with less work per step.

Why it exists: at batch 1 on a CPU, a small decoder's step costs about as much as generate's own
bookkeeping around it (logits-processor and stopping-criteria lists, input preparation, reordering
the cross-attention cache, which is the same for every beam of one input). A student with one
decoder layer pays that bookkeeping in full, so its speed-up over the full model stalled near
1.7x with ``model.generate``. The loop below follows transformers' ``_beam_search`` step for step
(the same top-2k candidates, the same finished-hypothesis merge and early-stop heuristic), so the
outputs are the same; ``tests/test_beam_search.py`` checks that against ``model.generate``.

:func:`supports` says when a model and settings are ones this search reproduces; the seq2seq task
uses ``model.generate`` for everything else (greedy decoding, ``no_repeat_ngram_size``, T5, any
generation-config field this loop does not know), and always when ``evaluate.decoder`` is
``generate``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SUPPORTED_CLASSES = ("BartForConditionalGeneration", "MBartForConditionalGeneration", "MarianMTModel")
# The keyword arguments a call may pass (seq2seq.decoding_settings): the loop reads them, or checks them.
SETTINGS = {"num_beams", "length_penalty", "max_new_tokens", "min_new_tokens", "no_repeat_ngram_size",
            "do_sample", "early_stopping", "max_length", "use_cache"}
# Generation-config fields the loop reads itself, or that the call's settings replace, or that do
# not change which tokens beam search picks. A field outside this set, and outside NEUTRAL at a
# neutral value, holding anything but transformers' default sends decoding to model.generate:
# a field a newer transformers adds is never ignored silently.
KNOWN = {"decoder_start_token_id", "eos_token_id", "pad_token_id", "bos_token_id", "num_beams", "length_penalty",
         "max_new_tokens", "min_new_tokens", "max_length", "early_stopping", "do_sample", "use_cache",
         "transformers_version", "_from_model_config", "is_assistant", "temperature", "top_k", "top_p",
         "typical_p", "epsilon_cutoff", "eta_cutoff", "min_p", "output_attentions", "output_hidden_states",
         "cache_implementation", "cache_config", "return_legacy_cache", "compile_config",
         "disable_compile", "prefill_chunk_size"}
# Fields that add a logits processor or a stopping criterion to beam search, with the values under
# which they do nothing.
NEUTRAL = {
    "min_length": (None, 0), "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0), "encoder_no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,),
    "force_words_ids": (None,), "constraints": (None,), "sequence_bias": (None,), "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,), "forced_bos_token_id": (None,), "forced_eos_token_id": (None,),
    "forced_decoder_ids": (None,), "exponential_decay_length_penalty": (None,), "remove_invalid_values": (None, False),
    "renormalize_logits": (None, False), "guidance_scale": (None, 1.0), "num_beam_groups": (None, 1),
    "diversity_penalty": (None, 0.0), "num_return_sequences": (None, 1), "max_time": (None,),
    "stop_strings": (None,), "watermarking_config": (None,), "return_dict_in_generate": (None, False),
    "output_scores": (None, False), "output_logits": (None, False),
}
_DEAD = -1.0e9  # transformers' score for an empty slot; kept so that ties break the same way


def _eos_id(generation_config):
    eos = generation_config.eos_token_id
    if isinstance(eos, (list, tuple)):
        return eos[0] if len(eos) == 1 else None
    return eos


def supports(model, settings: dict) -> bool:
    """Whether :func:`beam_search` gives ``model.generate(**settings)``'s outputs for this model."""
    gc = getattr(model, "generation_config", None)
    if type(model).__name__ not in SUPPORTED_CLASSES or gc is None or not set(settings) <= SETTINGS:
        return False
    if not (settings.get("num_beams", 1) > 1 and settings.get("early_stopping") is True
            and not settings.get("do_sample") and settings.get("use_cache", True)
            and settings.get("no_repeat_ngram_size") in (None, 0) and settings.get("max_new_tokens")):
        return False
    if _eos_id(gc) is None or gc.decoder_start_token_id is None:
        return False
    if not all(getattr(gc, key, None) in allowed for key, allowed in NEUTRAL.items()):
        return False
    return not unknown_fields(gc)


def unknown_fields(generation_config) -> list[str]:
    """Fields of ``generation_config`` set away from transformers' defaults that this loop does not
    know (neither in KNOWN nor in NEUTRAL): each one sends decoding to ``model.generate``."""
    return sorted(k for k in generation_config.to_diff_dict() if k not in KNOWN and k not in NEUTRAL)


@torch.inference_mode()
def beam_search(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, num_beams: int,
                max_new_tokens: int, min_new_tokens: int = 0, length_penalty: float = 1.0,
                **ignored) -> torch.Tensor:
    """Best finished hypothesis per input, as ``[start, tokens..., eos, pad...]`` rows (the shape
    ``model.generate`` returns, right-padded to ``max_new_tokens + 1``). Call it only where
    :func:`supports` is true."""
    gc = model.generation_config
    # None means the model's own setting, as in generate
    min_new_tokens = (gc.min_new_tokens if min_new_tokens is None else min_new_tokens) or 0
    length_penalty = gc.length_penalty if length_penalty is None else length_penalty
    eos, start = _eos_id(gc), gc.decoder_start_token_id
    pad = gc.pad_token_id if gc.pad_token_id is not None else eos
    device = input_ids.device
    B, K, N = input_ids.shape[0], num_beams, max_new_tokens
    enc = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    enc = enc.repeat_interleave(K, 0)
    # Without padding the decoder would build, every step, a mask that transformers then drops as
    # all-true; passing none skips that work and changes nothing.
    enc_mask = None if bool(attention_mask.all()) else attention_mask.repeat_interleave(K, 0)
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    bias = getattr(model, "final_logits_bias", None)

    seqs = torch.full((B, K, N + 1), pad, dtype=torch.long, device=device)
    seqs[:, :, 0] = start
    run_scores = torch.zeros(B, K, device=device)
    run_scores[:, 1:] = _DEAD  # only the first beam is live at the start: no K copies of one token
    fin_seqs = seqs.clone()
    fin_scores = torch.full((B, K), _DEAD, device=device)
    fin_done = torch.zeros(B, K, dtype=torch.bool, device=device)
    improvable = torch.ones(B, 1, dtype=torch.bool, device=device)
    top_k_mask = torch.zeros(2 * K, dtype=torch.bool, device=device)
    top_k_mask[:K] = True
    offsets = (torch.arange(B, device=device) * K)[:, None]
    cache = None
    for t in range(N):
        out = decoder(input_ids=seqs[:, :, t].reshape(B * K, 1), encoder_hidden_states=enc,
                      encoder_attention_mask=enc_mask, past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logits = head(out.last_hidden_state[:, -1])
        if bias is not None:
            logits = logits + bias
        logp = F.log_softmax(logits.float(), dim=-1)
        if t < min_new_tokens:
            logp[:, eos] = float("-inf")
        V = logp.shape[-1]
        # the 2K best continuations over all beams of an input, so that K stay live if some end here
        vals, idx = (logp.view(B, K, V) + run_scores[:, :, None]).view(B, K * V).topk(2 * K, dim=1)
        src, tok = idx // V, idx % V
        cand = torch.gather(seqs, 1, src[:, :, None].expand(-1, -1, N + 1))
        cand[:, :, t + 1] = tok
        ended = (tok == eos) | (t + 1 >= N)

        live = vals + ended.float() * _DEAD
        nxt = live.topk(K, dim=1).indices
        seqs = torch.gather(cand, 1, nxt[:, :, None].expand(-1, -1, N + 1))
        run_scores = torch.gather(live, 1, nxt)
        beam_src = torch.gather(src, 1, nxt)

        just = ended & top_k_mask[None, :]  # only the top K candidates may finish
        if bool(just.any()):
            score = vals / ((t + 1) ** length_penalty)
            closed = fin_done.all(-1, keepdim=True) | ~improvable  # early stopping: a full row takes no more
            score = score + (closed | ~just).float() * _DEAD
            m_scores = torch.cat((fin_scores, score), 1)
            keep = m_scores.topk(K, dim=1).indices
            fin_seqs = torch.gather(torch.cat((fin_seqs, cand), 1), 1, keep[:, :, None].expand(-1, -1, N + 1))
            fin_scores = torch.gather(m_scores, 1, keep)
            fin_done = torch.gather(torch.cat((fin_done, just), 1), 1, keep)
        # Every beam of one input attends to the same encoder states, so only the self-attention
        # cache follows the beams; generate reorders the cross-attention cache too.
        cache.self_attention_cache.reorder_cache((beam_src + offsets).view(-1))
        best_possible = run_scores[:, :1] / ((t + 1) ** length_penalty)
        worst = torch.where(fin_done, fin_scores.min(1, keepdim=True).values, torch.full_like(fin_scores, _DEAD))
        improvable = improvable & (best_possible > worst).any(-1, keepdim=True)
        if not bool(improvable.any()) or bool(fin_done.all()) or bool(ended.all()):
            break
    return fin_seqs[:, 0]
