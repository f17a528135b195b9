"""ONNX Runtime's dynamic int8 quantization of an exported fp32 graph."""

from __future__ import annotations

import logging
from pathlib import Path


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
