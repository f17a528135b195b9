"""Model compression: the techniques the compress stage chains, and how their results are saved.

- Dynamic int8 quantization of Linear layers (PyTorch), saved without pickles: a dynamically
  quantized model cannot go through ``save_pretrained`` and ``torch.save`` would pickle it, so the
  int8 weights, their scales and zero points, and the remaining float tensors are written to a
  safetensors file next to the model config; loading rebuilds the float model from the config,
  quantizes it the same way and puts the saved int8 weights back.
- Magnitude pruning: global unstructured (weights of the transformer blocks' Linear layers set to
  zero and kept zero: ``prune.remove`` makes the mask permanent), and structured removal of whole
  attention heads and feed-forward neurons, which really shrinks the saved model.
- Knowledge distillation of a teacher into a smaller student (soft KL at a temperature mixed with
  the hard cross-entropy; token-level for seq2seq, with teacher forcing).
- ONNX Runtime's own dynamic int8 quantization of an exported fp32 graph.

:func:`load_hf_model` loads every float or int8 variant these write, so serving needs no other code.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import statistics
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

logger = logging.getLogger(__name__)

INT8_FILE = "model.int8.safetensors"
QUANT_FILE = "quantization.json"
# Config attribute recording removed attention heads: {attention module path: [removed head indices]}.
PRUNED_HEADS_KEY = "compression_pruned_heads"
# Linear layers inside the transformer blocks (BERT's encoder.layer.N, BART's encoder/decoder.layers.N):
# what magnitude pruning touches. Embeddings, pooler and output head stay dense.
BLOCK_LINEAR = re.compile(r"\.layers?\.\d+\.")


def load_hf_model(folder: str | Path, device: str = "cpu"):
    """A saved model of any variant the pipeline writes: a transformers folder (full, pruned, student)
    or an int8 folder written by :func:`save_quantized` (loaded on the CPU: its kernels are CPU kernels)."""
    import transformers

    folder = Path(folder)
    if (folder / QUANT_FILE).exists():
        if device != "cpu":
            logger.info("%s is dynamically quantized (CPU kernels); loading it on the CPU", folder)
        return load_quantized(folder)
    config = transformers.AutoConfig.from_pretrained(str(folder))
    cls = _model_class(config)
    if not getattr(config, PRUNED_HEADS_KEY, None):
        return cls.from_pretrained(str(folder)).to(device).eval()
    # Attention modules with fewer heads than the config says: from_pretrained would build the full
    # shapes, so build them, remove the same number of heads, then load the weights.
    model = build_model_from_config(config)
    _load_weights(model, folder)
    if (folder / "generation_config.json").exists():
        model.generation_config = transformers.GenerationConfig.from_pretrained(str(folder))
    return model.to(device).eval()


def _model_class(config):
    import transformers

    return getattr(transformers, (config.architectures or ["AutoModel"])[0])


def build_model_from_config(config) -> nn.Module:
    """A freshly initialised model of the config's architecture, with pruned heads already removed."""
    model = _model_class(config)(config).eval()
    for name, removed in (getattr(config, PRUNED_HEADS_KEY, None) or {}).items():
        # Which heads were removed does not matter here: only how many (the weights are loaded next).
        _remove_heads(model.get_submodule(name), list(range(len(removed))))
    return model


def _load_weights(model: nn.Module, folder: Path) -> None:
    """Load a folder's safetensors weights into ``model`` (strict, except for tied weights)."""
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        if f.name != INT8_FILE:
            state.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    model.tie_weights()
    # save_pretrained writes a tied weight once: a missing name is fine if it shares its tensor
    # with a loaded one.
    loaded = {id(p) for n, p in model.named_parameters(remove_duplicate=False) if n in state}
    lost = [n for n in missing if not (_is_param(model, n) and id(model.get_parameter(n)) in loaded)]
    if lost or unexpected:
        raise ValueError(f"{folder}: weights do not fit the model (missing {lost[:5]}, unexpected {unexpected[:5]})")


def _is_param(model: nn.Module, name: str) -> bool:
    try:
        model.get_parameter(name)
        return True
    except AttributeError:
        return False


def _dynamic_linear_cls():
    return torch.ao.nn.quantized.dynamic.Linear


def quantize_dynamic_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantization of every nn.Linear (weights int8, activations quantized on the fly)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear},
                                                      dtype=torch.qint8)


def save_quantized(qmodel: nn.Module, folder: Path) -> dict:
    """Write config + int8 safetensors; return a summary of what was quantized."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    qmodel.config.save_pretrained(str(folder))
    if getattr(qmodel, "generation_config", None) is not None:
        # The model config alone would rebuild different generation settings (the Trainer leaves
        # config.use_cache False, which makes decoding several times slower).
        qmodel.generation_config.save_pretrained(str(folder))
    tensors: dict[str, torch.Tensor] = {}
    quantized: list[str] = []
    qcls = _dynamic_linear_cls()
    for name, module in qmodel.named_modules():
        if isinstance(module, qcls):
            w = module.weight()
            if w.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                raise NotImplementedError(f"{name}: quantization scheme {w.qscheme()} is not supported")
            tensors[f"{name}.weight_int8"] = w.int_repr().contiguous()
            tensors[f"{name}.weight_scale"] = torch.tensor([w.q_scale()], dtype=torch.float64)
            tensors[f"{name}.weight_zero_point"] = torch.tensor([w.q_zero_point()], dtype=torch.int64)
            b = module.bias()
            if b is not None:
                tensors[f"{name}.bias"] = b.detach().contiguous()
            quantized.append(name)
    seen: set[int] = set()
    for name, t in list(qmodel.named_parameters()) + list(qmodel.named_buffers()):
        # Tied weights (e.g. shared embeddings) are stored once.
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        tensors[name] = t.detach().contiguous()
    save_file(tensors, str(folder / INT8_FILE), metadata={"format": "pt", "quantization": "dynamic_int8"})
    info = {"scheme": "dynamic_int8", "dtype": "qint8", "modules": quantized}
    (folder / QUANT_FILE).write_text(json.dumps(info, indent=2))
    return info


def load_quantized(folder: str | Path) -> nn.Module:
    """Rebuild a model written by :func:`save_quantized`."""
    import transformers
    from safetensors.torch import load_file

    folder = Path(folder)
    config = transformers.AutoConfig.from_pretrained(str(folder))
    model = build_model_from_config(config)  # a pruned model's int8 copy has its smaller shapes
    if (folder / "generation_config.json").exists():
        model.generation_config = transformers.GenerationConfig.from_pretrained(str(folder))
    qmodel = quantize_dynamic_int8(model)
    tensors = load_file(str(folder / INT8_FILE))
    info = json.loads((folder / QUANT_FILE).read_text())
    modules = dict(qmodel.named_modules())
    for name in info["modules"]:
        q = torch._make_per_tensor_quantized_tensor(
            tensors.pop(f"{name}.weight_int8"), float(tensors.pop(f"{name}.weight_scale")[0]),
            int(tensors.pop(f"{name}.weight_zero_point")[0]))
        modules[name].set_weight_bias(q, tensors.pop(f"{name}.bias", None))
    # Quantized Linear modules refuse a plain state dict, so the float tensors are copied in by name.
    targets = dict(qmodel.named_parameters()) | dict(qmodel.named_buffers())
    unexpected = [n for n in tensors if n not in targets]
    with torch.no_grad():
        for name, t in tensors.items():
            if name in targets:
                targets[name].copy_(t)
    if unexpected:
        raise ValueError(f"{folder / INT8_FILE}: unexpected tensors {unexpected[:5]}")
    # No tie_weights() here: float weights tied in cls(config) (shared embeddings) are one Parameter,
    # which the copy above already filled, and a tied output layer (BART's lm_head) is now a quantized
    # Linear with its own int8 copy; transformers' tie_weights would try to set its weight and fail.
    return qmodel.eval()


def linear_weight_bytes(model: nn.Module) -> int:
    """Bytes held by Linear weights: float Linear layers, or int8 dynamic ones."""
    total = 0
    qcls = _dynamic_linear_cls()
    for m in model.modules():
        if isinstance(m, qcls):
            total += m.weight().int_repr().numel()
        elif isinstance(m, nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    return total


def count_parameters(model: nn.Module) -> int:
    """Parameters, counting the weights and biases that int8 Linear layers keep packed."""
    packed = 0
    for m in model.modules():
        if isinstance(m, _dynamic_linear_cls()):
            packed += m.weight().numel() + (m.bias().numel() if m.bias() is not None else 0)
    return sum(p.numel() for p in model.parameters()) + packed


def count_nonzero(model: nn.Module) -> int:
    """Parameters that are not zero (an int8 weight is zero where it equals its zero point)."""
    n = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    for m in model.modules():
        if isinstance(m, _dynamic_linear_cls()):
            w = m.weight()
            n += int(torch.count_nonzero(w.int_repr().int() - w.q_zero_point()))
            n += int(torch.count_nonzero(m.bias())) if m.bias() is not None else 0
    return n


def weights_size(folder: Path) -> int:
    """Bytes of the weight files in a model folder (safetensors or ONNX graphs), not config or tokenizer."""
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.suffix in (".safetensors", ".onnx", ".data"))


def gzip_size(folder: Path) -> int:
    """Bytes of the weight files after gzip (level 1): what zeros from unstructured pruning save in
    transfer and storage, although the tensors on disk stay dense."""
    import zlib

    total = 0
    for f in sorted(Path(folder).iterdir()):
        if f.suffix in (".safetensors", ".onnx", ".data"):
            comp = zlib.compressobj(1)
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    total += len(comp.compress(chunk))
            total += len(comp.flush())
    return total


# --------------------------------------------------------------------------- pruning
def _attention_layout(module: nn.Module):
    """(owner of q/k/v, their names, owner of the output projection, its name, head size) for a
    BART/Marian-style or BERT-style attention module; None for any other module."""
    if all(isinstance(getattr(module, n, None), nn.Linear) for n in ("q_proj", "k_proj", "v_proj", "out_proj")):
        return module, ("q_proj", "k_proj", "v_proj"), module, "out_proj", int(module.head_dim)
    inner, out = getattr(module, "self", None), getattr(module, "output", None)
    if (isinstance(inner, nn.Module) and all(isinstance(getattr(inner, n, None), nn.Linear)
                                             for n in ("query", "key", "value"))
            and isinstance(getattr(out, "dense", None), nn.Linear)):
        return inner, ("query", "key", "value"), out, "dense", int(inner.attention_head_size)
    return None


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Every attention module whose heads :func:`prune_heads` can remove, by path."""
    return {name: m for name, m in model.named_modules() if _attention_layout(m) is not None}


def num_heads(attention: nn.Module) -> int:
    owner, qkv, _, _, d = _attention_layout(attention)
    return getattr(owner, qkv[0]).out_features // d


def _slice_linear(linear: nn.Linear, keep: torch.Tensor, dim: int) -> nn.Linear:
    """A smaller Linear keeping output rows (dim 0) or input columns (dim 1) ``keep``."""
    weight = linear.weight.detach().index_select(dim, keep).clone()
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None, device=weight.device,
                    dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            new.bias.copy_(linear.bias.detach()[keep] if dim == 0 else linear.bias.detach())
    return new


def _remove_heads(attention: nn.Module, heads: list[int]) -> None:
    owner, qkv, out_owner, out_name, d = _attention_layout(attention)
    n = num_heads(attention)
    kept = [h for h in range(n) if h not in set(heads)]
    if not kept:
        raise ValueError(f"cannot remove all {n} heads of an attention module")
    idx = torch.tensor([h * d + i for h in kept for i in range(d)], device=getattr(owner, qkv[0]).weight.device)
    for name in qkv:
        setattr(owner, name, _slice_linear(getattr(owner, name), idx, 0))
    setattr(out_owner, out_name, _slice_linear(getattr(out_owner, out_name), idx, 1))
    # The forward passes reshape with -1 heads; these attributes are kept true for readers.
    for attr in ("num_heads", "num_attention_heads"):
        if isinstance(getattr(owner, attr, None), int):
            setattr(owner, attr, len(kept))
    if isinstance(getattr(owner, "all_head_size", None), int):
        owner.all_head_size = len(kept) * d


def prune_heads(model: nn.Module, per_module: int) -> dict[str, list[int]]:
    """Remove ``per_module`` heads from every attention module: those whose value and output
    projections have the smallest weight norm. Recorded in the config, so that
    :func:`load_hf_model` rebuilds the smaller shapes; returns {module path: removed heads}."""
    removed: dict[str, list[int]] = {}
    for name, att in attention_modules(model).items():
        owner, qkv, out_owner, out_name, d = _attention_layout(att)
        n = num_heads(att)
        if per_module >= n:
            raise ValueError(f"{name} has {n} heads; cannot remove {per_module} (at least one must stay)")
        v = getattr(owner, qkv[2]).weight.detach()
        out = getattr(out_owner, out_name).weight.detach()
        score = torch.stack([v[h * d:(h + 1) * d].norm() * out[:, h * d:(h + 1) * d].norm() for h in range(n)])
        heads = sorted(score.argsort()[:per_module].tolist())
        _remove_heads(att, heads)
        removed[name] = heads
    if removed:
        setattr(model.config, PRUNED_HEADS_KEY, {**(getattr(model.config, PRUNED_HEADS_KEY, None) or {}), **removed})
    return removed


def _ffn_layout(module: nn.Module):
    """(input owner, name, output owner, name, config key of the width) of a feed-forward block:
    BERT's layer.intermediate.dense / layer.output.dense, BART/Marian's fc1 / fc2; else None."""
    if isinstance(getattr(module, "fc1", None), nn.Linear) and isinstance(getattr(module, "fc2", None), nn.Linear):
        key = "decoder_ffn_dim" if "Decoder" in type(module).__name__ else "encoder_ffn_dim"
        return module, "fc1", module, "fc2", key
    inter, out = getattr(module, "intermediate", None), getattr(module, "output", None)
    if isinstance(getattr(inter, "dense", None), nn.Linear) and isinstance(getattr(out, "dense", None), nn.Linear):
        return inter, "dense", out, "dense", "intermediate_size"
    return None


def prune_ffn(model: nn.Module, fraction: float) -> dict[str, int]:
    """Remove ``fraction`` of the feed-forward neurons of every layer (those whose input row and
    output column have the smallest norms), and shrink the config's width to match; returns
    {config key: new width}."""
    blocks = [(name, _ffn_layout(m)) for name, m in model.named_modules() if _ffn_layout(m) is not None]
    widths: dict[str, int] = {}
    for name, (in_owner, in_name, out_owner, out_name, key) in blocks:
        fc_in, fc_out = getattr(in_owner, in_name), getattr(out_owner, out_name)
        width = fc_in.out_features
        keep_n = max(1, int(round(width * (1 - fraction))))
        if widths.setdefault(key, keep_n) != keep_n:
            raise ValueError(f"{name}: feed-forward widths differ between layers; cannot express them in the config")
        score = fc_in.weight.detach().norm(dim=1) * fc_out.weight.detach().norm(dim=0)
        keep = score.argsort(descending=True)[:keep_n].sort().values
        setattr(in_owner, in_name, _slice_linear(fc_in, keep, 0))
        setattr(out_owner, out_name, _slice_linear(fc_out, keep, 1))
    for key, width in widths.items():
        setattr(model.config, key, width)
    return widths


def block_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The Linear layers inside the transformer blocks (attention and feed-forward projections)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and BLOCK_LINEAR.search(n)]


def prune_magnitude(model: nn.Module, sparsity: float) -> list[tuple[nn.Module, str]]:
    """Global unstructured magnitude pruning: the smallest ``sparsity`` of all block Linear weights
    (one threshold across layers) are masked. The masks stay active (training keeps them zero)
    until :func:`make_pruning_permanent`."""
    from torch.nn.utils import prune

    targets = [(m, "weight") for _, m in block_linears(model)]
    if targets and sparsity > 0:
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=float(sparsity))
    return targets if sparsity > 0 else []


def make_pruning_permanent(targets: list[tuple[nn.Module, str]]) -> None:
    """Fold the masks into the weights (prune.remove): the zeros are then ordinary weights that
    save_pretrained writes and every loader keeps."""
    from torch.nn.utils import prune

    for module, name in targets:
        if prune.is_pruned(module):
            prune.remove(module, name)


def block_sparsity(model: nn.Module) -> float:
    """Fraction of zeros among the block Linear weights."""
    total = zeros = 0
    for _, m in block_linears(model):
        total += m.weight.numel()
        zeros += int((m.weight == 0).sum())
    return zeros / total if total else 0.0


# --------------------------------------------------------------------------- distillation
# A block of a stack: BERT and BART number `layer.N` / `layers.N`, T5 `block.N` (whose sub-modules are
# themselves `layer.M`: the first numbered segment is the stack).
_LAYER_KEY = re.compile(r"^(.*?\.(?:layers?|block))\.(\d+)\.(.*)$")


def student_config(teacher_config, shape: dict):
    """A copy of the teacher's config with ``shape`` ({config attribute: value or None}) applied;
    None keeps the teacher's value, ``"half"`` halves it (at least 1), and a student larger than the
    teacher is a config error."""
    from .errors import ConfigError

    config = copy.deepcopy(teacher_config)
    shape = {k: max(1, getattr(config, k) // 2) if v == "half" else v for k, v in shape.items()}
    too_big = [f"{k}={v} > teacher's {getattr(config, k)}" for k, v in shape.items()
               if v is not None and v > getattr(config, k)]
    if too_big:
        raise ConfigError(f"compress.distillation: the student would be larger than the teacher ({', '.join(too_big)})")
    for key, value in shape.items():
        if value is not None:
            setattr(config, key, value)
    return config


def teacher_layers(n_student: int, n_teacher: int) -> list[int]:
    """Which teacher layers initialise a shallower student: every k-th from the first, as DistilBERT does."""
    return [i * n_teacher // n_student for i in range(n_student)]


def copy_matching_weights(student: nn.Module, teacher: nn.Module) -> dict:
    """Initialise the student from the teacher wherever shapes allow: every tensor with the same
    name and shape is copied; student block i of a stack takes teacher block ``teacher_layers(...)[i]``
    of the same stack. Returns how many tensors were copied and how many were left as initialised."""
    t_state = teacher.state_dict()
    depth: dict[str, int] = {}
    for key in t_state:
        m = _LAYER_KEY.match(key)
        if m:
            depth[m.group(1)] = max(depth.get(m.group(1), 0), int(m.group(2)) + 1)
    s_depth: dict[str, int] = {}
    for key in student.state_dict():
        m = _LAYER_KEY.match(key)
        if m:
            s_depth[m.group(1)] = max(s_depth.get(m.group(1), 0), int(m.group(2)) + 1)
    maps = {stack: teacher_layers(n, depth.get(stack, n)) for stack, n in s_depth.items()}
    copied, kept = 0, 0
    with torch.no_grad():
        for key, tensor in student.state_dict().items():
            m = _LAYER_KEY.match(key)
            source = f"{m.group(1)}.{maps[m.group(1)][int(m.group(2))]}.{m.group(3)}" if m else key
            src = t_state.get(source)
            if src is not None and src.shape == tensor.shape:
                tensor.copy_(src)
                copied += 1
            else:
                kept += 1
    return {"tensors_from_teacher": copied, "tensors_initialised": kept, "teacher_layers": maps}


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """alpha * T^2 * KL(teacher || student at temperature T) + (1 - alpha) * cross-entropy with the
    labels, over the positions whose label is not -100 (every example for classification, every
    target token for seq2seq). Returns (loss, soft part, hard part)."""
    import torch.nn.functional as F

    keep = labels != -100
    s, t, y = student_logits[keep].float(), teacher_logits[keep].float(), labels[keep]
    soft = F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1), log_target=True,
                    reduction="batchmean") * temperature ** 2
    hard = F.cross_entropy(s, y)
    return alpha * soft + (1 - alpha) * hard, soft.detach(), hard.detach()


def distill(student: nn.Module, teacher: nn.Module, dataset, collator, settings, *, seed: int, device: str = "cpu",
            epochs: float | None = None, desc: str = "distil") -> dict:
    """Train ``student`` to match ``teacher`` on ``dataset`` (teacher forcing for seq2seq: both get
    the same decoder inputs from the collator). ``settings`` is the compress.distillation block
    (temperature, alpha, batch_size, learning_rate, weight_decay, warmup_ratio, max_steps)."""
    import math

    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from .settings import get as setting

    epochs = settings.epochs if epochs is None else epochs
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, generator=gen, collate_fn=collator)
    total = math.ceil(len(loader) * epochs)
    if settings.max_steps > 0:
        total = min(total, settings.max_steps)
    student.to(device).train()
    teacher.to(device).eval()
    decay = [p for n, p in student.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in student.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=settings.learning_rate)
    warmup = int(total * settings.warmup_ratio)

    def schedule(step: int) -> float:  # linear warm-up, then linear decay to zero (as the Trainer does)
        return (step + 1) / max(1, warmup) if step < warmup else max(0.0, (total - step) / max(1, total - warmup))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    step, start = 0, time.perf_counter()
    sums = {"loss": 0.0, "soft": 0.0, "hard": 0.0}
    last = dict(sums)
    bar = tqdm(total=total, desc=desc, disable=not setting("PIPELINES_PROGRESS"))
    window = 0
    while step < total:
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            with torch.no_grad():
                t_logits = teacher(**batch).logits
            s_logits = student(**batch).logits
            loss, soft, hard = distillation_loss(s_logits, t_logits, labels, settings.temperature, settings.alpha)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            for k, v in (("loss", loss), ("soft", soft), ("hard", hard)):
                sums[k] += float(v.detach())
            step += 1
            window += 1
            bar.update(1)
            if step % 20 == 0 or step == total:
                last = {k: v / window for k, v in sums.items()}
                sums, window = {k: 0.0 for k in sums}, 0
                bar.set_postfix(loss=f"{last['loss']:.3f}")
            if step >= total:
                break
    bar.close()
    student.eval()
    return {"steps": step, "epochs": epochs, "train_seconds": time.perf_counter() - start,
            "final_loss": last["loss"], "final_soft_loss": last["soft"], "final_hard_loss": last["hard"]}


# --------------------------------------------------------------------------- ONNX Runtime
def latency_threads() -> int | None:
    """Threads for latency measurements (PIPELINES_LATENCY_THREADS; unset: the libraries' default,
    every core). On a machine that other jobs share, 1 avoids the stalls of threads waiting for
    each other, which distort small models' timings by an order of magnitude."""
    from .settings import get as setting

    return setting("PIPELINES_LATENCY_THREADS")


def ort_session(path: Path):
    """An ONNX Runtime CPU session, quiet, with the latency thread setting."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # ORT's worker threads spin after each call by default; timed in turns with PyTorch models in
    # one process, the spinning took the cores from the next model's call (SST-2: the full model
    # measured 77 ms at batch 1 instead of 3.4 ms). Without spinning each call has the cores alone.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    threads = latency_threads()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def quantize_onnx_int8(src: Path, dest: Path) -> None:
    """ONNX Runtime's dynamic int8 quantization of an fp32 graph (weights int8, activations on the fly)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    graph = onnx.load(str(src))
    # The exporter records intermediate shapes of its example batch; ORT's shape inference then
    # disagrees with them and stops. The graph runs without them.
    del graph.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / Path(src).name
        onnx.save(graph, str(plain))
        with _quiet_root_warnings():
            quantize_dynamic(str(plain), str(dest), weight_type=QuantType.QInt8)


class _quiet_root_warnings:
    """ORT's quantizer advises pre-processing through the root logger on every call; not needed here."""

    def __enter__(self):
        self.filter = lambda record: "pre-processing before quantization" not in record.getMessage()
        logging.getLogger().addFilter(self.filter)

    def __exit__(self, *exc):
        logging.getLogger().removeFilter(self.filter)


def time_interleaved(fns: dict[str, Callable[[list[str]], object]], texts: list[str], batch_size: int,
                     repeats: int) -> dict[str, dict]:
    """Latency of each of ``fns`` on batches of ``batch_size`` texts (median and 95th percentile, and
    throughput), the models taking turns call by call: every model sees the same batches under the
    same machine load, so a busy machine slows them all alike."""
    batches = [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)] or [texts]
    batches = (batches * (repeats // len(batches) + 1))[:repeats]
    for fn in fns.values():
        fn(batches[0])  # warm-up: the first call allocates and picks kernels
    times: dict[str, list[float]] = {name: [] for name in fns}
    for b in batches:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(b)
            times[name].append(time.perf_counter() - t0)
    n = sum(len(b) for b in batches)
    out = {}
    for name, ts in times.items():
        ts.sort()
        p95 = ts[min(len(ts) - 1, round(0.95 * (len(ts) - 1)))]
        out[name] = {"median_ms": statistics.median(ts) * 1000, "p95_ms": p95 * 1000,
                     "examples_per_second": n / sum(ts)}
    return out
