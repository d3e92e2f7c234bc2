"""What every encoder is: preprocessed image batches in, L2-normalised float32 vectors out.

The :class:`ModelSpec` is the identity of the weights that made a vector. It is stored in every index and
keys the embedding cache, so vectors of two different models can never be mixed.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from PIL import Image

from index.errors import SleeveError
from recsys.encoders.preprocess import Preprocess

if TYPE_CHECKING:
    import torch


class EncoderError(SleeveError):
    """An encoder cannot be built or used as asked; the message tells the user what to do."""


class WeightsUnavailableError(EncoderError):
    """Model weights are neither given, cached nor downloadable."""


class ModelUnavailableError(EncoderError):
    """The model an index names cannot be made exactly here (unknown family, other weights)."""


class TextNotSupportedError(EncoderError):
    """The model has no text tower, so text queries and zero-shot prompts are impossible."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Which weights produce the vectors. ``key`` is the identity; ``weights`` only says where they were."""

    family: str
    arch: str
    weights_sha256: str
    dim: int
    pretrained: str | None = None
    weights: str | None = None
    quantization: str = "none"

    @property
    def key(self) -> str:
        name = Path(self.arch).stem if self.arch.endswith(".json") else self.arch
        suffix = "" if self.quantization == "none" else f"-{self.quantization}"
        return f"{self.family}:{name}:{self.weights_sha256[:16]}{suffix}"

    @property
    def label(self) -> str:
        """Short human-readable name for logs and reports."""
        arch = Path(self.arch).stem if self.arch.endswith(".json") else self.arch
        parts = [self.family] if arch == self.family else [self.family, arch]
        if self.pretrained:
            parts.append(f"({self.pretrained})")
        if self.quantization != "none":
            parts.append(self.quantization)
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


class Encoder(ABC):
    """An image (and maybe text) encoder: preprocessed batches in, unit vectors out.

    ``transform`` turns one RGB image into a (3, H, W) float tensor or array. It is a small picklable callable
    of its own, because decoding workers receive it and must not receive the model. ``array_transform`` is
    the same preprocessing in numpy and Pillow alone, where it is reproduced exactly (None otherwise): ONNX
    Runtime encoders use it, so that a query needs no torch.
    """

    spec: ModelSpec
    input_size: int
    transform: Callable[[Image.Image], Any]
    array_transform: Preprocess | None = None

    def preprocess(self, image: Image.Image) -> Any:
        return self.transform(image)

    @abstractmethod
    def encode_images(self, batch: Any) -> np.ndarray:
        """A (N, 3, H, W) batch to (N, dim) unit vectors."""

    @property
    def supports_text(self) -> bool:
        return False

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """Texts to (N, dim) unit vectors in the image space."""
        raise TextNotSupportedError(
            f"{self.spec.label} has no text tower: text search and zero-shot prompts need a CLIP model"
        )


class FamilyEncoder(Encoder):
    """A registered family's own PyTorch model (see recsys.encoders.registry); ``tower`` maps a
    preprocessed batch to raw features. Being abstract, a subclass that leaves out a constructor cannot be
    instantiated at all, instead of failing mid-batch."""

    tower: torch.nn.Module

    @classmethod
    @abstractmethod
    def from_request(cls, weights: str | None = None, **options: str) -> Self:
        """The encoder a user asked for: local ``weights``, and the options its registry entry declares
        (recsys.encoders.registry.EncoderFamily.options), each given or at its default."""

    @classmethod
    @abstractmethod
    def from_spec(cls, spec: ModelSpec, weights: str | None = None) -> Self:
        """The encoder an index was made with; ``weights`` is where its checkpoint is now, if it moved."""

    def encode_images(self, batch: Any) -> np.ndarray:
        """A (N, 3, H, W) tensor or array to (N, dim) unit vectors."""
        import torch

        with torch.inference_mode():
            features = self.tower(torch.as_tensor(batch))
        return l2_normalize(features.float().numpy())


def stack_preprocessed(items: Sequence[Any]) -> Any:
    """One batch from preprocessed images, stacked the way the transform made them (torch or numpy)."""
    if type(items[0]).__module__.startswith("torch"):
        import torch

        return torch.stack(list(items))
    return np.stack(items)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32 C-contiguous."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)

