"""Edited copies of a cover, as editions have them, and a small real index holding a cover and three of its
copies among other covers (for the recommend and app tests of editions)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from recsys.build import build_index
from recsys.settings import Settings


def edited(image: Image.Image, kind: str) -> Image.Image:
    """One edit an edition has (bench/editions.py draws more, at random)."""
    width, height = image.size
    if kind == "banner":
        out = image.copy()
        draw = ImageDraw.Draw(out)
        draw.rectangle([0, height - height // 8, width, height], fill=(20, 20, 120))
        draw.text((width / 2, height - height / 16), "DELUXE EDITION", fill=(255, 255, 255),
                  font=ImageFont.load_default(size=height // 12), anchor="mm")
        return out
    if kind == "crop":
        return image.crop((width // 20, height // 25, width - width // 50, height - height // 30)).resize(image.size)
    if kind == "colour":
        return ImageEnhance.Contrast(ImageEnhance.Color(image).enhance(1.4)).enhance(0.85)
    return image.resize((width * 2 // 3, height * 2 // 3)).resize(image.size)


@dataclass(frozen=True)
class EditedIndex:
    folder: Path
    cache: Path
    original: Path
    copies: tuple[Path, ...]
    outside: Path
    """Another edited copy of the original, not in the index: a query whose family the index does not know."""


@pytest.fixture(scope="session")
def edited_index(shared_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> EditedIndex:
    """20 real covers (4 per genre), of which one has 3 edited copies in the index (no cover text)."""
    root = tmp_path_factory.mktemp("edited")
    covers = root / "covers"
    for genre in sorted(path.name for path in shared_subset.iterdir()):
        (covers / genre).mkdir(parents=True)
        for path in sorted((shared_subset / genre).iterdir())[:4]:
            (covers / genre / path.name).write_bytes(path.read_bytes())
    original = sorted((covers / "rock").iterdir())[0]
    base = Image.open(original).convert("RGB")
    copies = []
    for kind in ("crop", "colour", "reencode"):
        copies.append(covers / "rock" / f"{original.stem}-{kind}.jpg")
        edited(base, kind).save(copies[-1], quality=85)
    outside = root / "query-banner.jpg"
    edited(base, "banner").save(outside, quality=85)
    folder, cache = root / "index", root / "cache"
    build_index(folder, covers=covers, encoder="efficientnet-lite0", workers=0,
                settings=Settings(cache_dir=cache, progress=False))
    return EditedIndex(folder, cache, original, tuple(copies), outside)
