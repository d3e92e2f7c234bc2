"""CLIP image and text towers through open_clip: the encoder sleeve is designed around.

Any open_clip architecture works (a built-in name or a model-config JSON), with a pretrained tag or a
local checkpoint. The text tower makes text search and zero-shot genre prompts possible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import open_clip
import torch

from recsys.encoders.base import EncoderError, FamilyEncoder, ModelSpec, l2_normalize
from recsys.encoders.preprocess import Preprocess
from recsys.encoders.pretrained import register_arch, resolve_checkpoint
from recsys.ingest import content_hash

FAMILY = "clip"


class ClipEncoder(FamilyEncoder):
    def __init__(
        self, arch: str, pretrained: str | None = None, weights: str | None = None, cache_dir: str | None = None
    ) -> None:
        name = register_arch(arch)
        checkpoint = resolve_checkpoint(name, None if weights else pretrained, weights, cache_dir)
        try:
            model, _, transform = open_clip.create_model_and_transforms(name, pretrained=checkpoint)
        except Exception as error:  # torch.load and strict loading fail in many ways for a wrong file
            raise EncoderError(
                f"checkpoint {checkpoint} does not fit architecture {name}: {type(error).__name__}: {error}"
            ) from None
        self.model = model.eval()
        self.tower = self.model.visual
        self.transform = transform
        self.array_transform = Preprocess.from_open_clip(open_clip.get_model_preprocess_cfg(self.model))
        self._tokenizer = open_clip.get_tokenizer(name)
        size = self.tower.image_size
        self.input_size = size[0] if isinstance(size, (tuple, list)) else int(size)
        self.spec = ModelSpec(
            family=FAMILY,
            arch=arch,
            pretrained=None if weights else pretrained,
            weights=weights,
            weights_sha256=content_hash(checkpoint),
            dim=int(open_clip.get_model_config(name)["embed_dim"]),
        )

    @classmethod
    def from_request(cls, weights: str | None = None, **options: str) -> ClipEncoder:
        return cls(options["arch"], options["pretrained"], weights)

    @classmethod
    def from_spec(cls, spec: ModelSpec, weights: str | None = None) -> ClipEncoder:
        return cls(spec.arch, spec.pretrained, weights or spec.weights)

    @property
    def supports_text(self) -> bool:
        return True

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        with torch.inference_mode():
            features = self.model.encode_text(self._tokenizer(list(texts)))
        return l2_normalize(features.float().numpy())
