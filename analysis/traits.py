"""Simple measurable looks of a cover (brightness, colour, contrast, detail), to say what a cluster shares.

A cluster is a group of covers the embedding finds alike; these numbers put words to why, e.g. "darker and
busier than most covers". They are measured on a small fixed-size copy so every cover counts the same.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

TRAIT_SIZE = 64
TRAITS = ("brightness", "saturation", "contrast", "detail", "warmth")
"""Each trait is a number per cover; see ``image_traits`` for how it is measured."""


def image_traits(image: Image.Image) -> dict[str, float]:
    """brightness: mean luminance 0..1; saturation: mean HSV saturation 0..1; contrast: luminance spread;
    detail: mean luminance change between neighbouring pixels (text, texture, edges); warmth: red minus blue."""
    small = image.convert("RGB").resize((TRAIT_SIZE, TRAIT_SIZE), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.float32) / 255.0
    luminance = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0)
    detail = (np.abs(np.diff(luminance, axis=0)).mean() + np.abs(np.diff(luminance, axis=1)).mean()) / 2
    return {
        "brightness": float(luminance.mean()),
        "saturation": float(saturation.mean()),
        "contrast": float(luminance.std()),
        "detail": float(detail),
        "warmth": float((rgb[..., 0] - rgb[..., 2]).mean()),
    }
