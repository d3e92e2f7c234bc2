"""The package's front door: `from recsys import ...` is cheap, complete, and works with no folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import recsys
from recsys import Recommender, SleeveError, index_vectors
from tests.conftest import make_cover

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_front_door_loads_no_heavy_library() -> None:
    code = "import sys, json, recsys; print(json.dumps([m for m in ('torch', 'faiss', 'sklearn', 'skops') if m in sys.modules]))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(loaded.stdout) == []


def test_every_exported_name_resolves() -> None:
    for name in recsys.__all__:
        assert getattr(recsys, name) is not None, name
    with pytest.raises(AttributeError):
        recsys.no_such_name  # noqa: B018


def _vectors(count: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)


def test_an_index_from_arrays_answers_and_saves_to_a_folder(tmp_path: Path) -> None:
    vectors = _vectors(30)
    metadata = pd.DataFrame({"path": [f"cover-{i}.jpg" for i in range(30)], "genre": ["a", "b"] * 15,
                             "artist": [f"artist {i % 3}" for i in range(30)]})
    index = index_vectors(vectors, metadata)
    assert index.folder is None and index.info.index_type == "flat" and index.info.count == 30
    found = Recommender(index).similar_to_vector(vectors[7] / np.linalg.norm(vectors[7]), k=3)
    assert found.loc[0, "path"] == "cover-7.jpg" and found.loc[0, "score"] == pytest.approx(1.0, abs=1e-4)
    assert list(found.columns[:4]) == ["rank", "score", "genre", "path"] and "artist" in found
    saved = index.save(tmp_path / "index")
    assert saved.folder == tmp_path / "index"
    again = Recommender(saved).similar_to_vector(vectors[7] / np.linalg.norm(vectors[7]), k=3)
    pd.testing.assert_frame_equal(found, again)


def test_bad_arrays_get_a_clear_error() -> None:
    with pytest.raises(SleeveError, match="one row per vector"):
        index_vectors(_vectors(5), pd.DataFrame({"path": ["x"]}))
    with pytest.raises(SleeveError, match=r"\(N, d\)"):
        index_vectors(np.zeros(4, dtype=np.float32))


def test_images_in_memory_are_embedded_indexed_and_queried(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SLEEVE_CACHE_DIR", str(tmp_path / "cache"))  # the default cache holds the ONNX export
    files = [make_cover(tmp_path / f"c{i}.png", seed=i) for i in range(6)]
    images = [Image.open(path) for path in files]
    encoder = recsys.create_encoder("efficientnet-lite0")  # defaults: onnx runtime, default cache folder
    vectors = recsys.embed_images(images, encoder, batch_size=4)
    assert vectors.shape == (6, encoder.spec.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(recsys.embed_images(files[:2], encoder), vectors[:2], atol=1e-5)
    recommender = Recommender(index_vectors(vectors, pd.DataFrame({"path": map(str, files)}), encoder.spec), encoder)
    found = recommender.similar_to_cover(images[3].rotate(1), k=2)
    assert found.loc[0, "path"] == str(files[3])
    with pytest.raises(SleeveError, match="encoder"):
        Recommender(index_vectors(vectors), encoder)  # vectors of an unknown model


def test_settings_resolve_the_cache_folder_once(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SLEEVE_CACHE_DIR", str(tmp_path / "here"))
    assert recsys.Settings().cache_dir == tmp_path / "here"
    assert recsys.Settings(cache_dir="~/x").cache_dir == Path.home() / "x"
    with pytest.raises(SleeveError, match="unknown runtime"):
        recsys.Settings(runtime="tensorrt")
