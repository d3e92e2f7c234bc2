"""The shown columns stored row-addressable (index.shown): the rows a query shows come from the mapped file without
decoding the metadata table, equal to what the table gives; an index without the file still opens and answers the
same; a damaged file is one error that says how to repair it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from index import store
from index.faiss_index import build_faiss_index
from index.store import IndexInfo, load_index, write_index
from recsys import textsearch
from recsys.memory_index import index_vectors
from recsys.recommend import Recommender
from tests.bad_inputs import raises_repair_error, rewrite_shown, text_offsets_out_of_order

COUNT = 50
WORDS = ["PETER TOSH", "SEPULTURA", "Sonny Rollins", "Bush Doctor", "Roots", "Ça ira"]


def _write(folder: Path, row_group_rows: int = 7) -> IndexInfo:
    """An index with text and two manifest columns (one with missing values), its tables in row groups of
    ``row_group_rows`` so that the shown rows of a query lie in several."""
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((COUNT, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    metadata = pd.DataFrame({
        "id": range(COUNT), "path": [f"/c/{i}.jpg" for i in range(COUNT)],
        "content_hash": [f"h{i}" for i in range(COUNT)], "size": 1, "mtime_ns": 1,
        "genre": ["rock", "jazz", None, "reggae"] * (COUNT // 4) + ["rock"] * (COUNT % 4),
        "user:artist": [f"Artist é{i % 9}" for i in range(COUNT)],
        "user:year": [None if i % 5 == 0 else str(1960 + i) for i in range(COUNT)],
    })
    texts = pd.DataFrame({
        "content_hash": metadata["content_hash"],
        "text": ["\n".join(rng.choice(WORDS, rng.integers(0, 3))) for _ in range(COUNT)], "reader": "r",
    })
    words = textsearch.model_arrays(textsearch.fit_text_vectors(list(texts["text"])))
    index, params = build_faiss_index(vectors, "flat")
    old = store.ROW_GROUP_ROWS
    store.ROW_GROUP_ROWS = row_group_rows
    try:
        return write_index(folder, index, metadata, vectors, {"family": "m"}, "m:1", "flat", params, texts=texts,
                           words=words)
    finally:
        store.ROW_GROUP_ROWS = old


def _without_shown_rows(folder: Path) -> None:
    """The folder as an index written before sleeve stored its shown rows."""
    info = json.loads((folder / "index.json").read_text())
    (folder / info["files"].pop("shown")).unlink()
    (folder / "index.json").write_text(json.dumps(info))


def _no_row_group_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a row group of the metadata was decoded")

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read", refuse)


def test_shown_rows_come_from_the_mapped_file_and_equal_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = _write(tmp_path)
    assert info.files["shown"].startswith("shown-") and info.files["shown"].endswith(".arrow")
    whole = load_index(tmp_path).metadata
    loaded = load_index(tmp_path)
    columns = ["genre", "path", "user:artist", "user:year"]
    assert loaded.table.columns == list(whole.columns)
    rows = np.array([49, 3, 3, 20, 0, 41, 10])
    _no_row_group_decoded(monkeypatch)
    for asked in (columns, ["path", "user:year"], ["user:artist"]):
        pd.testing.assert_frame_equal(loaded.table.rows(rows, columns=asked),
                                      whole.iloc[rows].reset_index(drop=True)[asked])
    empty = loaded.table.rows(np.array([], dtype=int), columns=columns)
    assert list(empty.columns) == columns and len(empty) == 0
    assert not loaded.table.decoded
    assert all(loaded.table._shown._plain.values())  # converted column by column: plain dtypes only


def test_a_query_shows_its_rows_without_decoding_the_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path)
    recommender = Recommender(load_index(tmp_path))
    _no_row_group_decoded(monkeypatch)
    found = recommender.search_text("peter tosh", k=5)
    assert len(found) and list(found.columns[:4]) == ["rank", "score", "genre", "path"]
    assert {"artist", "year"} <= set(found.columns)


def test_an_index_without_shown_rows_opens_and_answers_the_same(tmp_path: Path) -> None:
    _write(tmp_path / "new")
    _write(tmp_path / "old")
    _without_shown_rows(tmp_path / "old")
    new, old = Recommender(load_index(tmp_path / "new")), Recommender(load_index(tmp_path / "old"))
    assert "shown" not in old.index.info.files
    for query in ["peter tosh", "sepultura roots", "ca ira"]:
        for genre in (None, "jazz"):
            pd.testing.assert_frame_equal(old.search_text(query, k=8, genre=genre),
                                          new.search_text(query, k=8, genre=genre))
    for row in (4, 17):
        vector = new.index.embeddings[row]
        pd.testing.assert_frame_equal(old.similar_to_vector(vector, k=COUNT, exclude_hash=f"h{row}"),
                                      new.similar_to_vector(vector, k=COUNT, exclude_hash=f"h{row}"))


def test_manifest_columns_of_any_type_read_back_as_the_table_gives_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = np.eye(6, 4, dtype=np.float32) + 0.1
    metadata = pd.DataFrame({
        "path": [f"/c/{i}.jpg" for i in range(6)], "genre": ["a", None, "b", "a", "c", "b"],
        "plays": [3, 1, 4, 1, 5, 9], "rating": [0.5, np.nan, 1.5, 2.0, 2.5, 3.0],
        "live": [True, False, True, True, False, False],
        "label": pd.array(["x", None, "y", "z", "x", None], dtype="string"),
    })
    index_vectors(vectors, metadata, index_type="flat").save(tmp_path)
    whole, loaded = load_index(tmp_path).metadata, load_index(tmp_path)
    columns = ["genre", "path", "user:plays", "user:rating", "user:live", "user:label"]
    rows = np.array([5, 1, 0, 1])
    _no_row_group_decoded(monkeypatch)
    pd.testing.assert_frame_equal(loaded.table.rows(rows, columns=columns),
                                  whole.iloc[rows].reset_index(drop=True)[columns])
    # the nullable "string" column only the pandas metadata restores: these columns convert whole, the others
    # column by column, each frame as the table's own
    plain = ["genre", "path", "user:plays", "user:rating", "user:live"]
    pd.testing.assert_frame_equal(loaded.table.rows(rows, columns=plain),
                                  whole.iloc[rows].reset_index(drop=True)[plain])
    assert sorted(loaded.table._shown._plain.values()) == [False, True]


def test_the_shown_file_switches_with_the_generation(tmp_path: Path) -> None:
    first = _write(tmp_path)
    second = _write(tmp_path)
    assert [p.name for p in tmp_path.glob("shown-*.arrow")] == [second.files["shown"]] != [first.files["shown"]]


_SHOWN_DAMAGES = {
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:100]),
    "empty": lambda path: path.write_bytes(b""),
    "other rows": lambda path: rewrite_shown(path, lambda table: table.slice(0, 3)),
    "other columns": lambda path: rewrite_shown(path, lambda table: table.drop_columns("user:year")),
    "offsets out of order": lambda path: rewrite_shown(path, lambda table: text_offsets_out_of_order(table, "path")),
}


@pytest.mark.parametrize("damage", _SHOWN_DAMAGES)
def test_a_damaged_shown_file_gives_one_error_that_says_how_to_repair(tmp_path: Path, damage: str) -> None:
    info = _write(tmp_path)
    _SHOWN_DAMAGES[damage](tmp_path / info.files["shown"])
    with raises_repair_error("shown-"):
        load_index(tmp_path)


def test_text_that_is_not_utf8_is_one_error_when_its_row_is_shown(tmp_path: Path) -> None:
    info = _write(tmp_path)

    def garble(table: pa.Table) -> pa.Table:
        paths = table.column("path").combine_chunks()
        validity, offsets, data = paths.buffers()
        broken = bytearray(data.to_pybytes())
        broken[0:2] = b"\xff\xfe"  # the first row's path
        garbled = pa.Array.from_buffers(paths.type, len(paths), [validity, offsets, pa.py_buffer(bytes(broken))])
        return table.set_column(table.schema.get_field_index("path"), table.schema.field("path"), garbled)

    rewrite_shown(tmp_path / info.files["shown"], garble)
    loaded = load_index(tmp_path)
    assert loaded.table.rows(np.array([1, 2]), columns=["path"])["path"].tolist() == ["/c/1.jpg", "/c/2.jpg"]
    with raises_repair_error("shown-"):
        loaded.table.rows(np.array([2, 0]), columns=["path"])
