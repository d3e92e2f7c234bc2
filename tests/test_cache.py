from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from recsys.cache import CacheNotWritableError, EmbeddingCache, default_cache_dir
from recsys.ocr import TextCache, TextLine
from tests.bad_inputs import read_only_folder


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


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_set_aside_and_started_empty(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    """A cache holds only what can be computed again, so its damage must not stop a command (DatabaseError)."""
    with EmbeddingCache(tmp_path) as cache:
        cache.put("m", [f"h{i}" for i in range(500)], np.ones((500, 64), dtype=np.float32))
    database = tmp_path / "embeddings.sqlite"
    damaged = b"not a database " * 300 if damage == "garbage" else database.read_bytes()[:30_000]
    database.write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger="recsys.cache"), EmbeddingCache(tmp_path) as cache:
        assert cache.missing("m", ["h1"], 64) == ["h1"], "an empty cache: its vectors are computed again"
        cache.put("m", ["h1"], np.zeros((1, 64), dtype=np.float32))
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "moved it aside" in caplog.text
    assert (tmp_path / "embeddings.sqlite.damaged").read_bytes() == damaged
    with EmbeddingCache(tmp_path) as cache:
        assert cache.missing("m", ["h1", "h2"], 64) == ["h2"]


def test_the_cover_text_cache_heals_the_same_way(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cover_text.sqlite").write_bytes(b"\x00garbage" * 100)
    with caplog.at_level(logging.WARNING, logger="recsys.cache"), TextCache(tmp_path) as cache:
        cache.put("reader", "h1", [TextLine("LOVE", 0.9)])
        assert cache.get("reader", ["h1"]) == {"h1": [TextLine("LOVE", 0.9)]}
    assert len(caplog.records) == 1 and (tmp_path / "cover_text.sqlite.damaged").is_file()


@pytest.mark.parametrize("existing", [False, True])
def test_a_read_only_cache_folder_is_one_line_that_says_what_to_do(tmp_path: Path, existing: bool) -> None:
    """SQLite says only 'unable to open database file'; the user needs to hear which folder and what to do."""
    if existing:
        EmbeddingCache(tmp_path).close()
    with read_only_folder(tmp_path), pytest.raises(CacheNotWritableError) as caught:
        EmbeddingCache(tmp_path)
    message = str(caught.value)
    assert f"cache folder {tmp_path} is not writable" in message and "--cache DIR or $SLEEVE_CACHE_DIR" in message
