"""Run an encoder's image tower under ONNX Runtime, which is faster than PyTorch eager for small CNNs on CPU.

The tower is exported once per model, cached beside the embeddings, and its output is compared with
PyTorch before it is trusted. An int8 variant trades a little agreement for speed; its vectors are a
different model as far as indexes and the cache are concerned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from filelock import FileLock

from recsys.atomic import atomic_path
from recsys.encoders.base import Encoder, EncoderError, l2_normalize

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.9999
"""Lowest cosine similarity between ONNX and PyTorch vectors at which an fp32 export is accepted."""


class OnnxEncoder(Encoder):
    """The same encoder, with image batches run by ONNX Runtime instead of PyTorch."""

    def __init__(self, base: Encoder, cache_dir: str | Path, int8: bool = False) -> None:
        self.base = base
        self.tower = base.tower
        self.input_size = base.input_size
        self.transform = base.transform
        path = export_tower(base, Path(cache_dir))
        if int8:
            path = quantize_int8(path)
        self.spec = dataclasses.replace(base.spec, quantization="int8") if int8 else base.spec
        self.session = _session(path)

    def encode_images(self, batch: torch.Tensor) -> np.ndarray:
        pixels = batch.contiguous().numpy().astype(np.float32, copy=False)
        return l2_normalize(self.session.run(None, {"pixels": pixels})[0])

    @property
    def supports_text(self) -> bool:
        return self.base.supports_text

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return self.base.encode_text(texts)


def export_tower(encoder: Encoder, cache_dir: Path) -> Path:
    """Export ``encoder.tower`` to ``cache_dir/onnx`` unless already there; return the file."""
    target = cache_dir / "onnx" / f"{encoder.spec.key.replace(':', '_')}.onnx"
    if target.is_file():
        return target
    with _export_lock(target.parent):
        return target if target.is_file() else _export(encoder, target)


@contextlib.contextmanager
def _export_lock(folder: Path) -> Iterator[None]:
    """One exporter at a time per cache (processes share it); the holder may remove temporary files that
    an interrupted export left, as no other export can be writing them."""
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".export.lock"):
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        yield


def _export(encoder: Encoder, target: Path) -> Path:
    size = encoder.input_size
    sample = torch.rand(2, 3, size, size) * 2 - 1
    tower = encoder.tower.eval()
    log.info("exporting %s image tower to ONNX (once): %s", encoder.spec.label, target)
    with atomic_path(target) as temporary:
        # Not under no_grad: there PyTorch swaps in fused attention kernels that ONNX cannot express.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter is chatty about constant folding
            torch.onnx.export(
                tower,
                (sample,),
                str(temporary),
                input_names=["pixels"],
                output_names=["features"],
                dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        with torch.no_grad():
            expected = l2_normalize(tower(sample).float().numpy())
        got = l2_normalize(_session(temporary).run(None, {"pixels": sample.numpy()})[0])
        agreement = float(np.min(np.sum(expected * got, axis=1)))
        if agreement < MIN_AGREEMENT:
            raise EncoderError(
                f"ONNX export of {encoder.spec.label} disagrees with PyTorch (cosine {agreement:.6f}); "
                "use --runtime torch"
            )
    return target


def quantize_int8(fp32_path: Path) -> Path:
    """Dynamic int8 quantisation: weights per channel, activations on the fly; cached beside fp32.

    Data-free, so the same weights always give the same int8 model. bench/embed.py reports its speed-up and
    cosine agreement per encoder; for depthwise-convolution CNNs the agreement is poor.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = fp32_path.with_suffix(".int8.onnx")
    if not target.is_file():
        with _export_lock(target.parent):
            if not target.is_file():
                ort.set_default_logger_severity(3)  # the quantiser's own sessions warn about every unused constant
                with atomic_path(target) as temporary:
                    quantize_dynamic(str(fp32_path), str(temporary), weight_type=QuantType.QInt8, per_channel=True)
    return target


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Idle ORT threads otherwise spin for a while after each operator, taking the CPU that the decoding
    # workers need between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
