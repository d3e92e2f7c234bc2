"""Image (and text) encoders behind one interface: batches of covers in, unit vectors out.

Families are registered in :mod:`recsys.encoders.registry`; importing this package loads none of them.
"""

from recsys.encoders.base import (
    Encoder,
    EncoderError,
    FamilyEncoder,
    ModelSpec,
    TextNotSupportedError,
    WeightsUnavailableError,
    l2_normalize,
)
from recsys.encoders.factory import create_encoder, encoder_for_spec, with_runtime
from recsys.encoders.registry import ENCODERS, RUNTIMES, EncoderFamily

__all__ = [
    "ENCODERS",
    "Encoder",
    "EncoderError",
    "EncoderFamily",
    "FamilyEncoder",
    "ModelSpec",
    "RUNTIMES",
    "TextNotSupportedError",
    "WeightsUnavailableError",
    "create_encoder",
    "encoder_for_spec",
    "l2_normalize",
    "with_runtime",
]
