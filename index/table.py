"""A table of an index folder (its metadata, its cover texts), read from its parquet file only as far as asked.

A query that shows ten covers needs ten rows, and one that leaves the query cover out of its results needs one
column compared with one value; reading the whole table for them made a query process grow with the collection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import IO

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute
import pyarrow.parquet

from index.lookup import TextRows, holds_text, text_chunks
from index.shown import ShownRows, ShownRowsError

ROW_GROUP_ROWS = 8_192
"""Rows per parquet row group of the tables sleeve writes: showing k covers decodes at most k groups of this many
rows. A table written with larger groups (an older index) still reads, decoding more."""
TABLE_ERRORS = (OSError, ValueError, pyarrow.ArrowException)
"""What pyarrow raises for a table file it cannot read."""


class Table:
    """One table: a frame in memory, or an open parquet file decoded as asked: whole (:meth:`frame`, then kept),
    one column compared with a value (:meth:`equals`) or some rows (:meth:`rows`). ``renamed`` maps stored column
    names to the names the table is read under; ``damaged`` makes the error for a file that fails to decode.
    ``shown`` (index.shown), where given, holds some of the file's columns row-addressable: :meth:`rows` of
    those columns takes them from there, decoding no row group; ``shown_damaged`` makes its error."""

    def __init__(
        self,
        frame: pd.DataFrame | None = None,
        handle: IO[bytes] | None = None,
        renamed: dict[str, str] | None = None,
        damaged: Callable[[str], Exception] | None = None,
        shown: ShownRows | None = None,
        shown_damaged: Callable[[str], Exception] | None = None,
    ) -> None:
        self._frame, self._handle = frame, handle
        self._shown, self._shown_damaged = shown, shown_damaged or ValueError
        self._renamed = renamed or {}
        self._damaged = damaged or ValueError
        self._lock = threading.Lock()  # one file position, shared by the threads of a server
        self._lookups: dict[str, TextRows | None] = {}  # per column; None: not text, compared instead
        self._compared: set[str] = set()  # columns asked once: a lookup is built on a column's second query
        self._lookups_lock = threading.Lock()
        self._file: pyarrow.parquet.ParquetFile | None = None
        if frame is None:
            try:
                self._file = pyarrow.parquet.ParquetFile(handle)
            except TABLE_ERRORS as error:
                raise self._damaged(f"unreadable table: {_first_line(error)}") from None

    @property
    def count(self) -> int:
        return len(self._frame) if self._frame is not None else self._file.metadata.num_rows

    @property
    def columns(self) -> list[str]:
        """The column names, as the table is read."""
        if self._frame is not None:
            return list(self._frame.columns)
        return [self._renamed.get(name, name) for name in self._file.schema_arrow.names]

    @property
    def decoded(self) -> bool:
        """Whether the whole table is in memory (given so, or read by :meth:`frame`)."""
        return self._frame is not None

    def frame(self) -> pd.DataFrame:
        """The whole table, decoded once."""
        if self._frame is None:
            with self._lock:
                if self._frame is None:
                    self._handle.seek(0)
                    self._frame = self._decode(lambda: pd.read_parquet(self._handle)).rename(columns=self._renamed)
        return self._frame

    def equals(self, column: str, value: object) -> np.ndarray:
        """A mask of the rows whose ``column`` equals ``value`` (False where it is missing)."""
        if self._frame is not None:
            return (self._frame[column] == value).fillna(False).to_numpy(dtype=bool)
        stored = self._stored_name(column)
        with self._lock:
            values = self._decode(lambda: self._file.read(columns=[stored]).column(0))
        found = pyarrow.compute.equal(values, pyarrow.scalar(value, values.type)).fill_null(False)
        return found.to_numpy(zero_copy_only=False).astype(bool, copy=False)

    def _stored_name(self, column: str) -> str:
        """The file's name of a column the table shows as ``column``."""
        return {shown: name for name, shown in self._renamed.items()}.get(column, column)

    def rows_equal(self, column: str, value: object) -> np.ndarray:
        """The rows (ascending) whose ``column`` equals ``value``: those of ``equals``, found for a text value of a
        text column by the column's hash lookup (index.lookup) and a check of their values instead of a compare
        of the whole column. The first call per column compares: a one-query process (the CLI) would pay for a
        lookup it never uses again (0.55 s against 87 ms for a compare at 1M covers, docs/scale.md)."""
        if column not in self._compared and column not in self._lookups:
            self._compared.add(column)
            return np.flatnonzero(self.equals(column, value))
        lookup = self._lookup(column) if isinstance(value, str) else None
        if lookup is None:
            return np.flatnonzero(self.equals(column, value))
        rows = lookup.candidates(value)
        if not rows.size:
            return rows
        if self._frame is not None:
            return rows[(self._frame[column].iloc[rows] == value).fillna(False).to_numpy(dtype=bool)]
        stored = self._stored_name(column)
        found = self._arrow_rows(rows, [stored]).column(0)  # Arrow, as equals compares: a frame costs more
        return rows[pyarrow.compute.equal(found, value).fill_null(False).to_numpy(zero_copy_only=False)]

    def _lookup(self, column: str) -> TextRows | None:
        if column not in self._lookups:
            with self._lookups_lock:
                if column not in self._lookups:
                    self._lookups[column] = self._build_lookup(column)
        return self._lookups[column]

    def _build_lookup(self, column: str) -> TextRows | None:
        if self._frame is not None:
            values = self._frame[column]
            return TextRows(text_chunks(values), len(values)) if holds_text(values) else None
        stored = self._stored_name(column)
        kind = self._file.schema_arrow.field(stored).type
        if not (pyarrow.types.is_string(kind) or pyarrow.types.is_large_string(kind)):
            return None
        groups = range(self._file.metadata.num_row_groups)
        return TextRows((chunk for group in groups for chunk in text_chunks(self._row_group(group, stored))),
                        self.count)

    def _row_group(self, group: int, stored: str) -> pyarrow.ChunkedArray:
        """One row group's values of a column: a lookup's build holds one group of the column at a time."""
        with self._lock:
            return self._decode(lambda: self._file.read_row_group(group, columns=[stored]).column(0))

    def rows(self, rows: np.ndarray, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The table's ``rows`` (positions, in their order), decoding only the row groups that hold them and,
        when given, only ``columns`` (as read): the rows shown by a query are spread over most row groups, so
        the columns it leaves out (content hashes above all) are most of what it would decode."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._frame is not None:
            found = self._frame.iloc[rows].reset_index(drop=True)
            return found if columns is None else found[list(columns)]
        stored = None
        if columns is not None:
            stored = [self._stored_name(column) for column in columns]
        table = self._arrow_rows(rows, stored)
        convert = self._shown.frame if self._from_shown(stored) else pyarrow.Table.to_pandas
        return self._decode(lambda: convert(table)).rename(columns=self._renamed)

    def _from_shown(self, stored: list[str] | None) -> bool:
        """Whether the shown rows hold the ``stored`` columns (all when None: never)."""
        return stored is not None and self._shown is not None and self._shown.holds(stored)

    def _arrow_rows(self, rows: np.ndarray, stored: list[str] | None) -> pyarrow.Table:
        """The file's ``rows`` of the ``stored`` columns (all when None), from the shown rows where they hold
        them, else from the row groups that hold the rows."""
        if self._from_shown(stored):
            try:
                return self._shown.arrow_rows(rows, stored)
            except ShownRowsError as error:
                raise self._shown_damaged(str(error)) from None
        if not len(rows):
            empty = self._file.schema_arrow.empty_table()
            return empty if stored is None else empty.select(stored)
        sizes = [self._file.metadata.row_group(g).num_rows for g in range(self._file.metadata.num_row_groups)]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        group_of = np.searchsorted(starts, rows, side="right") - 1
        groups = np.unique(group_of)
        read_at = np.concatenate([[0], np.cumsum(np.asarray(sizes)[groups])])  # each group's start once read
        taken = read_at[np.searchsorted(groups, group_of)] + rows - starts[group_of]
        with self._lock:
            table = self._decode(lambda: self._file.read_row_groups(groups.tolist(), columns=stored))
        return self._decode(lambda: table.take(taken))

    def _decode(self, read: Callable[[], object]) -> object:
        try:
            return read()
        except TABLE_ERRORS as error:
            raise self._damaged(f"unreadable table: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__
