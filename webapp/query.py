"""The query cover of a session: an upload (kept in memory) or a cover of the index, never any other path.

The library reads covers from files, so an upload is written to a private temporary folder (mode 0700,
outside the collection and the index) for the length of one call and deleted right after.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from recsys.images import BadImageError, load_cover

COVER_TYPES = ["jpg", "jpeg", "png", "webp", "gif"]
QUERY_KEY = "query"
REFUSED_KEY = "refused-upload"


@dataclass(frozen=True)
class Query:
    """An uploaded cover (``data`` set) or an indexed one (``path`` set, always a path of the index)."""

    name: str
    data: bytes | None = None
    path: str | None = None


def current() -> Query | None:
    return st.session_state.get(QUERY_KEY)


def use(query: Query) -> None:
    st.session_state[QUERY_KEY] = query
    st.session_state.pop(REFUSED_KEY, None)


def use_indexed(path: str) -> None:
    """Make an indexed cover the session's query (a widget callback: result buttons, the picker)."""
    use(Query(name=Path(path).name, path=path))


def refuse(widget: str, message: str) -> None:
    """A bad upload: no query, and the reason shown beside the widget that received it."""
    st.session_state.pop(QUERY_KEY, None)
    st.session_state[REFUSED_KEY] = (widget, message)


def refusal(widget: str) -> str | None:
    refused = st.session_state.get(REFUSED_KEY)
    return refused[1] if refused is not None and refused[0] == widget else None


@contextlib.contextmanager
def cover_file(query: Query) -> Iterator[Path]:
    """A file the library can read for ``query``: the indexed file itself, or the upload in a private temp file."""
    if query.path is not None:
        yield Path(query.path)
        return
    with tempfile.TemporaryDirectory(prefix="sleeve-upload-") as folder:  # created with mode 0700
        target = Path(folder) / ("upload" + Path(query.name).suffix.lower())
        target.write_bytes(query.data or b"")
        yield target


def check_upload(name: str, data: bytes, limit_mb: int) -> Query:
    """The upload as a query if it decodes as a cover; raises BadImageError with the reason otherwise."""
    if len(data) > limit_mb * 1024 * 1024:
        raise BadImageError(f"{len(data) / 1e6:.1f} MB is over the upload limit of {limit_mb} MB")
    query = Query(name=name, data=data)
    with cover_file(query) as path:
        load_cover(path)
    return query


def error_text(error: Exception, query: Query, path: Path) -> str:
    """The library's message about a query, naming the upload rather than its temporary file."""
    return str(error).replace(str(path), query.name)
