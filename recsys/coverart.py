"""Read the images of a release group from the Cover Art Archive and pick the front or back one.

``/release-group/{mbid}`` answers with the images of the release chosen to represent the group: each has
``front``/``back`` flags, its ``types`` and ready-made JPEG ``thumbnails`` (250, 500 and 1200 pixels, and
the older names "small" and "large" for 250 and 500). 404 means the group has no cover art.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from index.errors import SleeveError
from recsys.http import HttpError, PoliteClient

DEFAULT_URL = "https://coverartarchive.org"
SIZES = (250, 500, 1200)
"""Thumbnail sizes (longest side, pixels) the archive serves."""

_OLD_NAMES = {250: "small", 500: "large"}


class InvalidImage(SleeveError):
    """Downloaded bytes that do not decode as a whole image: truncated, or not an image at all."""


@dataclass(frozen=True)
class CoverImage:
    kind: str
    """"front" or "back"."""
    url: str


def list_images(client: PoliteClient, mbid: str, *, base_url: str = DEFAULT_URL) -> list[dict[str, Any]]:
    """The archive's image entries for release group ``mbid``; an empty list when it has no cover art."""
    try:
        answer = client.get_json(f"{base_url.rstrip('/')}/release-group/{mbid}")
    except HttpError as error:
        if error.status == 404:
            return []
        raise
    return list(answer.get("images") or [])


def thumbnail_url(image: dict[str, Any], size: int) -> str | None:
    """The image's thumbnail at ``size``, else the nearest larger one, else the largest smaller one.

    Images uploaded before the 1200-pixel thumbnails existed may lack them. The original is never used:
    it can be a scan of tens of megabytes in any format.
    """
    thumbnails = image.get("thumbnails") or {}
    by_size = {s: thumbnails.get(str(s)) or thumbnails.get(_OLD_NAMES.get(s, "")) for s in SIZES}
    larger = [s for s in SIZES if s >= size]
    smaller = [s for s in reversed(SIZES) if s < size]
    return next((by_size[s] for s in larger + smaller if by_size[s]), None)


def choose_image(images: list[dict[str, Any]], kind: str, size: int) -> CoverImage | None:
    """The ``kind`` ("front" or "back") image at ``size``, or None if the release group has none."""
    flagged = [image for image in images if image.get(kind) is True]
    typed = [image for image in images if kind.capitalize() in (image.get("types") or [])]
    for image in flagged + typed:
        url = thumbnail_url(image, size)
        if url:
            return CoverImage(kind=kind, url=url)
    return None


def check_image(data: bytes) -> None:
    """Decode ``data`` fully with Pillow; raise :class:`InvalidImage` if it is cut short or not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise InvalidImage(f"not a whole image: {error}") from None
