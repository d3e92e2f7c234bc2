"""Shared fixtures: the real covers in ../shared (skipped with a reason when absent) and a tiny CLIP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

SHARED_COVERS = Path(__file__).resolve().parents[2] / "shared" / "covers"


def shared_covers_or_skip() -> Path:
    if not (SHARED_COVERS / "MANIFEST.csv").is_file():
        pytest.skip(f"real covers not found at {SHARED_COVERS} (the ../shared folder beside the repo)")
    return SHARED_COVERS


@pytest.fixture(scope="session")
def shared_manifest() -> pd.DataFrame:
    """MANIFEST.csv of ../shared/covers with absolute paths."""
    root = shared_covers_or_skip()
    table = pd.read_csv(root / "MANIFEST.csv")
    table["path"] = [str(root / p) for p in table["path"]]
    return table


@pytest.fixture(scope="session")
def shared_subset(tmp_path_factory: pytest.TempPathFactory, shared_manifest: pd.DataFrame) -> Path:
    """A copy of 12 real covers per genre in <genre>/ folders (60 files), the same ones every run."""
    target = tmp_path_factory.mktemp("covers")
    for genre, group in shared_manifest.groupby("genre"):
        (target / genre).mkdir()
        for path in group.sort_values("path")["path"].head(12):
            shutil.copy(path, target / genre / Path(path).name)
    return target


def make_cover(path: Path, seed: int, size: int = 128, fmt: str | None = None) -> Path:
    """A synthetic cover drawn from random shapes, stripes and noise: distinct enough per seed that a
    re-encoded copy is closer to its original than to any other."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 8))):
        box = sorted(rng.integers(0, size, 2)), sorted(rng.integers(0, size, 2))
        shape = [int(box[0][0]), int(box[1][0]), int(box[0][1]) + 4, int(box[1][1]) + 4]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse(shape, fill=colour)
        elif kind == 1:
            draw.rectangle(shape, fill=colour)
        else:
            step = int(rng.integers(3, 12))
            for x in range(0, size, step):
                draw.line([x, 0, size - x, size], fill=colour, width=int(rng.integers(1, 4)))
    noise = rng.normal(0, float(rng.uniform(0, 25)), (size, size, 3))
    pixels = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config JSON, checkpoint) of a tiny open_clip architecture with random weights.

    Proves the CLIP plumbing (loading, preprocessing, text, indexing) end to end, not the quality of CLIP.
    """
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny-clip")
    config = folder / "sleeve-tiny-clip.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model("sleeve-tiny-clip")
    checkpoint = folder / "tiny-clip.pt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    return config, checkpoint
