"""Run an encoder's image tower under ONNX Runtime, which is faster than PyTorch eager for small CNNs on CPU.

The tower is exported once per model, cached beside the embeddings, and its output is compared with
PyTorch when it is exported, before it is trusted. A small JSON record beside the export keeps what a
query needs without the PyTorch model (the model spec with its weights checksum, the input size, the
preprocessing as numpy/Pillow settings, the agreement measured), so opening a cached export imports no
torch. An int8 variant trades a little agreement for speed; its vectors are a different model as far as
indexes and the cache are concerned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from filelock import FileLock
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from index.atomic import atomic_path, write_json
from recsys.cache import writing_in
from recsys.encoders.base import Encoder, EncoderError, ModelSpec, l2_normalize
from recsys.encoders.preprocess import Preprocess

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.9999
"""Lowest cosine similarity between ONNX and PyTorch vectors at which an fp32 export is accepted."""
_UNLOADABLE = (ort_errors.InvalidProtobuf, ort_errors.InvalidGraph, ort_errors.InvalidArgument, ort_errors.Fail)
"""What ONNX Runtime raises for a model file that is truncated, garbage or not a model."""


@dataclasses.dataclass(frozen=True)
class OnnxExport:
    """A verified export in the cache and what its JSON record says about it."""

    path: Path
    spec: ModelSpec
    input_size: int
    preprocess: Preprocess | None
    supports_text: bool
    agreement: float
    """The lowest cosine between ONNX and PyTorch vectors, measured once when the export was made."""


class OnnxEncoder(Encoder):
    """The same encoder, with image batches run by ONNX Runtime instead of PyTorch.

    Opened from a cached export (:meth:`from_export`), it holds no PyTorch model: ``base`` is built only when
    something needs it (text queries, the tower itself).
    """

    def __init__(self, base: Encoder, cache_dir: str | Path, int8: bool = False, threads: int = 0) -> None:
        self._base = base
        self._open(export_tower(base, Path(cache_dir)), int8, lambda: base, threads)
        if self.transform is None:
            self.transform = base.transform

    @classmethod
    def from_export(
        cls, export: OnnxExport, int8: bool, load_base: Callable[[], Encoder], threads: int = 0
    ) -> OnnxEncoder:
        """The encoder of a cached export; ``load_base`` builds the PyTorch encoder if it is ever needed;
        ``threads``: ONNX Runtime's per batch (0: one per core)."""
        if export.preprocess is None:
            raise ValueError("an export without numpy preprocessing needs its PyTorch encoder")
        encoder = cls.__new__(cls)
        encoder._base = None
        encoder._open(export, int8, load_base, threads)
        return encoder

    def _open(self, export: OnnxExport, int8: bool, load_base: Callable[[], Encoder], threads: int) -> None:
        self.spec = dataclasses.replace(export.spec, quantization="int8") if int8 else export.spec
        self.input_size = export.input_size
        self.array_transform = export.preprocess
        self.transform = export.preprocess
        self._supports_text = export.supports_text
        self._load_base = load_base
        try:
            self.session = _session(quantize_int8(export.path) if int8 else export.path, threads)
        except Exception:
            # A damaged export is only a cache: set aside and made again. If nothing is damaged, the second try
            # raises the failure as it is.
            if set_aside_damaged(export.path, int8):
                export = export_tower(self.base, export.path.parents[1])
            self.session = _session(quantize_int8(export.path) if int8 else export.path, threads)

    @property
    def base(self) -> Encoder:
        if self._base is None:
            self._base = self._load_base()
        return self._base

    @property
    def tower(self) -> Any:
        return self.base.tower

    def encode_images(self, batch: Any) -> np.ndarray:
        pixels = np.ascontiguousarray(batch, dtype=np.float32)
        return l2_normalize(self.session.run(None, {"pixels": pixels})[0])

    @property
    def supports_text(self) -> bool:
        return self._supports_text

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return self.base.encode_text(texts)


def export_file(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where the fp32 export of ``spec``'s weights lives; its JSON record has the same name, ``.json``."""
    base_key = dataclasses.replace(spec, quantization="none").key
    return cache_dir / "onnx" / f"{base_key.replace(':', '_')}.onnx"


def read_export(spec: ModelSpec, cache_dir: Path) -> OnnxExport | None:
    """The cached, verified export of ``spec``'s weights usable without PyTorch, or None (not exported yet,
    exported by an older sleeve without a record, or preprocessing that only torch reproduces)."""
    export = _read_record(spec, cache_dir)
    return export if export is not None and export.preprocess is not None else None


def _read_record(spec: ModelSpec, cache_dir: Path) -> OnnxExport | None:
    path = export_file(spec, cache_dir)
    try:
        record = json.loads(path.with_suffix(".json").read_text())
        export = OnnxExport(
            path=path,
            spec=ModelSpec.from_dict(record["spec"]),
            input_size=int(record["input_size"]),
            preprocess=Preprocess.from_dict(record["preprocess"]) if record["preprocess"] else None,
            supports_text=bool(record["supports_text"]),
            agreement=float(record["agreement"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    same_weights = export.spec.weights_sha256 == spec.weights_sha256 and export.spec.family == spec.family
    return export if same_weights and path.is_file() else None


def export_tower(encoder: Encoder, cache_dir: Path) -> OnnxExport:
    """Export ``encoder.tower`` to ``cache_dir/onnx`` and check it against PyTorch, unless that was done
    before; an export from before the JSON record existed is checked once more and gets its record."""
    target = export_file(encoder.spec, cache_dir)
    known = _read_record(encoder.spec, cache_dir)
    if known is not None:
        return known
    with writing_in(target.parent):
        with _export_lock(target.parent):  # another process may be exporting the same model
            if target.is_file():
                try:
                    agreement = _agreement(encoder, target)
                except _UNLOADABLE as error:
                    _move_aside({target: _first_line(error)})
            if not target.is_file():
                log.info("exporting %s image tower to ONNX (once): %s", encoder.spec.label, target)
                with atomic_path(target) as temporary:
                    _export(encoder, temporary)
                    agreement = _agreement(encoder, temporary)
        export = OnnxExport(
            target, encoder.spec, encoder.input_size, encoder.array_transform, encoder.supports_text, agreement
        )
        write_json(target.with_suffix(".json"), {
            "spec": encoder.spec.to_dict(),
            "input_size": export.input_size,
            "preprocess": export.preprocess.to_dict() if export.preprocess else None,
            "supports_text": export.supports_text,
            "agreement": agreement,
            "verified": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "onnxruntime": ort.__version__,
        })
    return export


def set_aside_damaged(fp32_path: Path, int8: bool) -> bool:
    """Move aside the exports of one model (fp32, and its int8 variant if ``int8``) that ONNX Runtime cannot
    load; True when the fp32 export must be made again (it was damaged, or another process set it aside)."""
    files = [fp32_path, int8_file(fp32_path)] if int8 else [fp32_path]
    with writing_in(fp32_path.parent), _export_lock(fp32_path.parent):
        _move_aside(_damaged(files))
        return not fp32_path.is_file()


def _damaged(paths: Sequence[Path]) -> dict[Path, str]:
    """The files among ``paths`` that exist but do not load, with ONNX Runtime's first line on why."""
    damaged = {}
    for path in paths:
        if path.is_file():
            try:
                _session(path)
            except _UNLOADABLE as error:
                damaged[path] = _first_line(error)
    return damaged


def _move_aside(damaged: dict[Path, str]) -> None:
    """Rename each damaged export to ``NAME.damaged`` (kept for a look), with one warning line each."""
    for path, why in damaged.items():
        os.replace(path, path.with_name(f"{path.name}.damaged"))
        log.warning("the ONNX export %s is damaged (%s); moved it aside to %s.damaged and making it again",
                    path, why, path.name)


def _first_line(error: BaseException) -> str:
    """ONNX Runtime's reason, without its prefix that repeats the path ("... Load model from PATH failed:")."""
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return line.rsplit(" failed:", 1)[-1].strip()[:200]


@contextlib.contextmanager
def _export_lock(folder: Path) -> Iterator[None]:
    """One exporter at a time per cache (processes share it); the holder may remove temporary files that
    an interrupted export left, as no other export can be writing them."""
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".export.lock"):
        for leftover in folder.glob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        yield


def _export(encoder: Encoder, target: Path) -> None:
    import torch

    size = encoder.input_size
    sample = torch.rand(2, 3, size, size) * 2 - 1
    # Not under no_grad: there PyTorch swaps in fused attention kernels that ONNX cannot express.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is chatty about constant folding
        torch.onnx.export(
            encoder.tower.eval(),
            (sample,),
            str(target),
            input_names=["pixels"],
            output_names=["features"],
            dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def _agreement(encoder: Encoder, path: Path) -> float:
    """Lowest cosine between PyTorch's and ONNX Runtime's vectors of random inputs; refuse a poor export."""
    import torch

    size = encoder.input_size
    sample = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        expected = l2_normalize(encoder.tower.eval()(sample).float().numpy())
    got = l2_normalize(_session(path).run(None, {"pixels": sample.numpy()})[0])
    agreement = float(np.min(np.sum(expected * got, axis=1)))
    if agreement < MIN_AGREEMENT:
        raise EncoderError(
            f"ONNX export of {encoder.spec.label} disagrees with PyTorch (cosine {agreement:.6f}); "
            "use --runtime torch"
        )
    return agreement


def quantize_int8(fp32_path: Path) -> Path:
    """Dynamic int8 quantisation: weights per channel, activations on the fly; cached beside fp32.

    Data-free, so the same weights always give the same int8 model. bench/embed.py reports its speed-up and
    cosine agreement per encoder; for depthwise-convolution CNNs the agreement is poor.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = int8_file(fp32_path)
    if not target.is_file():
        with writing_in(target.parent), _export_lock(target.parent):
            if not target.is_file():
                ort.set_default_logger_severity(3)  # the quantiser's own sessions warn about every unused constant
                with atomic_path(target) as temporary, _quiet_quantiser():
                    quantize_dynamic(str(fp32_path), str(temporary), weight_type=QuantType.QInt8, per_channel=True)
    return target


def int8_file(fp32_path: Path) -> Path:
    return fp32_path.with_suffix(".int8.onnx")


@contextlib.contextmanager
def _quiet_quantiser() -> Iterator[None]:
    """The quantiser logs a multi-line warning for every tensor it keeps in float (most of them through the root
    logger): notes on its own work, nothing a user can act on. They become one info line."""
    import onnxruntime.quantization

    package = str(Path(onnxruntime.quantization.__file__).parent)
    dropped = 0

    def drop(record: logging.LogRecord) -> bool:
        nonlocal dropped
        if record.pathname.startswith(package):
            dropped += 1
            return False
        return True

    root, named = logging.getLogger(), logging.getLogger("onnxruntime.quantization")
    level = named.level
    root.addFilter(drop)
    named.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.removeFilter(drop)
        named.setLevel(level)
    if dropped:
        log.info("int8 quantisation: %d notes of onnxruntime's quantiser left out (tensors it keeps in float)", dropped)


def _session(path: Path, threads: int = 0) -> ort.InferenceSession:
    """A CPU session of the model at ``path`` with ``threads`` intra-op threads (0: ONNX Runtime's default, one
    per core)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    # Idle ORT threads otherwise spin for a while after each operator, taking the CPU that the decoding
    # workers need between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
