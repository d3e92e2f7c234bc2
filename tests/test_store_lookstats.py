"""The look statistics stored with an index (index.lookstats): what a query would sample from the vectors, bit
for bit, mapped when loaded, switched with the generation, and one clear error when damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from index.faiss_index import build_faiss_index
from index.lookstats import LookMoments, write_look_stats
from index.store import IndexInfo, load_index, write_index
from recsys import hybrid
from tests.bad_inputs import raises_repair_error, rewrite_npz

DIM = 12


def _vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32) + 0.3
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _write(folder: Path, vectors: np.ndarray, look: LookMoments | None) -> IndexInfo:
    count = len(vectors)
    metadata = pd.DataFrame({
        "id": range(count), "path": [f"/c/{i}.jpg" for i in range(count)],
        "content_hash": [f"h{i}" for i in range(count)], "size": 1, "mtime_ns": 1, "genre": "rock",
    })
    index, params = build_faiss_index(vectors, "flat")
    return write_index(folder, index, metadata, vectors, {"family": "m"}, "m:1", "flat", params, look=look)


def test_stored_moments_equal_those_a_query_samples_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above STATISTICS_ROWS the moments are taken over a fixed sample of rows: the build's, written and read
    back, are the query's own, so ``--by both`` answers as it did when every query sampled them."""
    monkeypatch.setattr(hybrid, "STATISTICS_ROWS", 300)
    vectors = _vectors(1_000)
    _write(tmp_path, vectors, hybrid.sampled_look_moments(vectors))
    loaded = load_index(tmp_path)
    stored = hybrid.candidate_statistics(loaded.embeddings, stored=loaded.look_moments)
    sampled = hybrid.candidate_statistics(vectors)
    for name in ("mean_vector", "covariance", "sample"):
        assert np.array_equal(getattr(stored, name), getattr(sampled, name)), name
    assert stored.count == sampled.count == 1_000
    assert stored.mean_vector.dtype == stored.covariance.dtype == np.float32
    everything = hybrid.look_moments(vectors)[1]  # the sample is not every row: the test sees the sampling
    assert not np.array_equal(stored.covariance, everything)
    assert _mapped(loaded.look_moments.covariance) and _mapped(loaded.look_moments.mean_vector)
    assert loaded.look_moments.covariance.ctypes.data % 64 == 0


def _mapped(values: np.ndarray) -> bool:
    """Whether ``values`` is a view of a memory-mapped file."""
    while values is not None and not isinstance(values, np.memmap):
        values = values.base
    return values is not None


def test_an_index_without_look_statistics_loads_without_them(tmp_path: Path) -> None:
    info = _write(tmp_path, _vectors(20), None)
    assert "lookstats" not in info.files and load_index(tmp_path).look_moments is None


def test_a_new_generation_replaces_the_look_statistics(tmp_path: Path) -> None:
    first = _write(tmp_path, _vectors(20), hybrid.sampled_look_moments(_vectors(20)))
    vectors = _vectors(30, seed=1)
    second = _write(tmp_path, vectors, hybrid.sampled_look_moments(vectors))
    assert [p.name for p in tmp_path.glob("lookstats-*.npz")] == [second.files["lookstats"]]
    assert second.files["lookstats"] != first.files["lookstats"]
    assert np.array_equal(load_index(tmp_path).look_moments.mean_vector, hybrid.sampled_look_moments(vectors)
                          .mean_vector)


def test_moments_of_mismatched_shapes_are_refused_when_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="covariance"):
        write_look_stats(tmp_path / "x.npz", LookMoments(np.zeros(DIM, np.float32), np.zeros((DIM, 3), np.float32)))


_DAMAGES = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:200]),
    "not a zip": lambda path: path.write_bytes(b"\x89PNG not a statistics file" * 40),
    "an array missing": lambda path: rewrite_npz(path, covariance=None),
    "a foreign array": lambda path: rewrite_npz(path, extra=np.zeros(3)),
    "moments of another dimension": lambda path: rewrite_npz(path, mean_vector=np.zeros(DIM + 1, np.float32)),
    "a covariance of float64": lambda path: rewrite_npz(path, covariance=np.zeros(DIM * DIM)),
    "a covariance that is not finite": lambda path: rewrite_npz(path, covariance=np.full(DIM * DIM, np.nan, np.float32)),
    "a compressed file": lambda path: np.savez_compressed(path, **dict(np.load(path))),
}


@pytest.mark.parametrize("damage", _DAMAGES)
def test_damaged_look_statistics_give_one_error_that_says_how_to_repair(tmp_path: Path, damage: str) -> None:
    vectors = _vectors(20)
    info = _write(tmp_path, vectors, hybrid.sampled_look_moments(vectors))
    _DAMAGES[damage](tmp_path / info.files["lookstats"])
    with raises_repair_error("lookstats-"):
        load_index(tmp_path)
