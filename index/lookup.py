"""The rows of a text value in one column of a table, found by a 64-bit hash instead of a compare of the column.

A query leaves its own cover out of its results (rows of its content hash and of its path) and reads the stored
text of that content: each a compare of a column as long as the collection, a cost that grows with it (about
4 ms a query at 100,000 covers, docs/scale.md). Built once per loaded table, a sorted array of the values'
hashes answers in a binary search; the rows it finds are checked against their values, so a hash collision
costs a read, never a wrong row.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow

HASH_CHUNK_ROWS = 1 << 16
"""Values hashed at a time while building: a chunk of Python strings, not the column's, is held at once."""


def hash_texts(values: np.ndarray) -> np.ndarray:
    """Each value's 64-bit hash (pandas' SipHash of its UTF-8 bytes; None hashes too). A string that is not
    UTF-8 (a surrogate-escaped file name) hashes by its escaped bytes, so that it can be looked up as well."""
    try:
        return pd.util.hash_array(values, categorize=False)
    except UnicodeEncodeError:
        escaped = [value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value for value in values]
        return pd.util.hash_array(np.array(escaped, dtype=object), categorize=False)


class TextRows:
    """The rows of each non-missing text value of a column: hashes sorted, with their rows."""

    def __init__(self, chunks: Iterable[np.ndarray], count: int) -> None:
        """``chunks``: the column's values in row order, as object arrays of str and missing values."""
        hashes, rows, start = [], [], 0
        for chunk in chunks:
            present = np.flatnonzero(~pd.isna(chunk))
            hashes.append(hash_texts(chunk[present]))
            rows.append(present + start)
            start += len(chunk)
        if start != count:
            raise ValueError(f"the column holds {start} values for {count} rows")
        hashes_of = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
        order = np.argsort(hashes_of, kind="stable")
        self.hashes = hashes_of[order]
        self.rows = (np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64))[order].astype(
            np.int32 if count < 2**31 else np.int64)

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.rows.nbytes

    def candidates(self, value: str) -> np.ndarray:
        """The rows (ascending) whose value hashes as ``value`` does: every row equal to it, and any collision."""
        key = hash_texts(np.array([value], dtype=object))[0]
        start, stop = np.searchsorted(self.hashes, key, side="left"), np.searchsorted(self.hashes, key, side="right")
        return np.sort(self.rows[start:stop].astype(np.int64))


def text_chunks(values: pd.Series | pyarrow.ChunkedArray) -> Iterable[np.ndarray]:
    """A frame's or an Arrow column as TextRows reads it, HASH_CHUNK_ROWS values at a time."""
    for start in range(0, len(values), HASH_CHUNK_ROWS):
        if isinstance(values, pd.Series):
            yield values.iloc[start:start + HASH_CHUNK_ROWS].to_numpy(dtype=object)
        else:
            yield values.slice(start, HASH_CHUNK_ROWS).to_numpy()


def holds_text(values: pd.Series) -> bool:
    """Whether a column's values are all text or missing: only then is equality the equality of UTF-8 bytes
    that the hash sees (3 == 3.0 in a column of numbers, with different hashes)."""
    return pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")
