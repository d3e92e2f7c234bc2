"""A loaded index reads what a query asks, not the whole collection: row texts and vectors mapped, the metadata
decoded by the rows shown; and an index written before sleeve stored row texts answers the same."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from index import lookup, store
from index.faiss_index import build_faiss_index
from index.rowtext import write_row_texts
from index.store import load_index, write_index
from index.table import Table
from recsys import textsearch
from recsys.recommend import Recommender
from tests.bad_inputs import raises_repair_error

COUNT = 60
WORDS = ["PETER TOSH", "SEPULTURA", "Sonny Rollins", "Bush Doctor", "Roots", "Live at Montreux", "Ça ira"]


def _collection() -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((COUNT, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    metadata = pd.DataFrame({
        "id": range(COUNT), "path": [f"/c/{i}.jpg" for i in range(COUNT)],
        "content_hash": [f"h{i % 50}" for i in range(COUNT)],  # ten covers share another's content
        "size": 1, "mtime_ns": 1, "genre": ["rock", "jazz"] * (COUNT // 2),
        "user:artist": [f"a{i}" for i in range(COUNT)],
    })
    texts = pd.DataFrame({
        "content_hash": [f"h{i}" for i in range(50)],
        "text": ["\n".join(rng.choice(WORDS, rng.integers(0, 3))) for _ in range(50)], "reader": "r",
    })
    return vectors, metadata, texts


def _write(folder: Path) -> store.IndexInfo:
    vectors, metadata, texts = _collection()
    rows = metadata["content_hash"].map(dict(zip(texts["content_hash"], texts["text"]))).fillna("")
    words = textsearch.model_arrays(textsearch.fit_text_vectors(list(rows)))
    index, params = build_faiss_index(vectors, "flat")
    return write_index(folder, index, metadata, vectors, {"family": "m"}, "m:1", "flat", params, texts=texts,
                       words=words)


def _as_written_before_row_texts(folder: Path) -> None:
    """The folder as sleeve wrote it before it stored row texts: no rowtext file, tables in one row group."""
    info = json.loads((folder / "index.json").read_text())
    (folder / info["files"].pop("rowtext")).unlink()
    for kind in ("metadata", "text"):
        path = folder / info["files"][kind]
        pd.read_parquet(path).to_parquet(path, index=False)
    (folder / "index.json").write_text(json.dumps(info))


def test_row_texts_are_mapped_and_equal_the_text_table(tmp_path: Path) -> None:
    _write(tmp_path)
    loaded = load_index(tmp_path)
    by_hash = dict(zip(loaded.texts["content_hash"], loaded.texts["text"]))
    expected = [by_hash[h] for h in loaded.metadata["content_hash"]]
    assert loaded.row_texts is not None and list(loaded.row_texts) == expected
    assert isinstance(loaded.row_texts.blob.base, np.memmap)
    assert list(loaded.row_texts[np.array([5, 0, 5])]) == [expected[5], expected[0], expected[5]]
    assert loaded.row_texts[-1] == expected[-1]
    with pytest.raises(IndexError):
        loaded.row_texts[COUNT]


def test_table_rows_read_only_their_row_groups_and_equal_the_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "ROW_GROUP_ROWS", 7)
    info = _write(tmp_path)
    assert pq.ParquetFile(tmp_path / info.files["metadata"]).num_row_groups == 9
    loaded = load_index(tmp_path)
    rows = np.array([59, 3, 3, 20, 0, 41])
    shown = loaded.table.rows(rows)
    assert not loaded.table.decoded
    assert list(loaded.table.equals("content_hash", "h3").nonzero()[0]) == [3, 53]
    pd.testing.assert_frame_equal(shown, loaded.metadata.iloc[rows].reset_index(drop=True))
    assert loaded.table.decoded


def test_table_rows_of_some_columns_equal_those_of_the_whole_and_of_a_decoded_table(tmp_path: Path) -> None:
    _write(tmp_path)
    loaded = load_index(tmp_path)
    rows, columns = np.array([12, 3, 58]), ["path", "user:artist", "genre"]
    shown = loaded.table.rows(rows, columns=columns)
    assert list(shown.columns) == columns and not loaded.table.decoded
    expected = loaded.metadata.iloc[rows].reset_index(drop=True)[columns]
    pd.testing.assert_frame_equal(shown, expected)
    pd.testing.assert_frame_equal(loaded.table.rows(rows, columns=columns), expected)  # now from memory
    assert list(load_index(tmp_path).table.rows(np.array([], dtype=int), columns=columns).columns) == columns


def test_a_words_query_decodes_neither_the_metadata_nor_the_text_table(tmp_path: Path) -> None:
    _write(tmp_path)
    loaded = load_index(tmp_path)
    results = Recommender(loaded).search_text("peter tosh", k=5)
    assert len(results) and results["text"].str.contains("PETER TOSH").all()
    assert not loaded.table.decoded and not loaded.text_table.decoded


def test_an_index_written_before_row_texts_answers_the_same(tmp_path: Path) -> None:
    _write(tmp_path / "new")
    _write(tmp_path / "old")
    _as_written_before_row_texts(tmp_path / "old")
    new, old = Recommender(load_index(tmp_path / "new")), Recommender(load_index(tmp_path / "old"))
    assert old.index.row_texts is None and list(old.texts) == list(new.texts)
    for query in ["peter tosh", "sepultura roots", "ca ira"]:
        for genre in (None, "jazz"):
            pd.testing.assert_frame_equal(old.search_text(query, k=8, genre=genre),
                                          new.search_text(query, k=8, genre=genre))
    vector = new.index.embeddings[4]
    pd.testing.assert_frame_equal(old.similar_to_vector(vector, exclude_hash="h4"),
                                  new.similar_to_vector(vector, exclude_hash="h4"))
    assert not {"/c/4.jpg", "/c/54.jpg"} & set(new.similar_to_vector(vector, k=COUNT, exclude_hash="h4")["path"])


_ROWTEXT_DAMAGES = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:100]),
    "other rows": lambda path: write_row_texts(path, ["a", "b"]),
}


@pytest.mark.parametrize("damage", _ROWTEXT_DAMAGES)
def test_damaged_row_texts_give_one_error_that_says_how_to_repair(tmp_path: Path, damage: str) -> None:
    info = _write(tmp_path)
    _ROWTEXT_DAMAGES[damage](tmp_path / info.files["rowtext"])
    with raises_repair_error("rowtext-"):
        load_index(tmp_path)


HOSTILE = ["", "a", "a\x00", "a\x00b", " a", "A", "Ça ira", "ça ira", "caf\u00e9", "cafe\u0301", "🎶/x.jpg", "nan",
           "x" * 10_000, "/c/ü.jpg", "h3", "h3", None, "h3"]


def _tables(values: list[object]) -> list[Table]:
    """The column ``v`` as a frame in memory and as a parquet file read lazily (small row groups)."""
    frame = pd.DataFrame({"v": pd.Series(values, dtype=object)})
    handle = io.BytesIO()
    frame.to_parquet(handle, index=False, row_group_size=5)
    return [Table(frame=frame.copy()), Table(handle=handle)]


@pytest.mark.parametrize("collide", [False, True])
def test_table_rows_equal_finds_the_rows_of_the_column_compare_for_hostile_names(
    collide: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash lookup finds exactly the rows equals marks, for names that differ by a NUL, a case, a
    normalisation or nothing, and missing values; with every hash colliding, the check of the values alone
    decides."""
    if collide:
        monkeypatch.setattr(lookup, "hash_texts", lambda values: np.zeros(len(values), dtype=np.uint64))
    monkeypatch.setattr(lookup, "HASH_CHUNK_ROWS", 4)
    for table in _tables(HOSTILE):
        for value in [*{v for v in HOSTILE if v is not None}, "absent", "a\x00\x00", "\udcff.jpg"]:
            if value == "\udcff.jpg" and not table.decoded:
                continue  # the arrow column cannot compare with a name that is not UTF-8 (Recommender skips it)
            expected = np.flatnonzero(table.equals("v", value))
            assert table.rows_equal("v", value).tolist() == expected.tolist(), (table.decoded, value)
        assert table.rows_equal("v", "h3").tolist() == [14, 15, 17]
        assert table._lookups["v"] is not None


def test_a_columns_first_query_compares_and_its_second_builds_the_lookup() -> None:
    """A one-query process (the CLI) never pays for a lookup; a server builds it on its second query."""
    for table in _tables(HOSTILE):
        assert table.rows_equal("v", "h3").tolist() == [14, 15, 17] and "v" not in table._lookups
        assert table.rows_equal("v", "h3").tolist() == [14, 15, 17] and table._lookups["v"] is not None


def test_table_rows_equal_of_a_name_that_is_not_utf8_in_memory_and_of_a_column_of_numbers() -> None:
    """A frame built in memory may hold a surrogate-escaped name (found by its escaped bytes); a column of
    numbers compares as numbers (3 == 3.0), so it is compared, not hashed."""
    names = pd.Series(["\udcff.jpg", "b", "\udcff.jpg"], dtype=object)  # a str column cannot hold them
    table = Table(frame=pd.DataFrame({"v": names, "n": [3, 3.0, 4]}))
    for _ in range(2):  # compared, then looked up
        assert table.rows_equal("v", "\udcff.jpg").tolist() == [0, 2]
    assert table._lookups["v"] is not None
    assert table.rows_equal("n", 3).tolist() == [0, 1] and table.rows_equal("n", "3").tolist() == []
    assert table._lookups.get("n") is None
