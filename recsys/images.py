"""Decode any cover file into a plain 8-bit RGB image, or say clearly why it cannot be.

Real collections hold CMYK scans, 16-bit TIFFs, palette GIFs with transparency, rotated phone photos,
animated WebPs and files that only pretend to be images. Every encoder wants the same thing: an RGB
picture the right way up. Decoding is the only place that knows about file formats.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from index.errors import SleeveError

DEFAULT_MAX_PIXELS = 64_000_000
"""Refuse images above this many pixels (decompression bombs); 8000 x 8000 is far beyond any cover."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"})
"""File name endings treated as covers when a folder is scanned."""

UNSUPPORTED_SUFFIXES = frozenset({".heic", ".heif", ".jxl", ".jp2"})
"""Image formats this Pillow cannot decode: reported when a folder is scanned, not silently left out."""

# ``max_pixels`` below is the one pixel limit: Pillow's own (a warning, then an error at twice its
# MAX_IMAGE_PIXELS) would otherwise override a --max-pixels above it and speak in its own words.
Image.MAX_IMAGE_PIXELS = None

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "named pipe"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISDIR, "directory"),
)

_HIGH_BIT_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class BadImageError(SleeveError):
    """A file that cannot be used as a cover; the message is the reason shown to the user."""


def read_cover_bytes(path: str | Path, max_bytes: int | None = None, sniff: bool = False) -> bytes:
    """The file's bytes, for a caller that hashes and decodes the same read; :class:`BadImageError` if unreadable
    or longer than ``max_bytes`` (a special file such as a FIFO is refused without being opened, a longer file
    without being read). With ``sniff`` (a query), a file whose header is no image's is refused before it is read
    whole; a build reads and hashes every file, so that its copies are reported together."""
    reason = special_file_reason(path)
    if reason:
        raise BadImageError(reason)
    try:
        with open(path, "rb") as handle:
            if max_bytes is not None and os.fstat(handle.fileno()).st_size > max_bytes:
                raise BadImageError(_too_long(max_bytes))
            if sniff:
                _sniff(handle)
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except OSError as error:
        raise BadImageError(_unreadable(error)) from None
    if max_bytes is not None and len(data) > max_bytes:  # it grew while it was read
        raise BadImageError(_too_long(max_bytes))
    return data


def _sniff(handle: BinaryIO) -> None:
    """Refuse a file whose header Pillow recognises as no image format (Pillow reads only the header here), then
    rewind; anything else, including a damaged body, is left for decoding to report precisely."""
    try:
        with Image.open(handle):
            pass
    except UnidentifiedImageError:
        empty = handle.seek(0, os.SEEK_END) == 0
        raise BadImageError("empty file" if empty else "not an image (unknown or corrupt format)") from None
    except Exception:  # noqa: BLE001 - a header Pillow knows but cannot parse: decoding says why
        pass
    handle.seek(0)


def _too_long(max_bytes: int) -> str:
    return f"too large: over {max_bytes:,} bytes, more than an image within --max-pixels takes"


def max_file_bytes(max_pixels: int) -> int:
    """The most bytes a cover of ``max_pixels`` can take: uncompressed 16-bit RGBA, plus room for metadata."""
    return max_pixels * 8 + (16 << 20)


def _unreadable(error: OSError) -> str:
    """Why a file could not be opened, in the user's words."""
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if isinstance(error, IsADirectoryError):
        return "is a directory"
    if isinstance(error, PermissionError):
        return "permission denied"
    return f"cannot read: {error.strerror or error}"


def load_cover(
    path: str | Path | bytes, max_pixels: int = DEFAULT_MAX_PIXELS, reduce_to: int | None = None
) -> Image.Image:
    """Open ``path`` (or decode a file's bytes already read) and return an upright RGB image; raise
    :class:`BadImageError` with a reason otherwise.

    ``reduce_to`` lets a large JPEG decode at a fraction of its size (never below ``reduce_to`` pixels
    per side), which is much faster when the encoder only needs a small input.
    """
    if not isinstance(path, bytes):
        reason = special_file_reason(path)
        if reason:  # checked before opening: reading a FIFO or /dev/zero would block or never end
            raise BadImageError(reason)
    source = io.BytesIO(path) if isinstance(path, bytes) else Path(path)
    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise BadImageError(
                    f"too large: {width}x{height} pixels is over the limit of {max_pixels:,} (--max-pixels)"
                )
            image.seek(0)  # first frame of animated GIF/WebP/TIFF
            if reduce_to and image.format == "JPEG":
                image.draft("RGB", (reduce_to, reduce_to))
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except BadImageError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        raise BadImageError(_unreadable(error)) from None
    except UnidentifiedImageError:
        empty = len(path) == 0 if isinstance(path, bytes) else _is_empty(Path(path))
        reason = "empty file" if empty else "not an image (unknown or corrupt format)"
        raise BadImageError(reason) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError/ValueError depending on format.
        raise BadImageError(f"corrupt or truncated: {error}") from None


def special_file_kind(path: str | Path) -> str | None:
    """What ``path`` (links followed) is when it is not a regular file, without opening it; None otherwise.

    A path that cannot be examined (missing, no permission) gives None: opening it reports why.
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _SPECIAL_KINDS if test(mode)), "not a regular file")


def special_file_reason(path: str | Path) -> str | None:
    """Why ``path`` cannot be a cover when it is not a regular file (checked without opening it)."""
    kind = special_file_kind(path)
    if kind is None:
        return None
    return "is a directory" if kind == "directory" else f"not a regular file ({kind})"


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: transparency goes onto white, high bit depths are scaled."""
    if image.mode in _HIGH_BIT_DEPTH_MODES:
        image = _to_8bit_grey(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode in ("RGB", "L") and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB") if image.mode != "RGB" else image


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """Scale 16-bit, 32-bit integer or float greyscale into 0..255 (Pillow's own convert clips instead)."""
    pixels = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        top = 65535.0
    else:
        peak = float(pixels.max()) if pixels.size else 0.0
        top = 1.0 if image.mode == "F" and peak <= 1.0 else max(peak, 255.0)
    scaled = np.clip(pixels / max(top, 1e-12) * 255.0, 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled)


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False
