"""Model compression: the techniques the compress stage chains, one module each.

- :mod:`.pruning`: global unstructured magnitude pruning (zeros kept) and structured removal of
  attention heads and feed-forward neurons, which really shrinks the model.
- :mod:`.distillation`: a teacher taught to a smaller student (soft KL at a temperature mixed with
  the hard cross-entropy; token-level for seq2seq, with teacher forcing), trained by the same
  harness as every other training (:mod:`pipelines.training.harness`).
- :mod:`.quantization`: ONNX Runtime's dynamic int8 quantization of an exported fp32 graph
  (PyTorch's dynamic int8 lives with the loaders, :mod:`pipelines.models.files`, since loading an
  int8 variant quantizes too).
- :mod:`.measurement`: sizes, parameter counts and latency, as the compress report gives them.

How the variants are saved and loaded is :mod:`pipelines.models.files`: serving needs only that.
"""
