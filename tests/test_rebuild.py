"""build-index --rebuild repairs any index folder of sleeve's: the result equals a clean build, the old files
are moved aside, and every error that advises it names the exact command."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cli import main
from index.errors import SleeveError
from index.store import load_index
from recsys.build import build_index
from recsys.settings import Settings
from tests.conftest import make_cover


def _edit_model(**changes: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        info = json.loads((folder / "index.json").read_text())
        info["model"].update(changes)
        (folder / "index.json").write_text(json.dumps(info))

    return edit


def _edit_search_params(**params: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        info = json.loads((folder / "index.json").read_text())
        info["search_params"] = params
        (folder / "index.json").write_text(json.dumps(info))

    return edit


def _replace_by_folder(folder: Path) -> None:
    (folder / "index.json").unlink()
    (folder / "index.json").mkdir()


DAMAGES: dict[str, Callable[[Path], None]] = {
    "unknown encoder family": _edit_model(family="vanished-family"),
    "index.json is a folder": _replace_by_folder,
    "weights fingerprint differs": _edit_model(weights_sha256="0" * 64),
    "index.json nested 100,000 deep": lambda f: (f / "index.json").write_text("[" * 100_000 + "]" * 100_000),
    "non-integer search parameter": _edit_search_params(efSearch="many"),
    "nprobe on a flat index": _edit_search_params(nprobe=8),
}


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(covers, cache, a clean index of them)."""
    root = tmp_path_factory.mktemp("rebuild")
    for g, genre in enumerate(["rock", "jazz"]):
        for i in range(3):
            make_cover(root / "covers" / genre / f"{genre}-{i}.png", seed=100 * g + i)
    _build(root / "covers", root / "clean", root / "cache")
    return root / "covers", root / "cache", root / "clean"


def _build(covers: Path, index: Path, cache: Path, rebuild: bool = False, encoder: str = "efficientnet-lite0") -> object:
    settings = Settings(cache_dir=cache, progress=False)
    return build_index(index, covers=covers, encoder=encoder, workers=0, rebuild=rebuild, settings=settings)


def _assert_equal_indexes(built: Path, clean: Path) -> None:
    ours, theirs = load_index(built), load_index(clean)
    np.testing.assert_array_equal(np.asarray(ours.embeddings), np.asarray(theirs.embeddings))
    pd.testing.assert_frame_equal(ours.metadata, theirs.metadata)
    for field in ("model", "model_key", "dim", "count", "index_type", "search_params"):
        assert getattr(ours.info, field) == getattr(theirs.info, field), field


@pytest.mark.parametrize("damage", DAMAGES)
def test_rebuild_repairs_a_damaged_index_to_a_clean_build_and_keeps_the_old_files(
    collection: tuple[Path, Path, Path], tmp_path: Path, damage: str
) -> None:
    covers, cache, clean = collection
    index = tmp_path / "my index"
    _build(covers, index, cache)
    old_faiss = json.loads((index / "index.json").read_text())["files"]["faiss"]
    DAMAGES[damage](index)

    with pytest.raises(SleeveError) as caught:  # an update (keeping the index's model): one line, the command
        _build(covers, index, cache, encoder="auto")
    message = str(caught.value)
    assert "\n" not in message and f"sleeve build-index --rebuild --index '{index}' --covers {covers}" in message

    _build(covers, index, cache, rebuild=True)
    _assert_equal_indexes(index, clean)
    aside = list(index.glob("damaged-*"))
    assert len(aside) == 1 and (aside[0] / old_faiss).is_file() and (aside[0] / "index.json").exists()
    assert "could not reuse" in (aside[0] / "REASON.txt").read_text()


def test_rebuild_of_a_sound_index_keeps_nothing_aside(collection: tuple[Path, Path, Path], tmp_path: Path) -> None:
    covers, cache, clean = collection
    _build(covers, tmp_path / "index", cache)
    _build(covers, tmp_path / "index", cache, rebuild=True)
    _assert_equal_indexes(tmp_path / "index", clean)
    assert not list((tmp_path / "index").glob("damaged-*"))


def test_cli_errors_that_advise_a_rebuild_name_the_command_and_it_works(
    collection: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    covers, cache, clean = collection
    index = tmp_path / "index"
    build = ["build-index", "--covers", str(covers), "--index", str(index), "--cache", str(cache), "--model",
             "efficientnet-lite0", "--workers", "0", "--no-progress"]
    assert CliRunner().invoke(main, build).exit_code == 0
    DAMAGES["weights fingerprint differs"](index)
    query = ["recommend", "--index", str(index), "--cache", str(cache), "--cover", str(covers / "rock" / "rock-0.png")]
    refused = CliRunner().invoke(main, query)
    assert refused.exit_code == 1 and f"sleeve build-index --rebuild --index {index} --covers" in refused.stderr
    rebuilt = CliRunner().invoke(main, [*build, "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    _assert_equal_indexes(index, clean)
    assert CliRunner().invoke(main, query).exit_code == 0
