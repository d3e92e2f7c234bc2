"""End to end on real covers from ../shared: build with the offline encoder, find edited copies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps

from cli import main


@pytest.fixture(scope="module")
def shared_index(shared_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("e2e")
    result = CliRunner().invoke(
        main,
        ["build-index", "--covers", str(shared_subset), "--index", str(root / "index"), "--cache", str(root / "cache"),
         "--model", "efficientnet-lite0", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["covers"] == 60
    return root / "index", root / "cache"


@pytest.mark.parametrize("genre", ["country", "electronic", "hip-hop", "pop", "rock"])
def test_a_flipped_resized_re_encoded_copy_finds_its_original_first(
    shared_index: tuple[Path, Path], shared_subset: Path, tmp_path: Path, genre: str
) -> None:
    index, cache = shared_index
    original = sorted((shared_subset / genre).iterdir())[5]
    edited = ImageOps.mirror(Image.open(original).convert("RGB")).resize((180, 180), Image.Resampling.LANCZOS)
    query = tmp_path / "query.webp"
    edited.save(query, quality=60)
    result = CliRunner().invoke(
        main, ["recommend", "--index", str(index), "--cache", str(cache), "--cover", str(query), "-k", "10", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert len(rows) == 10
    assert rows[0]["path"] == str(original) and rows[0]["genre"] == genre
