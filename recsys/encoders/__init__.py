"""Image (and text) encoders behind one interface: batches of covers in, unit vectors out."""

from recsys.encoders.base import (
    Encoder,
    EncoderError,
    ModelSpec,
    TextNotSupportedError,
    WeightsUnavailableError,
    l2_normalize,
)
from recsys.encoders.factory import MODELS, RUNTIMES, create_encoder, encoder_for_spec, with_runtime

__all__ = [
    "Encoder",
    "EncoderError",
    "ModelSpec",
    "TextNotSupportedError",
    "WeightsUnavailableError",
    "l2_normalize",
    "MODELS",
    "RUNTIMES",
    "create_encoder",
    "encoder_for_spec",
    "with_runtime",
]
