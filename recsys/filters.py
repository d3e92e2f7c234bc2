"""Which index rows a query may return: the genre filter and metadata filters such as artist=... or year=1999."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from index.store import RESERVED_NAMES, USER_PREFIX, shown_columns
from recsys.errors import QueryError


def parse_where(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["artist=Alan Jackson", "year=1999"]`` as a dict; a pair without "=" is refused."""
    where = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column.strip():
            raise QueryError(f"--where takes COLUMN=VALUE, not {pair!r}")
        where[column.strip()] = value.strip()
    return where


def row_mask(metadata: pd.DataFrame, genre: str | None = None, where: Mapping[str, object] | None = None) -> np.ndarray:
    """True for the rows of ``metadata`` whose genre and columns equal the values asked for, compared as
    text without regard to case or surrounding spaces (so year=1999 matches an integer column too).

    Columns are named as results show them (index.store.shown_columns): ``user:id`` is the manifest's id."""
    mask = np.ones(len(metadata), dtype=bool)
    conditions = dict(where or {})
    if genre is not None:
        conditions["genre"] = genre
    columns = shown_columns(metadata)
    for column, value in conditions.items():
        stored = columns.get(column)
        if stored is None:
            raise QueryError(_unknown_column(column, list(columns)))
        values = metadata[stored].astype("string").str.strip().str.lower()
        mask &= (values == str(value).strip().lower()).fillna(False).to_numpy(dtype=bool)
    if not mask.any() and conditions:
        asked = ", ".join(f"{c}={v}" for c, v in conditions.items())
        if list(conditions) == ["genre"]:
            known = ", ".join(sorted(metadata["genre"].str.lower().dropna().unique())) or "none"
            raise QueryError(f"no covers of genre {genre!r} in this index (genres: {known})")
        raise QueryError(f"no covers in this index where {asked}")
    return mask


def _unknown_column(column: str, shown: list[str]) -> str:
    """Why ``column`` cannot be filtered on; a name sleeve keeps for itself points to the manifest's column."""
    known = ", ".join(shown)
    if column in RESERVED_NAMES and USER_PREFIX + column in shown:
        return (f"{column!r} is a name sleeve uses itself; the manifest's column of that name is "
                f"{USER_PREFIX}{column} (--where {USER_PREFIX}{column}=VALUE; columns: {known})")
    return f"no column {column!r} to filter on in this index (columns: {known})"
