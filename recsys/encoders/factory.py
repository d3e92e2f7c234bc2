"""Build the encoder a user asked for, or the one an index was made with, from the registry.

``auto`` tries the registered families in order (CLIP first) and falls back when one's weights cannot be
had; the runtime ``auto`` is the fastest one measured for the family (``bench/embed.py``, 2-core CPU).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from recsys.cache import default_cache_dir
from recsys.encoders.base import Encoder, EncoderError, ModelSpec, ModelUnavailableError, WeightsUnavailableError
from recsys.encoders.registry import ENCODERS, RUNTIMES

log = logging.getLogger(__name__)


def create_encoder(
    family: str = "auto",
    weights: str | None = None,
    runtime: str = "auto",
    cache_dir: str | Path | None = None,
    **options: str,
) -> Encoder:
    """The encoder of ``family`` ("auto" or a registered family name) on ``runtime``, with the options the
    family declares (e.g. CLIP's ``arch`` and ``pretrained``; see recsys.encoders.registry).

    ``cache_dir`` holds ONNX exports (default: the embedding cache folder), so the defaults work offline.
    """
    RUNTIMES.check(runtime)
    if family != "auto":
        entry = ENCODERS[family]
        base = entry.load().from_request(weights, **entry.options_from(options))
        return with_runtime(base, runtime, cache_dir)
    families = ENCODERS.names()
    taken = {name for entry in ENCODERS.values() for name in entry.option_names()}
    if set(options) - taken:
        raise EncoderError(f"no model takes the option {sorted(set(options) - taken)[0]!r}")
    for position, name in enumerate(families):
        entry = ENCODERS[name]
        try:
            base = entry.load().from_request(weights, **entry.options_from(options, strict=False))
        except WeightsUnavailableError as error:
            if position == len(families) - 1:
                raise
            first_line = str(error).splitlines()[0].rstrip(".")
            log.warning("%s; using the offline encoder %s", first_line, families[position + 1])
            continue
        return with_runtime(base, runtime, cache_dir)
    raise EncoderError("no encoder family is registered")


def encoder_for_spec(
    spec: ModelSpec,
    runtime: str = "auto",
    cache_dir: str | Path | None = None,
    weights: str | None = None,
    threads: int = 0,
) -> Encoder:
    """Rebuild the encoder an index was made with, and refuse weights whose checksum differs.

    ``weights`` is where the CLIP checkpoint is now, if it moved since the index was built; ``threads``: ONNX
    Runtime's threads per image batch (0: one per core). On ONNX Runtime,
    a verified export of exactly these weights in the cache is used as it is: no torch, no PyTorch model.
    """
    try:
        family = ENCODERS[spec.family]
    except EncoderError:
        raise ModelUnavailableError(f"this index was made with an unknown model family {spec.family!r}") from None
    if runtime == "auto":
        runtime = "onnx-int8" if spec.quantization == "int8" else family.fastest_runtime
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    export = None
    if runtime in ("onnx", "onnx-int8"):
        from recsys.encoders.onnx import OnnxEncoder, read_export

        export = read_export(spec, cache_dir)
    if export is not None:
        encoder: Encoder = OnnxEncoder.from_export(
            export, runtime == "onnx-int8", functools.partial(_base_for_spec, spec, weights), threads
        )
    else:
        encoder = with_runtime(_base_for_spec(spec, weights), runtime, cache_dir, threads)
    if encoder.spec.key != spec.key:
        raise EncoderError(
            f"runtime {runtime!r} gives {encoder.spec.label} vectors, but this index holds {spec.label} vectors"
        )
    return encoder


def _base_for_spec(spec: ModelSpec, weights: str | None) -> Encoder:
    """The family's own (PyTorch) encoder for ``spec``, refused when its weights checksum differs."""
    base = ENCODERS[spec.family].load().from_spec(spec, weights)
    if base.spec.weights_sha256 != spec.weights_sha256:
        raise ModelUnavailableError(
            f"the weights found for {spec.label} (sha256 {base.spec.weights_sha256[:12]}) differ from the "
            f"ones this index was built with ({spec.weights_sha256[:12]}); restore them to use the index as it is"
        )
    return base


def with_runtime(base: Encoder, runtime: str, cache_dir: str | Path | None = None, threads: int = 0) -> Encoder:
    """Wrap ``base`` for ``runtime``; ``auto`` picks the fastest measured one for its family. ``threads``: ONNX
    Runtime's per image batch (0: one per core)."""
    runtime = RUNTIMES.resolve(runtime, family=base.spec.family)
    if runtime == "torch":
        return base
    from recsys.encoders.onnx import OnnxEncoder

    cache = cache_dir if cache_dir is not None else default_cache_dir()
    return OnnxEncoder(base, cache, int8=runtime == "onnx-int8", threads=threads)
