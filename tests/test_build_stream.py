"""A build streams its vectors: from the cache into the generation's memory-mapped .npy, and from there into an
IVF-PQ index in shards; the result equals the index built from the vectors in memory in one go."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd
import pytest

from index.faiss_index import build_faiss_index
from index.registry import IndexConfigError
from index.store import StagedEmbeddings, load_index, stage_embeddings, write_index
from recsys.build import build_index
from recsys.cache import EmbeddingCache
from recsys.encoders import Encoder, ModelSpec
from recsys.ingest import content_hash
from recsys.settings import Settings

COUNT, DIM, K = 10_000, 32, 10


class _CachedOnly(Encoder):
    """An encoder whose every vector is already in the cache: the build must never ask it for one."""

    spec = ModelSpec("synthetic", "families", "0" * 64, DIM)
    input_size = 8

    @staticmethod
    def transform(image: Any) -> Any:
        raise AssertionError("a cached cover was decoded")

    def encode_images(self, batch: Any) -> np.ndarray:
        raise AssertionError("a cached cover was embedded")


def _families(count: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 200 centres, like embeddings of covers that come in families."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, dim))
    rows = (centres[rng.integers(0, 200, count)] + 0.6 * rng.normal(size=(count, dim))).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """COUNT small files with a cached vector each (cover i has vector i), in path order."""
    root = tmp_path_factory.mktemp("stream")
    covers, cache = root / "covers", root / "cache"
    (covers / "rock").mkdir(parents=True)
    vectors = _families(COUNT, DIM, seed=7)
    paths = [covers / "rock" / f"{i:05d}.jpg" for i in range(COUNT)]
    for i, path in enumerate(paths):
        path.write_bytes(f"cover {i}".encode())
    with EmbeddingCache(cache) as store:
        store.put(_CachedOnly.spec.key, [content_hash(p) for p in paths], vectors)
    return covers, cache, vectors


def _build(collection: tuple[Path, Path, np.ndarray], index: Path, index_type: str) -> Any:
    covers, cache, _ = collection
    settings = Settings(cache_dir=cache, progress=False)
    return build_index(index, covers=covers, encoder=_CachedOnly(), index_type=index_type, settings=settings)


def _recall(found: np.ndarray, vectors: np.ndarray, queries: np.ndarray) -> float:
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :K]
    return float(np.mean([len(set(t) & set(f)) / K for t, f in zip(truth, found)]))


def test_a_streamed_ivfpq_build_equals_the_index_built_in_one_go(collection, tmp_path: Path) -> None:
    vectors = collection[2]
    summary = _build(collection, tmp_path / "index", "ivfpq")
    built = load_index(tmp_path / "index")
    one_go, one_go_params = build_faiss_index(vectors, "ivfpq")

    assert summary.index_type == "ivfpq" and summary.embedded == 0
    assert built.info.search_params == one_go_params
    np.testing.assert_array_equal(built.embeddings, vectors)
    assert list(built.metadata["id"]) == list(range(COUNT))
    queries = _families(200, DIM, seed=8)
    _, expected = one_go.search(queries, K)
    _, got = built.faiss_index.search(queries, K)
    assert np.array_equal(got, expected)  # the same sample trains it, so the same codes sit in the same lists
    assert abs(_recall(got, vectors, queries) - _recall(expected, vectors, queries)) <= 0.01
    assert _recall(got, vectors, queries) > 0.3


def test_a_failed_build_leaves_the_index_and_no_staged_vectors(collection, tmp_path: Path) -> None:
    _build(collection, tmp_path / "index", "flat")
    before = sorted(p.name for p in (tmp_path / "index").iterdir())
    covers = tmp_path / "few"
    (covers / "jazz").mkdir(parents=True)
    for i in range(12):
        source = collection[0] / "rock" / f"{i:05d}.jpg"
        (covers / "jazz" / source.name).write_bytes(source.read_bytes())
    settings = Settings(cache_dir=collection[1], progress=False)

    with pytest.raises(IndexConfigError, match="at least"):  # too few for IVF-PQ: raised after staging
        build_index(tmp_path / "index", covers=covers, encoder=_CachedOnly(), index_type="ivfpq", settings=settings)

    assert sorted(p.name for p in (tmp_path / "index").iterdir()) == before
    assert load_index(tmp_path / "index").info.count == COUNT


def test_writing_the_vectors_holds_no_copy_of_them_all(tmp_path: Path) -> None:
    """The write path (cache -> staged .npy -> the generation's file) at 200k x 64: its Python allocations stay far
    below the 51 MB that one array of every vector takes. FAISS's own copy (a flat index) is not Python's."""
    count, dim = 200_000, 64
    rows = np.random.default_rng(0).standard_normal((count, dim)).astype(np.float32)
    hashes = [f"h{i}" for i in range(count)]
    metadata = pd.DataFrame({
        "id": range(count), "path": [f"/c/{h}.jpg" for h in hashes], "content_hash": hashes, "size": 1,
        "mtime_ns": 1, "genre": "rock",
    })
    (tmp_path / "index").mkdir()
    with EmbeddingCache(tmp_path / "cache") as cache:
        for start in range(0, count, 50_000):
            cache.put("m:1", hashes[start : start + 50_000], rows[start : start + 50_000])
        staged, read_peak = _traced(lambda: _read_staged(cache, tmp_path / "index", hashes, dim))
    index = faiss.IndexFlatIP(dim)
    index.add(staged.rows)
    _, write_peak = _traced(lambda: write_index(tmp_path / "index", index, metadata, staged, {}, "m:1", "flat", {}))

    assert max(read_peak, write_peak) < rows.nbytes / 4, (read_peak, write_peak)  # cache.get alone: 3x nbytes
    np.testing.assert_array_equal(load_index(tmp_path / "index").embeddings, rows)


def _read_staged(cache: EmbeddingCache, folder: Path, hashes: list[str], dim: int) -> StagedEmbeddings:
    staged = stage_embeddings(folder, len(hashes), dim)
    cache.read_into("m:1", hashes, staged.rows)
    return staged


def _traced(step: Callable[[], Any]) -> tuple[Any, int]:
    """What ``step`` returns, and the peak of the Python (and numpy) memory it allocated."""
    tracemalloc.start()
    try:
        result = step()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
