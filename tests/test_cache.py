from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from recsys.cache import EmbeddingCache, default_cache_dir


def test_vectors_survive_reopening_and_are_kept_apart_per_model(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with EmbeddingCache(tmp_path) as cache:
        cache.put("model-a", ["h1", "h2", "h3"], vectors)
    with EmbeddingCache(tmp_path) as cache:
        np.testing.assert_array_equal(cache.get("model-a", ["h3", "h1", "h3"], 4), vectors[[2, 0, 2]])
        assert cache.missing("model-a", ["h1", "h4", "h4", "h2"], 4) == ["h4"]
        assert cache.missing("model-b", ["h1"], 4) == ["h1"]
        with pytest.raises(KeyError, match="1 vectors missing"):
            cache.get("model-b", ["h1"], 4)


def test_many_hashes_are_looked_up_in_chunks(tmp_path: Path) -> None:
    hashes = [f"h{i}" for i in range(2500)]
    vectors = np.arange(2500 * 2, dtype=np.float32).reshape(2500, 2)
    with EmbeddingCache(tmp_path) as cache:
        cache.put("m", hashes, vectors)
        assert cache.missing("m", hashes + ["new"], 2) == ["new"]
        np.testing.assert_array_equal(cache.get("m", hashes, 2), vectors)


def test_a_vector_of_another_length_is_dropped_with_one_warning_and_never_returned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddingCache(tmp_path) as cache:
        cache.put("m", ["short", "long", "good"], np.ones((3, 4), dtype=np.float32))
        cache.put("m", ["short"], np.ones((1, 3), dtype=np.float32))
        cache.put("m", ["long"], np.ones((1, 8), dtype=np.float32))
        with pytest.raises(KeyError, match="2 vectors missing"):
            cache.get("m", ["short", "long", "good"], 4)
        with caplog.at_level(logging.WARNING):
            assert cache.missing("m", ["short", "long", "good"], 4) == ["short", "long"]
            assert cache.missing("m", ["short", "long", "good"], 4) == ["short", "long"]
            cache.put("m", ["long"], np.ones((1, 3), dtype=np.float32))
            assert cache.missing("m", ["long"], 4) == ["long"]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "2 cached vector(s)" in caplog.records[0].getMessage()


def test_default_cache_dir_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLEEVE_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SLEEVE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "sleeve"
