"""--where names columns as results show them: sleeve's genre and path, the manifest's columns by their
shown names (user:NAME where sleeve uses NAME itself)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from index.store import RESERVED_NAMES, USER_PREFIX, shown_columns
from recsys.errors import QueryError
from recsys.filters import row_mask

ROWS = 5


def _metadata() -> pd.DataFrame:
    """Sleeve's fields, then a manifest column of every reserved name whose values run the other way."""
    sleeve = {
        "id": range(ROWS), "path": [f"/c/{i}.jpg" for i in range(ROWS)], "content_hash": [f"h{i}" for i in range(ROWS)],
        "size": range(ROWS), "mtime_ns": range(ROWS), "genre": ["rock", "jazz", "rock", "jazz", "pop"],
    }
    manifest = {USER_PREFIX + name: [f"{name}-{ROWS - 1 - i}" for i in range(ROWS)] for name in sorted(RESERVED_NAMES)}
    return pd.DataFrame({**sleeve, **manifest, "user:artist": list("abcde")})


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_user_name_filters_the_manifests_column_of_a_reserved_name(name: str) -> None:
    mask = row_mask(_metadata(), where={f"user:{name}": f"{name.upper()}-3"})
    assert np.flatnonzero(mask).tolist() == [1], "the manifest's value, case aside"


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES - {"genre", "path"}))
def test_a_reserved_name_is_refused_and_the_message_names_the_manifests_column(name: str) -> None:
    with pytest.raises(QueryError) as caught:
        row_mask(_metadata(), where={name: "3"})
    message = str(caught.value)
    assert f"--where user:{name}=VALUE" in message and "\n" not in message, message


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES - {"genre", "path"}))
def test_a_reserved_name_without_a_manifest_column_is_no_column(name: str) -> None:
    metadata = _metadata().drop(columns=[f"user:{name}"])
    with pytest.raises(QueryError, match=f"no column '{name}' to filter on"):
        row_mask(metadata, where={name: "3"})


def test_genre_and_path_filter_sleeves_own_fields_as_results_show_them() -> None:
    metadata = _metadata()
    assert np.flatnonzero(row_mask(metadata, where={"genre": "JAZZ"})).tolist() == [1, 3]
    assert np.flatnonzero(row_mask(metadata, where={"path": "/c/4.jpg"})).tolist() == [4]
    assert np.flatnonzero(row_mask(metadata, where={"user:genre": "genre-4"})).tolist() == [0]
    assert np.flatnonzero(row_mask(metadata, where={"artist": "C"})).tolist() == [2]


def test_every_filter_name_is_a_result_column_name() -> None:
    shown = shown_columns(_metadata())
    assert list(shown)[:2] == ["genre", "path"] and shown["user:id"] == "user:id" and shown["artist"] == "user:artist"
    assert not set(shown) & (RESERVED_NAMES - {"genre", "path"})
