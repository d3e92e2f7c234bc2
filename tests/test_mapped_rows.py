"""index.mapped_rows: rows read with pread equal the mapping's, whatever the index; every other use is the
mapping's, and computed results are plain arrays."""

from pathlib import Path

import numpy as np
import pytest

from index.mapped_rows import MappedRows


@pytest.fixture
def mapped(tmp_path: Path) -> tuple[MappedRows, np.ndarray]:
    vectors = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32)
    path = tmp_path / "rows.npy"
    np.save(path, vectors)
    with open(path, "rb") as handle:
        np.lib.format.read_magic(handle)
        np.lib.format.read_array_header_1_0(handle)
        rows = MappedRows.open(handle, np.float32, handle.tell(), vectors.shape)
    return rows, vectors


@pytest.mark.parametrize("key", [[3, 1, 49, 3], [0], [], [-1, -50, 10], list(range(50))])
def test_rows_taken_by_an_integer_array_equal_the_arrays(mapped: tuple[MappedRows, np.ndarray], key: list[int]) -> None:
    rows, vectors = mapped
    for dtype in (np.int64, np.int32, np.uint16):
        if dtype == np.uint16 and min(key, default=0) < 0:
            continue
        taken = rows[np.array(key, dtype=dtype)]
        assert type(taken) is np.ndarray and taken.shape == (len(key), 7)
        np.testing.assert_array_equal(taken, vectors[np.array(key, dtype=np.int64)])


def test_rows_out_of_range_raise_index_error_as_numpy_does(mapped: tuple[MappedRows, np.ndarray]) -> None:
    rows, _ = mapped
    for key in ([50], [-51]):
        with pytest.raises(IndexError):
            rows[np.array(key)]


def test_the_file_may_go_while_the_rows_are_read(mapped: tuple[MappedRows, np.ndarray], tmp_path: Path) -> None:
    rows, vectors = mapped
    (tmp_path / "rows.npy").unlink()  # a newer generation replaced it: this array still reads its own
    np.testing.assert_array_equal(rows[np.array([5, 2])], vectors[[5, 2]])


def test_slices_masks_and_results_behave_as_the_mapping_and_plain_arrays(mapped: tuple[MappedRows, np.ndarray]) -> None:
    rows, vectors = mapped
    np.testing.assert_array_equal(rows[10:20], vectors[10:20])
    np.testing.assert_array_equal(rows[10:20][np.array([0, 9])], vectors[[10, 19]])  # a view reads its own rows
    mask = vectors[:, 0] > 0
    np.testing.assert_array_equal(rows[mask], vectors[mask])
    assert type(rows[mask]) is np.ndarray
    product = rows @ vectors[0]
    assert type(product) is np.ndarray and np.allclose(product, vectors @ vectors[0])
    total = rows.sum()
    assert np.isscalar(total) and np.isclose(total, vectors.sum())
    np.testing.assert_array_equal(np.asarray(rows), vectors)
