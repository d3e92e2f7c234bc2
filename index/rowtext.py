"""Each index row's cover text as one UTF-8 blob and its offsets (``rowtext-<generation>.npz``, index.arrays).

The text table of an index (``text-<generation>.parquet``) holds one row per content hash; a query that read it
whole to answer for ten covers would pay for every cover's text. This file, mapped in place, lets a query decode
the texts of only the covers it scores or shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, overload

import numpy as np
import pandas as pd

from index.arrays import ArrayFileError, map_member, member_names, write_arrays

ROWTEXT_ARRAYS = ("offsets", "blob")


class RowTextsError(ArrayFileError):
    """A row-text file that cannot be read or does not fit its index."""


def texts_of_rows(content_hashes: Iterable[str], texts: pd.DataFrame) -> list[str]:
    """The cover text of each of ``content_hashes`` ("" where none was found) from ``texts`` (content_hash, text:
    one row per content hash, as the index stores it)."""
    by_hash = dict(zip(texts["content_hash"], texts["text"]))
    return [str(by_hash.get(digest, "")) for digest in content_hashes]


class RowTexts(Sequence[str]):
    """Index rows' texts read from ``offsets`` (one more than the rows) into the UTF-8 ``blob``, decoded per row
    on demand. An array of rows gives an array of texts, as indexing a numpy array of them would."""

    def __init__(self, offsets: np.ndarray, blob: np.ndarray) -> None:
        self.offsets, self.blob = offsets, blob

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @overload
    def __getitem__(self, row: int) -> str: ...

    @overload
    def __getitem__(self, row: slice) -> np.ndarray: ...

    def __getitem__(self, row: int | slice | np.ndarray) -> str | np.ndarray:  # type: ignore[override]
        if isinstance(row, (int, np.integer)):
            row = int(row) + len(self) if row < 0 else int(row)
            if not 0 <= row < len(self):
                raise IndexError(f"row {row} of {len(self)}")
            start, end = self.offsets[row], self.offsets[row + 1]
            return bytes(self.blob[start:end]).decode("utf-8", errors="replace")
        rows = np.arange(len(self))[row]
        return np.array([self[r] for r in np.ravel(rows)], dtype=object).reshape(np.shape(rows))


def row_text_arrays(texts: Iterable[str]) -> dict[str, np.ndarray]:
    """The arrays of a row-text file holding ``texts``, one per index row."""
    encoded = [str(text).encode() for text in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(data) for data in encoded], out=offsets[1:])
    return {"offsets": offsets, "blob": np.frombuffer(b"".join(encoded), dtype=np.uint8)}


def write_row_texts(path: str | Path, texts: Iterable[str]) -> None:
    """Write ``texts``, one per index row, as a row-text file."""
    write_arrays(path, row_text_arrays(texts))


def read_row_texts(handle: IO[bytes], count: int) -> RowTexts:
    """The texts of an open row-text file, mapped, checked against the index's ``count`` rows."""
    try:
        members = member_names(handle)
        if set(members) != set(ROWTEXT_ARRAYS):
            raise RowTextsError(f"holds {', '.join(sorted(members))[:80]}, not {', '.join(ROWTEXT_ARRAYS)}")
        offsets, blob = (map_member(handle, members[name]) for name in ROWTEXT_ARRAYS)
    except RowTextsError:
        raise
    except ArrayFileError as error:
        raise RowTextsError(str(error)) from None
    if offsets.dtype.kind != "i" or blob.dtype != np.uint8:
        raise RowTextsError(f"offsets of {offsets.dtype} and text of {blob.dtype}, not integers and bytes")
    if len(offsets) != count + 1:
        raise RowTextsError(f"{len(offsets) - 1} rows, expected {count}")
    if offsets[0] != 0 or offsets[-1] != len(blob) or np.any(np.diff(offsets) < 0):
        raise RowTextsError(f"row offsets do not fit the {len(blob)} bytes of text")
    return RowTexts(offsets, blob)
