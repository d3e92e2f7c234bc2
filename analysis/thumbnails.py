"""Small inline JPEG thumbnails for hover tooltips and cluster galleries.

The report must open offline from one file, so pictures are embedded as base64 data URIs. About 2.4 KB
each at hover size: for a large collection only a seeded sample of covers gets one, so the file stays a few
megabytes however many covers there are.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

HOVER_SIZE = 80
GALLERY_SIZE = 112
JPEG_QUALITY = 70
DEFAULT_MAX_THUMBNAILS = 1500
"""Hover thumbnails at most: 1,500 add about 3.7 MB to a report, a few MB whatever the collection size."""


def thumbnail_uri(image: Image.Image, size: int, quality: int = JPEG_QUALITY) -> str:
    """A ``data:image/jpeg;base64,...`` URI of ``image`` shrunk to fit ``size`` x ``size``."""
    small = image.convert("RGB")
    small.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def sample_rows(n_covers: int, max_count: int, seed: int) -> np.ndarray:
    """Sorted row numbers of the covers that get a hover thumbnail: all of them, or a seeded sample."""
    if n_covers <= max_count:
        return np.arange(n_covers)
    return np.sort(np.random.default_rng(seed).choice(n_covers, size=max_count, replace=False))
