"""Search by words: covers whose printed text (read by OCR when the index was built) holds the words typed."""

from __future__ import annotations

import time

import streamlit as st

from recsys import SleeveError
from webapp.widgets import SHOW_LOOKALIKES, filters, result_grid, shared_index

if st.session_state.pop(SHOW_LOOKALIKES, False):  # "More like this" under a result was clicked
    st.switch_page("views/lookalikes.py")
shared = shared_index()
st.title("Search by words")
if not shared.recommender.has_text:
    st.info("This index holds no cover text; build it with `python cli.py build-index --read-text` to search by words.")
    st.stop()

search, how_many = st.columns([4, 1], vertical_alignment="bottom")
query = search.text_input("Words on the cover", key="words-query", placeholder="an artist, a title, a label…")
k = how_many.number_input("How many", 1, 100, 20, key="words-k")
genre, where = filters(shared, "words")
if not query.strip():
    st.stop()
started = time.perf_counter()
try:
    with shared.lock:
        results = shared.recommender.search_text(query, k=int(k), genre=genre, where=where or None)
except SleeveError as error:
    st.error(str(error))
    st.stop()
carry = "1 cover carries" if len(results) == 1 else f"{len(results)} covers carry"
st.caption(f"{carry} “{query.strip()}” in {(time.perf_counter() - started) * 1000:.0f} ms")
if results.empty:
    st.info("No cover carries these words" + (" with these filters." if genre or where else "."))
result_grid(results, "words")
