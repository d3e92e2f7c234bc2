"""A memory-mapped (N, d) array whose scattered rows are read with ``pread`` instead of through the mapping.

A query gathers a few hundred to a few thousand rows spread over the whole embeddings file (re-scoring IVF-PQ
candidates, scoring `both` candidates). Through the mapping, each row's page fault maps the page cache's whole
folio around it (up to megabytes on current kernels): 2,000 rows of a 1M-cover file mapped 2.3 GB into a query
process. Read with ``preadv`` they cost their own bytes, and about as much time (docs/scale.md).
"""

from __future__ import annotations

import os
import weakref
from typing import Any

import numpy as np


class MappedRows(np.memmap):
    """``np.memmap`` of a file's (N, d) rows; ``rows[ints]`` (a 1-D integer array) reads those rows into a new
    array with one ``preadv`` per row. Slices and every other use are the mapping's, as before."""

    _fd: int | None = None
    _start: int = 0

    @classmethod
    def open(cls, handle: Any, dtype: Any, offset: int, shape: tuple[int, int]) -> MappedRows:
        """Map ``shape`` rows of ``dtype`` at ``offset`` of the open file ``handle``; a duplicate of its
        descriptor stays open for the reads as long as the array lives (the file may be renamed or deleted)."""
        mapped = np.memmap(handle, dtype=dtype, mode="r", offset=offset, shape=shape).view(cls)
        mapped._fd, mapped._start = os.dup(handle.fileno()), offset
        weakref.finalize(mapped, os.close, mapped._fd)
        return mapped

    def __array_finalize__(self, obj: Any) -> None:
        super().__array_finalize__(obj)
        self._fd = None  # a view (slice, transpose) is read through the mapping

    def __getitem__(self, key: Any) -> Any:
        if self._fd is not None and isinstance(key, np.ndarray) and key.ndim == 1 and key.dtype.kind in "iu":
            return self._read_rows(key)
        found = super().__getitem__(key)
        return found.view(np.ndarray) if isinstance(found, MappedRows) and found._mmap is None else found

    def __array_wrap__(self, arr: Any, context: Any = None, return_scalar: bool = False) -> Any:
        """A computed result is a plain array (or scalar), as np.memmap's own are."""
        if arr is self:
            return arr
        plain = np.asarray(arr).view(np.ndarray)
        return plain[()] if return_scalar else plain

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        count = self.shape[0]
        rows = rows.astype(np.int64)
        if rows.size and (rows.min() < -count or rows.max() >= count):
            raise IndexError(f"row index out of range for {count} rows")
        rows = np.where(rows < 0, rows + count, rows)
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        if not out.size:
            return out
        width = out[:1].nbytes
        buffer = memoryview(out).cast("B")
        for at, row in enumerate(rows.tolist()):
            if os.preadv(self._fd, [buffer[at * width : (at + 1) * width]], self._start + row * width) != width:
                raise OSError(f"short read of row {row} (the file shrank?)")
        return out
