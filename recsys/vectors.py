"""Covers in memory (or a few files) to unit vectors, with no folder, cache or index involved.

For notebooks and programs that hold their own images; ``build-index`` is the way for collections, with
its cache, resume and decoding workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from recsys.encoders.base import Encoder, stack_preprocessed
from recsys.encoders.factory import create_encoder
from recsys.images import DEFAULT_MAX_PIXELS, load_cover, to_rgb


def embed_images(
    images: Iterable[Image.Image | str | Path],
    encoder: Encoder | None = None,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """(N, dim) float32 unit vectors of ``images`` (Pillow images or image files), in order.

    ``encoder`` defaults to ``create_encoder()`` (CLIP where its weights can be had, else the offline
    EfficientNet-Lite0). A file that cannot be read raises :class:`recsys.images.BadImageError`.
    """
    encoder = encoder or create_encoder()
    chunks: list[np.ndarray] = []
    batch: list[object] = []
    for item in images:
        image = to_rgb(item) if isinstance(item, Image.Image) else load_cover(item, max_pixels, encoder.input_size)
        batch.append(encoder.preprocess(image))
        if len(batch) == batch_size:
            chunks.append(encoder.encode_images(stack_preprocessed(batch)))
            batch = []
    if batch:
        chunks.append(encoder.encode_images(stack_preprocessed(batch)))
    if not chunks:
        return np.zeros((0, encoder.spec.dim), dtype=np.float32)
    return np.concatenate(chunks)
