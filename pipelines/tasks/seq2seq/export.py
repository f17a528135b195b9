"""The encoder-decoder's compressed and exported forms: its ONNX graphs (encoder and decoder, checked
against PyTorch), the ONNX Runtime model that decodes with them, and the smaller student that
distillation trains, initialised from the teacher's layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipelines.tasks.seq2seq.model import _fields, source_tokenizer, target_tokenizer


class _Encoder(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class _Decoder(torch.nn.Module):
    """Logits for every decoder position (no cache); returns a tensor, not a ModelOutput."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, decoder_input_ids, encoder_hidden_states, attention_mask):
        return self.model(encoder_outputs=(encoder_hidden_states,), attention_mask=attention_mask,
                          decoder_input_ids=decoder_input_ids, use_cache=False).logits


def _greedy_onnx(enc_sess, dec_sess, input_ids: np.ndarray, attention_mask: np.ndarray, start: int, eos: int,
                 pad: int, max_new_tokens: int) -> np.ndarray:
    """Greedy decoding with the two ONNX graphs, padding finished rows as transformers does."""
    hidden = enc_sess.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]
    seq = np.full((len(input_ids), 1), start, dtype=np.int64)
    done = np.zeros(len(input_ids), dtype=bool)
    for _ in range(max_new_tokens):
        logits = dec_sess.run(None, {"decoder_input_ids": seq, "encoder_hidden_states": hidden,
                                     "attention_mask": attention_mask})[0]
        nxt = np.where(done, pad, logits[:, -1].argmax(-1))
        seq = np.concatenate([seq, nxt[:, None]], axis=1)
        done |= nxt == eos
        if done.all():
            break
    return seq


def _trim(seq, eos: int) -> list[int]:
    seq = [int(t) for t in seq]
    return seq[: seq.index(eos) + 1] if eos in seq else seq


def export_onnx(model, tokenizers, records: list[dict], folder: Path, cfg) -> dict:
    """encoder.onnx (input_ids, attention_mask -> last_hidden_state) and decoder.onnx
    (decoder_input_ids, encoder_hidden_states, attention_mask -> logits; no cache), dynamic in batch
    and lengths. Checked with onnxruntime: largest difference of encoder states and teacher-forced
    logits on test examples, and greedy decoding compared token by token with ``model.generate``."""
    import onnxruntime as ort
    from transformers import GenerationConfig

    src, tgt = _fields(cfg)
    s_tok, t_tok = source_tokenizer(tokenizers), target_tokenizer(tokenizers)
    model = model.cpu().eval()
    folder = Path(folder)
    texts = [r[src] for r in records] or ["."]
    targets = [r[tgt] for r in records] or ["."]
    while len(texts) < 2:  # a batch of one would fix the batch dimension of the graphs
        texts, targets = texts * 2, targets * 2

    def source_batch(items):
        enc = s_tok(items, truncation=True, max_length=cfg.tokenizer.max_length, padding=True, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    def decoder_inputs(items):
        # Teacher forcing: the decoder start followed by the target (at least 2 positions, so the
        # exporter does not specialise the decoder length).
        lab = t_tok(items, truncation=True, max_length=cfg.tokenizer.max_target_length, padding=True,
                    return_tensors="pt")["input_ids"]
        start = torch.full((len(items), 1), model.generation_config.decoder_start_token_id, dtype=torch.long)
        return torch.cat([start, lab], dim=1)[:, : max(2, lab.shape[1])]

    ids, mask = source_batch(texts[:8])
    dec_ids = decoder_inputs(targets[:8])
    encoder, decoder = _Encoder(model).eval(), _Decoder(model).eval()
    with torch.inference_mode():
        hidden = encoder(ids, mask)
    batch, seq, dec_seq = torch.export.Dim("batch"), torch.export.Dim("sequence"), torch.export.Dim("decoder_sequence")
    enc_path, dec_path = folder / "encoder.onnx", folder / "decoder.onnx"
    torch.onnx.export(
        encoder, (ids, mask), str(enc_path), dynamo=True, external_data=False, verbose=False,
        input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
        opset_version=cfg.export.onnx_opset,
        dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
    )
    torch.onnx.export(
        decoder, (dec_ids, hidden, mask), str(dec_path), dynamo=True, external_data=False, verbose=False,
        input_names=["decoder_input_ids", "encoder_hidden_states", "attention_mask"], output_names=["logits"],
        opset_version=cfg.export.onnx_opset,
        dynamic_shapes={"decoder_input_ids": {0: batch, 1: dec_seq}, "encoder_hidden_states": {0: batch, 1: seq},
                        "attention_mask": {0: batch, 1: seq}},
    )

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    enc_sess = ort.InferenceSession(str(enc_path), opts, providers=["CPUExecutionProvider"])
    dec_sess = ort.InferenceSession(str(dec_path), opts, providers=["CPUExecutionProvider"])

    # Numerical check on up to 32 examples (other shapes than the export example).
    ids, mask = source_batch(texts[:32])
    dec_ids = decoder_inputs(targets[:32])
    with torch.inference_mode():
        ref_hidden = encoder(ids, mask)
        ref_logits = decoder(dec_ids, ref_hidden, mask).numpy()
    got_hidden = enc_sess.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
    got_logits = dec_sess.run(None, {"decoder_input_ids": dec_ids.numpy(), "encoder_hidden_states": got_hidden,
                                     "attention_mask": mask.numpy()})[0]
    diff = max(float(np.abs(got_hidden - ref_hidden.numpy()).max()), float(np.abs(got_logits - ref_logits).max()))

    # Greedy decoding, token by token, against transformers' generate with plain greedy settings.
    gc = model.generation_config
    start, eos, pad = gc.decoder_start_token_id, t_tok.eos_token_id, t_tok.pad_token_id
    n_new = cfg.evaluate.max_new_tokens
    ids, mask = source_batch(texts[:8])
    plain = GenerationConfig(decoder_start_token_id=start, eos_token_id=eos, pad_token_id=pad, bos_token_id=gc.bos_token_id,
                             max_new_tokens=n_new, num_beams=1, do_sample=False)
    with torch.inference_mode():
        ref_seq = model.generate(input_ids=ids, attention_mask=mask, generation_config=plain).numpy()
    got_seq = _greedy_onnx(enc_sess, dec_sess, ids.numpy(), mask.numpy(), start, eos, pad, n_new)
    same = [_trim(a, eos) == _trim(b, eos) for a, b in zip(ref_seq, got_seq)]
    return {"onnx_files": [enc_path.name, dec_path.name], "onnx_max_abs_diff": diff,
            "onnx_greedy_identical": float(np.mean(same)), "onnx_checked_examples": int(len(ref_hidden)),
            "onnx_greedy_examples": len(same)}


def build_student(teacher, settings):
    """A smaller encoder-decoder of the teacher's class (compress.distillation: encoder / decoder
    layers, width, heads, feed-forward size; null keeps the teacher's), initialised from the
    teacher wherever shapes match, with the teacher's generation settings."""
    import copy

    from pipelines.compression.distillation import copy_matching_weights, student_config
    from pipelines.models.files import PRUNED_HEADS_KEY
    from pipelines.core.errors import ConfigError

    if hasattr(teacher.config, "encoder_layers"):  # BART, MBart, Marian, Pegasus
        shape = {"encoder_layers": settings.num_layers, "decoder_layers": settings.num_decoder_layers,
                 "d_model": settings.hidden_size, "encoder_attention_heads": settings.num_heads,
                 "decoder_attention_heads": settings.num_heads, "encoder_ffn_dim": settings.intermediate_size,
                 "decoder_ffn_dim": settings.intermediate_size}
        heads_keys = ("encoder_attention_heads", "decoder_attention_heads")
    else:  # T5 and its kin: one head count; each head's width (d_kv) is its own setting
        shape = {"num_layers": settings.num_layers, "num_decoder_layers": settings.num_decoder_layers,
                 "d_model": settings.hidden_size, "num_heads": settings.num_heads, "d_ff": settings.intermediate_size}
        heads_keys = ()
    config = student_config(teacher.config, shape)
    if hasattr(config, "encoder_layers") and hasattr(config, "num_hidden_layers") and settings.num_layers is not None:
        config.num_hidden_layers = config.encoder_layers
    for heads in (getattr(config, k) for k in heads_keys):
        if config.d_model % heads:
            raise ConfigError(f"compress.distillation: student width {config.d_model} is not divisible by "
                              f"{heads} heads")
    if hasattr(config, PRUNED_HEADS_KEY):
        delattr(config, PRUNED_HEADS_KEY)
    student = type(teacher)(config)
    student.generation_config = copy.deepcopy(teacher.generation_config)
    return student, copy_matching_weights(student, teacher)


class OrtSeq2Seq:
    """The encoder and decoder graphs of :func:`export_onnx` behind the ``generate`` interface that
    :func:`generate` uses. Decoding is greedy and without a cache whatever beam settings are passed:
    the measured latency and scores of an ORT variant are those of greedy decoding."""

    def __init__(self, folder: Path, config, generation_config, eos: int, pad: int):
        from pipelines.models.files import ort_session

        self.enc = ort_session(Path(folder) / "encoder.onnx")
        self.dec = ort_session(Path(folder) / "decoder.onnx")
        self.config, self.generation_config = config, generation_config
        self.eos, self.pad = eos, pad

    def eval(self):
        return self

    def generate(self, input_ids, attention_mask, max_new_tokens: int = 64, **ignored):
        seq = _greedy_onnx(self.enc, self.dec, input_ids.cpu().numpy(), attention_mask.cpu().numpy(),
                           self.generation_config.decoder_start_token_id, self.eos, self.pad, max_new_tokens)
        return torch.from_numpy(seq)


ORT_DECODING = "greedy"  # what the ORT variants' latency and scores are measured with


def onnx_files(folder: Path) -> list[Path]:
    return [Path(folder) / "encoder.onnx", Path(folder) / "decoder.onnx"]


def ort_model(folder: Path, tokenizers, cfg):
    """The two ONNX graphs written by :func:`export_onnx` (fp32 or ORT-quantized) as a model that
    :func:`predict_texts` and :func:`evaluate_model` accept (greedy decoding)."""
    from transformers import AutoConfig, GenerationConfig

    t_tok = target_tokenizer(tokenizers)
    return OrtSeq2Seq(folder, AutoConfig.from_pretrained(str(folder)), GenerationConfig.from_pretrained(str(folder)),
                      t_tok.eos_token_id, t_tok.pad_token_id)


def ort_latency_cfg(cfg):
    """The settings under which PyTorch is timed for comparison with the ORT variants: greedy."""
    return cfg.model_copy(update={"evaluate": cfg.evaluate.model_copy(update={"num_beams": 1})})
