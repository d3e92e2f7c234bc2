"""A corpus of awkward cover files, generated on the fly: each kind a real collection contains."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

# name -> reason fragment expected in the skip report
BAD_FILES = {
    "truncated.jpg": "corrupt or truncated",
    "empty.png": "empty file",
    "notes.jpg": "not an image",
    "corrupt.png": "corrupt or truncated",
    "bomb.png": "too large",
}

# files that are odd but valid: name -> expected (width, height) after decoding
ODD_BUT_VALID = {
    "cmyk.jpg": (40, 30),
    "grey16.png": (40, 30),
    "alpha.png": (40, 30),
    "palette-transparent.gif": (40, 30),
    "animated.gif": (40, 30),
    "rotated-exif.jpg": (30, 40),
    "cover.webp": (40, 30),
    "cover.bmp": (40, 30),
    "cover.tiff": (40, 30),
}


def gradient(width: int = 40, height: int = 30) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2))


def write_bad_files(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    gradient(200, 200).save(buffer, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("these are liner notes, not a picture\n")
    png = io.BytesIO()
    gradient().save(png, format="PNG")
    data = bytearray(png.getvalue())
    data[60:90] = b"\x00" * 30  # damage the image data after the header
    (folder / "corrupt.png").write_bytes(bytes(data))
    Image.new("1", (12_000, 12_000)).save(folder / "bomb.png")  # 144 Mpx, a few KB on disk
    return BAD_FILES


def write_odd_but_valid_files(folder: Path) -> dict[str, tuple[int, int]]:
    folder.mkdir(parents=True, exist_ok=True)
    base = gradient()
    base.convert("CMYK").save(folder / "cmyk.jpg")
    grey16 = (np.linspace(0, 65535, 40)[None, :].repeat(30, 0)).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "grey16.png")
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.new("L", base.size, 0))
    rgba.save(folder / "alpha.png")
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    palette.save(folder / "palette-transparent.gif", transparency=0)
    frames = [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    base.save(folder / "rotated-exif.jpg", exif=exif)
    base.save(folder / "cover.webp")
    base.save(folder / "cover.bmp")
    base.save(folder / "cover.tiff")
    return ODD_BUT_VALID
