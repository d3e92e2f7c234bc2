"""The columns a result shows (genre, path, the manifest's own) of every index row, in an uncompressed Arrow IPC
file (``shown-<generation>.arrow``) mapped in place.

The ten covers a query shows lie in most row groups of the metadata table, so reading them from its parquet file
decodes those columns of most of the collection; from this file a query copies ten rows' values. The file holds
the columns as the metadata table reads them back (same Arrow types, same pandas metadata), so the frame of some
rows is the one the table would give.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.ipc
import pyarrow.parquet

SHOWN_BATCH_ROWS = 1 << 20
"""Rows per record batch: a take over one batch is several times quicker than over a parquet file's many row
groups, and a column of a batch stays far below the 2 GB that 32-bit string offsets can address."""
_OFFSET_TYPES = {
    pyarrow.string(): np.int32, pyarrow.binary(): np.int32,
    pyarrow.large_string(): np.int64, pyarrow.large_binary(): np.int64,
}
"""Column types whose values are offsets into bytes: checked at load with numpy (the offsets only); any other type
is checked by Arrow's full validation."""


class ShownRowsError(ValueError):
    """A shown-rows file that cannot be read or does not fit its index."""


def write_shown_rows(path: str | Path, metadata_file: str | Path, columns: Sequence[str]) -> None:
    """Write ``columns`` of the parquet ``metadata_file`` (as written, so as it reads back) to ``path``, read in
    batches so that a build holds one batch of them."""
    source = pyarrow.parquet.ParquetFile(metadata_file)
    whole = source.schema_arrow
    schema = pyarrow.schema([whole.field(name) for name in columns], metadata=whole.metadata)
    with pyarrow.OSFile(str(path), "wb") as sink, pyarrow.ipc.new_file(sink, schema) as writer:
        for batch in source.iter_batches(batch_size=SHOWN_BATCH_ROWS, columns=list(columns)):
            writer.write_batch(pyarrow.RecordBatch.from_arrays(batch.columns, schema=schema))


class ShownRows:
    """The mapped columns of a shown-rows file; :meth:`rows` copies the values of some rows."""

    def __init__(self, table: pyarrow.Table) -> None:
        self.table = table
        self._plain: dict[tuple[str, ...], bool] = {}

    @property
    def columns(self) -> list[str]:
        return self.table.column_names

    def holds(self, columns: Sequence[str]) -> bool:
        return set(columns) <= set(self.table.column_names)

    def rows(self, rows: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
        """``columns`` of ``rows`` (positions, in their order). Their text is checked as UTF-8 here, for the
        few rows taken, rather than every row's at load."""
        return self.frame(self.arrow_rows(rows, columns))

    def frame(self, taken: pyarrow.Table) -> pd.DataFrame:
        """Some rows of this file (:meth:`arrow_rows`) as pandas, as ``taken.to_pandas()`` gives them: converted
        column by column where that gives the same dtypes (checked once per set of columns, on no rows), which
        skips rebuilding the frame from the pandas metadata: 0.3 ms instead of 0.9 for a query's ten rows at 1M
        covers. A column whose stored pandas type only the metadata restores (a nullable "string") goes the
        whole way."""
        names = tuple(taken.column_names)
        if names not in self._plain:
            empty = taken.slice(0, 0)
            whole = empty.to_pandas().dtypes.tolist()
            self._plain[names] = whole == [column.to_pandas().dtype for column in empty.columns]
        if not self._plain[names]:
            return taken.to_pandas()
        return pd.DataFrame({name: column.to_pandas().array for name, column in zip(names, taken.columns)})

    def arrow_rows(self, rows: np.ndarray, columns: Sequence[str]) -> pyarrow.Table:
        """:meth:`rows` as Arrow, for a caller that only compares their values."""
        taken = self.table.select(list(columns)).take(pyarrow.array(rows, type=pyarrow.int64()))
        try:
            taken.validate(full=True)
        except pyarrow.ArrowException as error:
            raise ShownRowsError(f"rows that do not decode ({_first_line(error)})") from None
        return taken


def read_shown_rows(handle: IO[bytes], count: int) -> ShownRows:
    """The columns of an open shown-rows file, mapped, checked against the index's ``count`` rows: its layout
    (each buffer as long as its rows need) and every offset into text, so that taking any row reads inside the
    file."""
    try:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        table = pyarrow.ipc.open_file(pyarrow.BufferReader(pyarrow.py_buffer(mapped))).read_all()
        table.validate()
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        raise ShownRowsError(f"not an Arrow file of rows ({_first_line(error)})") from None
    if table.num_rows != count:
        raise ShownRowsError(f"{table.num_rows} rows, expected {count}")
    for name, column in zip(table.column_names, table.columns):
        for chunk in column.chunks:
            problem = _offsets_problem(chunk)
            if problem:
                raise ShownRowsError(f"column {name!r}: {problem}")
    return ShownRows(table)


def _offsets_problem(values: pyarrow.Array) -> str | None:
    """What is wrong with the offsets of a column of text or bytes (None when they fit); a column of any other
    type is validated whole by Arrow."""
    kind = _OFFSET_TYPES.get(values.type)
    if kind is None:
        try:
            values.validate(full=True)
        except pyarrow.ArrowException as error:
            return _first_line(error)
        return None
    _, offsets_buffer, data = values.buffers()
    if offsets_buffer is None:
        return None if len(values) == 0 else "no value offsets"
    offsets = np.frombuffer(offsets_buffer, dtype=kind)[values.offset : values.offset + len(values) + 1]
    size = 0 if data is None else data.size
    if len(offsets) and (offsets[0] < 0 or offsets[-1] > size or np.any(offsets[1:] < offsets[:-1])):
        return f"value offsets do not fit its {size} bytes"
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__
