"""A small real index for the web app's tests: the 60 shared covers with artist and album columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys import Settings, build_index


@pytest.fixture(scope="session")
def app_index(shared_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(index folder, cache folder) of the shared subset, built from a manifest with metadata columns, with the
    text printed on the covers (read once by OCR into the cache folder)."""
    root = tmp_path_factory.mktemp("webapp")
    covers = sorted(shared_subset.glob("*/*"))
    manifest = pd.DataFrame(
        {
            "path": [str(path) for path in covers],
            "genre": [path.parent.name for path in covers],
            "artist": [f"{path.parent.name} band {row % 3}" for row, path in enumerate(covers)],
            "album": [f"album {row}" for row in range(len(covers))],
        }
    )
    manifest.to_csv(root / "manifest.csv", index=False)
    build_index(root / "index", manifest=root / "manifest.csv", encoder="efficientnet-lite0", workers=0,
                settings=Settings(cache_dir=root / "cache", progress=False), read_text=True)
    return root / "index", root / "cache"
