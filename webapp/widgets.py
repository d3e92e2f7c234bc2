"""Pieces the pages share: the index (or a message saying how to build one), the cover picker and the
result grid whose buttons make a result the next query."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from index.store import shown_columns
from recsys.images import BadImageError, load_cover
from webapp import query as session_query
from webapp.resources import AppIndexError, Shared, recommender

SLEEVE_COLUMNS = ["rank", "score", "genre", "path", "match", "text", "relative", "matched"]
"""Columns of a result frame that sleeve adds; the others are the manifest's own (shown as metadata)."""
ANY = "any"
MAX_CHOICES = 500
"""A metadata column with more distinct values than this is filtered by typing a value instead of choosing one."""
GRID_COLUMNS = 5
THUMBNAIL_PX = 200
SHOW_LOOKALIKES = "show-lookalikes"
PICKER_CHOICES = 200
"""Covers listed at once by the path search (type more of the path to narrow it)."""


def shared_index() -> Shared:
    """The loaded index, or an error box saying how to build one, and the page stops there."""
    try:
        return recommender()
    except AppIndexError as error:
        st.error(str(error))
        st.stop()
        raise  # st.stop() does not return; this keeps type checkers informed


@st.cache_data(max_entries=4096, show_spinner=False)
def thumbnail(path: str) -> bytes | None:
    """A small JPEG of an indexed cover, or None when the file cannot be read any more (moved, deleted)."""
    try:
        image = load_cover(path, reduce_to=THUMBNAIL_PX)
    except BadImageError:
        return None
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def show_cover(path: str, caption: str | None = None) -> None:
    data = thumbnail(path)
    if data is None:
        st.warning(f"{Path(path).name} cannot be read any more")
    else:
        st.image(data, caption=caption, width="stretch")


def _take_upload(key: str) -> None:
    """Widget callback: a valid upload becomes the query; a bad one leaves a message (on this page) and no query."""
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        limit = int(st.get_option("server.maxUploadSize"))
        session_query.use(session_query.check_upload(upload.name, upload.getvalue(), limit))
    except BadImageError as error:
        session_query.refuse(key, f"{upload.name} cannot be used: {error}")


def _take_pick(key: str) -> None:
    if st.session_state.get(key) is not None:
        session_query.use_indexed(st.session_state[key])


def _pick_random() -> None:
    paths = recommender().recommender.index.metadata["path"]
    session_query.use_indexed(str(paths.iloc[random.randrange(len(paths))]))


def cover_picker(shared: Shared, page: str) -> session_query.Query | None:
    """Upload a cover or pick an indexed one (only the index's own paths are offered); the session's query."""
    paths = shared.recommender.index.metadata["path"].astype(str)
    upload_tab, pick_tab = st.tabs(["Upload a cover", "Pick from the collection"])
    with upload_tab:
        key = f"upload-{page}"
        st.file_uploader(
            "A cover image (JPEG, PNG, WebP or GIF)",
            type=session_query.COVER_TYPES,
            key=key,
            on_change=_take_upload,
            args=(key,),
        )
    with pick_tab:
        search, pick, lucky = st.columns([2, 3, 1], vertical_alignment="bottom")
        term = search.text_input("Path contains", key=f"term-{page}", placeholder="e.g. rock/R-10")
        matches = paths[paths.str.contains(term, case=False, regex=False)] if term else paths
        pick.selectbox(
            f"{len(matches):,} matching covers"
            + (f" (first {PICKER_CHOICES})" if len(matches) > PICKER_CHOICES else ""),
            matches.head(PICKER_CHOICES).tolist(),
            index=None,
            key=f"pick-{page}",
            placeholder="Choose a cover",
            on_change=_take_pick,
            args=(f"pick-{page}",),
        )
        lucky.button("Random cover", key=f"random-{page}", on_click=_pick_random)
    if (problem := session_query.refusal(key)) is not None:
        st.error(problem)
    return session_query.current()


@st.cache_data(show_spinner=False)
def _filter_choices(folder: str, created: str) -> dict[str, list[str] | None]:
    """Per manifest column, its distinct values to choose from (None: too many, type one instead)."""
    metadata = recommender().recommender.index.metadata
    choices: dict[str, list[str] | None] = {}
    for shown, stored in shown_columns(metadata).items():
        if shown == "path":
            continue  # the cover picker searches paths
        distinct = metadata[stored].dropna().astype(str).str.strip().unique()
        choices[shown] = sorted(distinct) if len(distinct) <= MAX_CHOICES else None
    return choices


def filters(shared: Shared, page: str) -> tuple[str | None, dict[str, str]]:
    """(genre, {column: value}) chosen in the page: a genre, and any of the manifest's columns."""
    info = shared.recommender.index.info
    choices = _filter_choices(str(shared.recommender.index.folder), info.created)
    genre = st.selectbox("Genre", [ANY, *(choices.get("genre") or [])], key=f"genre-{page}")
    where: dict[str, str] = {}
    columns = [column for column in choices if column != "genre"]
    if columns:
        with st.expander("Filter by metadata"):
            for column in columns:
                if choices[column] is None:
                    value = st.text_input(column, key=f"where-{page}-{column}", placeholder="exact value, any case")
                else:
                    value = st.selectbox(column, [ANY, *choices[column]], key=f"where-{page}-{column}")
                if value and value != ANY:
                    where[column] = value
    return (None if genre == ANY else genre), where


def query_page(title: str, page: str, hint: str) -> tuple[Shared, session_query.Query]:
    """The start of a page about one cover: title, picker, and the session's query (the page stops with
    ``hint`` until there is one)."""
    shared = shared_index()
    st.title(title)
    query = cover_picker(shared, page)
    if query is None:
        st.info(hint)
        st.stop()
    return shared, query


def show_query(query: session_query.Query) -> None:
    if query.data is not None:
        st.image(query.data, caption=f"{query.name} (uploaded)", width="stretch")
    else:
        show_cover(str(query.path), caption=query.name)


def metadata_line(row: dict[str, Any]) -> str:
    """The manifest's own columns of a result, one 'column: value' line each (blank values left out)."""
    pairs = [f"{column}: {value}" for column, value in row.items() if column not in SLEEVE_COLUMNS and pd.notna(value)]
    return "  \n".join(pairs)


def _query_from_result(path: str, show_lookalikes: bool) -> None:
    session_query.use_indexed(path)
    st.session_state[SHOW_LOOKALIKES] = show_lookalikes


def highlighted(text: str, words: list[str]) -> str:
    """The cover's text on one line, with the words it shares with the query in bold."""
    line = " / ".join(line for line in str(text).splitlines() if line.strip())
    if not words:
        return line
    pattern = re.compile("|".join(re.escape(word) for word in sorted(words, key=len, reverse=True)))
    return pattern.sub(lambda found: f"**{found.group(0)}**", line)


def result_grid(results: pd.DataFrame, page: str) -> None:
    """Covers in rows of five with rank, score, genre and metadata; each button makes that cover the query
    (and, from another page, opens the look-alikes page for it)."""
    rows = results.to_dict(orient="records")
    for start in range(0, len(rows), GRID_COLUMNS):
        for column, row in zip(st.columns(GRID_COLUMNS), rows[start : start + GRID_COLUMNS], strict=False):
            with column, st.container(border=True):
                show_cover(row["path"])
                match = f" · by {row['match']}" if "match" in row else ""
                shown_score = f"{row['relative']:.0%}" if "relative" in row else f"{row['score']:.3f}"
                st.markdown(
                    f"**#{row['rank']}** · {shown_score} · {row['genre'] or 'no genre'}{match}",
                    help=f"score {row['score']:.4f}" + (" (the percentage: its share of the best result's)"
                                                        if "relative" in row else ""),
                )
                if "relative" in row:
                    st.progress(float(row["relative"]))
                if row.get("text"):
                    st.markdown(f"*{highlighted(row['text'], row.get('matched') or [])}*")
                st.caption("  \n".join(filter(None, [metadata_line(row), Path(row["path"]).name])))
                st.button(
                    "More like this",
                    key=f"{page}-more-{row['rank']}",
                    on_click=_query_from_result,
                    args=(row["path"], page != "lookalikes"),
                    width="stretch",
                )
