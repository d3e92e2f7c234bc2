"""Look-alikes: the covers most similar to an uploaded or picked cover; a result's button makes it the query."""

from __future__ import annotations

import time

import streamlit as st

from recsys import SleeveError
from recsys.answer import QueryAnswerer
from webapp import query as session_query
from webapp.widgets import filters, query_page, result_grid, show_query

MATCH_BY = {"both": "look and words", "look": "look", "words": "words"}

shared, query = query_page(
    "Look-alikes", "lookalikes",
    "Upload a cover, or pick one from the collection, to see the covers that look most like it.",
)

left, right = st.columns([1, 4])
with left:
    show_query(query)
    k = st.slider("How many", 1, 50, 10, key="k")
    by = "look"
    if shared.recommender.has_text:
        by = st.radio("Match by", list(MATCH_BY), format_func=MATCH_BY.get, key="by",
                      help="Words: the text printed on the covers, read by OCR when the index was built.")
    genre, where = filters(shared, "lookalikes")

started = time.perf_counter()
with session_query.cover_file(query) as path:
    try:
        with shared.lock:
            answer = QueryAnswerer(shared.recommender).answer(
                path, k=k, genre=genre, by=by, where=where or None, explain=True
            )
    except SleeveError as error:
        right.error(session_query.error_text(error, query, path))
        st.stop()
results = answer.results
with right:
    st.caption(f"{len(results)} look-alikes of {query.name} in {(time.perf_counter() - started) * 1000:.0f} ms")
    if results.empty:
        st.info("No covers match: change the filters" + (" or match by look" if by == "words" else "") + ".")
    result_grid(results, "lookalikes")
