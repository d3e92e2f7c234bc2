"""Damaged, foreign, old and concurrently rewritten index folders: one clear error, or a correct read."""

from __future__ import annotations

import errno
import json
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from index import store
from index.faiss_index import build_faiss_index
from index.store import IndexBusyError, IndexFormatError, load_index, write_index, writer_lock
from tests.bad_inputs import INDEX_DAMAGES, faiss_file_on_a_full_disk, raises_repair_error, rewrite_npz

DIM = 8


def _write(
    folder: Path, count: int, seed: int = 0, extra: dict | None = None, neighbours: pd.DataFrame | None = None,
    words: dict[str, np.ndarray] | None = None,
) -> store.IndexInfo:
    vectors = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    metadata = pd.DataFrame({
        "id": range(count), "path": [f"/c/{seed}-{i}.jpg" for i in range(count)],
        "content_hash": [f"h{seed}-{i}" for i in range(count)], "size": 1, "mtime_ns": 1, "genre": "rock",
        **(extra or {}),
    })
    index, params = build_faiss_index(vectors, "flat")
    return write_index(folder, index, metadata, vectors, {"family": "m"}, "m:1", "flat", params,
                       neighbours=neighbours, words=words)


@pytest.mark.parametrize("damage", INDEX_DAMAGES)
def test_a_damaged_index_gives_one_error_that_says_how_to_repair(tmp_path: Path, damage: str) -> None:
    _write(tmp_path, 6)
    INDEX_DAMAGES[damage](tmp_path)
    with pytest.raises(IndexFormatError) as caught:
        load_index(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and ("--rebuild" in message or "build-index" in message), message


_GRAPH_DAMAGES = {
    "link to a row the index lacks": lambda path: pd.DataFrame(
        {"row": [0, 9], "neighbour": [9, 0], "weight": [0.5, 0.5]}).to_parquet(path),
    "foreign columns": lambda path: pd.DataFrame({"x": [1]}).to_parquet(path),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:20]),
}


@pytest.mark.parametrize("damage", _GRAPH_DAMAGES)
def test_a_damaged_neighbour_graph_gives_one_error_and_a_sound_one_loads(tmp_path: Path, damage: str) -> None:
    links = pd.DataFrame({"row": [0, 1], "neighbour": [1, 0], "weight": [0.5, 0.5]})
    info = _write(tmp_path, 6, neighbours=links)
    pd.testing.assert_frame_equal(load_index(tmp_path).neighbours, links)
    _GRAPH_DAMAGES[damage](tmp_path / info.files["neighbours"])
    with raises_repair_error("neighbours-"):
        load_index(tmp_path)


def _words_arrays(count: int) -> dict[str, np.ndarray]:
    from recsys import textsearch

    texts = ["PETER TOSH\nLive", "SEPULTURA\nRoots", "", "Sonny Rollins", "CD", "PETER TOSH\nBush Doctor"]
    return textsearch.model_arrays(textsearch.fit_text_vectors(texts[:count]))


_WORDS_DAMAGES = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:200]),
    "not a zip": lambda path: path.write_bytes(b"\x89PNG not a words file" * 40),
    "an array missing": lambda path: rewrite_npz(path, line_owner=None),
    "an array of objects": lambda path: rewrite_npz(path, idf=np.array([{"a": 1}], dtype=object)),
    "a model of other covers": lambda path: rewrite_npz(path, covers_indptr=np.array([0, 1, 2], np.int32)),
    "a term index past the vocabulary": lambda path: rewrite_npz(
        path, covers_indices=np.full(len(np.load(path)["covers_indices"]), 10_000, np.int32)),
    "a line of a cover the index lacks": lambda path: rewrite_npz(
        path, line_owner=np.full(len(np.load(path)["line_owner"]), 99)),
    "rows running backwards": lambda path: rewrite_npz(
        path, lines_indptr=np.load(path)["lines_indptr"][::-1].copy()),
    "a fit state that is not two counts": lambda path: rewrite_npz(path, fit_state=np.array([6.0, 1.0, 2.0])),
}


def test_the_words_file_is_an_npz_whose_arrays_are_mapped_in_place(tmp_path: Path) -> None:
    arrays = _words_arrays(6)
    info = _write(tmp_path, 6, words=arrays)
    loaded = load_index(tmp_path).words
    assert loaded is not None and set(loaded) == set(arrays)
    for name, values in arrays.items():
        assert np.array_equal(loaded[name], values) and loaded[name].dtype == values.dtype, name
        assert loaded[name].size == 0 or isinstance(loaded[name].base, np.memmap), name
        assert loaded[name].size == 0 or loaded[name].ctypes.data % 64 == 0, name  # aligned: no copy by scipy
    with np.load(tmp_path / info.files["words"]) as plain:  # an ordinary .npz to numpy
        assert set(plain.files) == set(arrays)


def test_a_words_file_may_say_when_its_model_was_fitted(tmp_path: Path) -> None:
    """The fit state (recsys.textstore.REFIT_SHARE's counts) is stored beside the model and mapped like it."""
    info = _write(tmp_path, 6, words=_words_arrays(6) | {"fit_state": np.array([5, 1], dtype=np.int64)})
    assert list(load_index(tmp_path).words["fit_state"]) == [5, 1]
    with np.load(tmp_path / info.files["words"]) as plain:
        assert list(plain["fit_state"]) == [5, 1]


@pytest.mark.parametrize("damage", _WORDS_DAMAGES)
def test_a_damaged_words_model_gives_one_error_that_says_how_to_repair(tmp_path: Path, damage: str) -> None:
    info = _write(tmp_path, 6, words=_words_arrays(6))
    _WORDS_DAMAGES[damage](tmp_path / info.files["words"])
    with raises_repair_error("words-"):
        load_index(tmp_path)


def test_a_format_1_folder_still_loads_with_its_manifest_columns_as_user_columns(tmp_path: Path) -> None:
    _write(tmp_path, 4, extra={"artist": ["a", "b", "c", "d"]})
    info = json.loads((tmp_path / "index.json").read_text())
    metadata = pd.read_parquet(tmp_path / info["files"]["metadata"])
    metadata.rename(columns={"user:artist": "artist"}).to_parquet(tmp_path / info["files"]["metadata"])
    info["format_version"] = 1
    (tmp_path / "index.json").write_text(json.dumps(info))
    loaded = load_index(tmp_path)
    assert list(loaded.metadata["user:artist"]) == ["a", "b", "c", "d"]
    assert store.user_columns(loaded.metadata) == ["user:artist"]


def test_shown_names_of_user_columns_never_collide_with_sleeve_or_each_other() -> None:
    stored = [store.USER_PREFIX + name for name in ["artist", "score", "id", "path", "user:score", "rank", "Path"]]
    shown = [store.shown_name(name) for name in stored]
    assert shown == ["artist", "user:score", "user:id", "user:path", "user:user:score", "user:rank", "Path"]
    assert len(set(shown)) == len(shown) and not set(shown) & store.RESERVED_NAMES


def test_a_second_writer_fails_at_once_and_the_first_finishes(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    with writer_lock(tmp_path):
        with pytest.raises(IndexBusyError, match="another sleeve process is writing"):
            with writer_lock(tmp_path):
                pass
        _write(tmp_path, 5, seed=1)
    with writer_lock(tmp_path):  # released: the next writer gets it
        pass
    assert load_index(tmp_path).info.count == 5


def test_leftovers_of_an_interrupted_writer_are_removed_and_the_index_kept(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    kept = sorted(p.name for p in tmp_path.iterdir())
    (tmp_path / ".vectors-x.faiss.abc123.tmp").write_bytes(b"half")
    (tmp_path / "vectors-19990101T000000-aaaaaa.faiss").write_bytes(b"orphan generation")
    (tmp_path / "embeddings-19990101T000000-aaaaaa.npy").write_bytes(b"orphan generation")
    store.remove_leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == kept
    assert load_index(tmp_path).info.count == 3


def test_a_full_disk_during_the_write_keeps_the_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, 3)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("numpy.save", full)
    with pytest.raises(OSError) as caught:
        _write(tmp_path, 5, seed=1)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert load_index(tmp_path).info.count == 3 and not list(tmp_path.glob(".*.tmp"))


def test_a_full_disk_under_faiss_is_enospc_and_keeps_the_old_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAISS's own writer only prints a failed close: a small index would be committed truncated, the old one gone."""
    _write(tmp_path, 3)
    faiss_file_on_a_full_disk(monkeypatch)
    with pytest.raises(OSError) as caught:
        _write(tmp_path, 5, seed=1)
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert load_index(tmp_path).info.count == 3 and not list(tmp_path.glob(".*.tmp"))


def _rewrite_forever(folder: str, rounds: int) -> None:
    for round_ in range(rounds):
        _write(Path(folder), 20 + round_ % 7, seed=round_)


def test_readers_never_fail_while_a_writer_switches_generations(tmp_path: Path) -> None:
    """Before the fix, a reader that had read index.json could find its generation deleted (2 in 28)."""
    _write(tmp_path, 20)
    writer = multiprocessing.get_context("spawn").Process(target=_rewrite_forever, args=(str(tmp_path), 150))
    writer.start()
    reads, errors = 0, []
    query = np.ones(DIM, np.float32) / np.sqrt(DIM)
    while writer.is_alive() or reads < 20:
        try:
            loaded = load_index(tmp_path)
            _, rows = loaded.faiss_index.search(query[None], 5)
            assert len(loaded.metadata.iloc[rows[0]]) == 5
            assert loaded.embeddings.shape == (loaded.info.count, DIM) and np.isfinite(loaded.embeddings).all()
            reads += 1
        except Exception as error:  # noqa: BLE001 - every failure is collected and reported
            errors.append(repr(error))
    writer.join()
    assert writer.exitcode == 0
    assert not errors, f"{len(errors)} of {reads + len(errors)} reads failed, e.g. {errors[0]}"
    assert reads >= 20


def test_an_open_index_keeps_working_after_its_files_are_deleted(tmp_path: Path) -> None:
    _write(tmp_path / "a", 10)
    loaded = load_index(tmp_path / "a")
    shutil.rmtree(tmp_path / "a")
    _, rows = loaded.faiss_index.search(np.ones((1, DIM), np.float32), 3)
    assert (rows >= 0).all() and float(np.asarray(loaded.embeddings).sum()) != 0.0
