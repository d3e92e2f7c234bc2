from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pytest

import recsys
from index import store
from index.faiss_index import build_faiss_index
from index.store import IndexFormatError, IndexNotFoundError, ModelMismatchError, load_index, write_index


def _parts(count: int, seed: int) -> tuple[faiss.Index, pd.DataFrame, np.ndarray]:
    vectors = np.random.default_rng(seed).standard_normal((count, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    metadata = pd.DataFrame({
        "id": range(count), "path": [f"/c/{seed}-{i}.jpg" for i in range(count)],
        "content_hash": [f"{seed}-{i}" for i in range(count)], "size": 1, "mtime_ns": 1, "genre": "rock",
    })
    index, _ = build_faiss_index(vectors, "flat")
    return index, metadata, vectors


def _write(folder: Path, count: int, seed: int, key: str = "m:1") -> None:
    index, metadata, vectors = _parts(count, seed)
    write_index(folder, index, metadata, vectors, {"family": "m"}, key, "flat", {})


def test_round_trip(tmp_path: Path) -> None:
    index, metadata, vectors = _parts(5, 0)
    write_index(tmp_path, index, metadata, vectors, {"family": "m"}, "m:1", "flat", {})
    loaded = load_index(tmp_path, expected_model_key="m:1")
    pd.testing.assert_frame_equal(loaded.metadata, metadata)
    np.testing.assert_array_equal(loaded.embeddings, vectors)
    assert loaded.faiss_index.ntotal == 5
    info = json.loads((tmp_path / "index.json").read_text())
    assert info["format_version"] == store.FORMAT_VERSION and info["count"] == 5 and info["dim"] == 8
    assert info["sleeve_version"] == recsys.__version__  # the store asks the package metadata, not recsys


def test_rewrite_removes_the_previous_generation(tmp_path: Path) -> None:
    _write(tmp_path, 5, 0)
    _write(tmp_path, 7, 1)
    assert load_index(tmp_path).info.count == 7
    assert len(list(tmp_path.glob("*.faiss"))) == 1 and len(list(tmp_path.glob("*.parquet"))) == 1


@pytest.mark.parametrize("failing", ["faiss.write_index", "pandas.DataFrame.to_parquet", "numpy.save"])
def test_a_failed_write_leaves_the_old_index_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    _write(tmp_path, 5, 0)
    before = sorted(p.name for p in tmp_path.iterdir())

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(failing, explode)
    with pytest.raises(OSError, match="disk full"):
        _write(tmp_path, 9, 1)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "no partial or temporary files may remain"
    loaded = load_index(tmp_path)
    assert loaded.info.count == 5 and loaded.metadata["path"].iloc[0] == "/c/0-0.jpg"


def test_missing_index_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="build-index"):
        load_index(tmp_path)


def test_index_of_another_format_version_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, 3, 0)
    info = json.loads((tmp_path / "index.json").read_text())
    info["format_version"] = 99
    (tmp_path / "index.json").write_text(json.dumps(info))
    with pytest.raises(IndexFormatError, match="format 99"):
        load_index(tmp_path)
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(IndexFormatError, match="not valid JSON"):
        load_index(tmp_path)


def test_index_of_another_model_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, 3, 0, key="clip:ViT-B-32:abc")
    with pytest.raises(ModelMismatchError, match="clip:ViT-B-32:abc"):
        load_index(tmp_path, expected_model_key="efficientnet-lite0:efficientnet-lite0:def")


def test_incomplete_index_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, 3, 0)
    next(tmp_path.glob("*.npy")).unlink()
    with pytest.raises(IndexFormatError, match="incomplete"):
        load_index(tmp_path)
