"""How every model variant the pipeline makes is saved and loaded, so that evaluate, export,
serving, predict and the demo load any of them without the compression code that made them.

- Float variants (full, pruned, student) are transformers folders. A pruned model has fewer
  attention heads than its config says: the config records which were removed
  (``PRUNED_HEADS_KEY``) and :func:`load_hf_model` rebuilds the smaller shapes before loading.
- Dynamic int8 variants cannot go through ``save_pretrained``, and ``torch.save`` would pickle
  them, so the int8 weights, their scales and zero points, and the remaining float tensors are
  written to a safetensors file next to the model config; loading rebuilds the float model from
  the config, quantizes it the same way and puts the saved int8 weights back.
- ONNX variants run in an ONNX Runtime session (:func:`ort_session`).
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from pipelines.core import settings

logger = logging.getLogger(__name__)

INT8_FILE = "model.int8.safetensors"
QUANT_FILE = "quantization.json"
# Config attribute recording removed attention heads: {attention module path: [removed head indices]}.
PRUNED_HEADS_KEY = "compression_pruned_heads"


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
        remove_heads(model.get_submodule(name), list(range(len(removed))))
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


def dynamic_linear_cls():
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
    qcls = dynamic_linear_cls()
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


def weights_size(folder: Path) -> int:
    """Bytes of the weight files in a model folder (safetensors or ONNX graphs), not config or tokenizer."""
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.suffix in (".safetensors", ".onnx", ".data"))


# --------------------------------------------------------------------------- attention heads
# Removing heads changes a model's shapes; pruning does it to shrink a model, loading does it to
# rebuild the shapes a pruned model was saved with.
def attention_layout(module: nn.Module):
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
    return {name: m for name, m in model.named_modules() if attention_layout(m) is not None}


def num_heads(attention: nn.Module) -> int:
    owner, qkv, _, _, d = attention_layout(attention)
    return getattr(owner, qkv[0]).out_features // d


def slice_linear(linear: nn.Linear, keep: torch.Tensor, dim: int) -> nn.Linear:
    """A smaller Linear keeping output rows (dim 0) or input columns (dim 1) ``keep``."""
    weight = linear.weight.detach().index_select(dim, keep).clone()
    new = nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None, device=weight.device,
                    dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            new.bias.copy_(linear.bias.detach()[keep] if dim == 0 else linear.bias.detach())
    return new


def remove_heads(attention: nn.Module, heads: list[int]) -> None:
    owner, qkv, out_owner, out_name, d = attention_layout(attention)
    n = num_heads(attention)
    kept = [h for h in range(n) if h not in set(heads)]
    if not kept:
        raise ValueError(f"cannot remove all {n} heads of an attention module")
    idx = torch.tensor([h * d + i for h in kept for i in range(d)], device=getattr(owner, qkv[0]).weight.device)
    for name in qkv:
        setattr(owner, name, slice_linear(getattr(owner, name), idx, 0))
    setattr(out_owner, out_name, slice_linear(getattr(out_owner, out_name), idx, 1))
    # The forward passes reshape with -1 heads; these attributes are kept true for readers.
    for attr in ("num_heads", "num_attention_heads"):
        if isinstance(getattr(owner, attr, None), int):
            setattr(owner, attr, len(kept))
    if isinstance(getattr(owner, "all_head_size", None), int):
        owner.all_head_size = len(kept) * d


# --------------------------------------------------------------------------- ONNX Runtime
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
    threads = settings.get("PIPELINES_LATENCY_THREADS")
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
