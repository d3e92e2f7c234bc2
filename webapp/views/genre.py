"""Genre: the most probable genres of a cover from the classifier stored beside the index, and its printed text."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recsys import SleeveError
from webapp import query as session_query
from webapp.resources import classifier, index_dir, text_reader
from webapp.widgets import query_page, show_query

shared, query = query_page(
    "Genre", "genre",
    "Upload a cover, or pick one from the collection, to see its likely genre and the text printed on it.",
)

info = shared.recommender.index.info
try:
    stored = classifier(str(shared.recommender.index.folder), info.created)
except SleeveError as error:
    stored, problem = None, str(error)
else:
    problem = (
        "No genre classifier is stored beside this index; train one with: "
        f"`python cli.py train-classifier --index {index_dir()}`"
    )

left, middle, right = st.columns([1, 2, 2])
with left:
    show_query(query)
with session_query.cover_file(query) as path:
    with middle:
        st.subheader("Likely genres")
        if stored is None:
            st.info(problem)
        else:
            classifier_info = stored.info
            try:
                with shared.lock:
                    genres = stored.top_genres(path, k=len(classifier_info.classes))
            except SleeveError as error:
                st.error(session_query.error_text(error, query, path))
            else:
                chart = pd.DataFrame(genres).set_index("genre")
                st.bar_chart(
                    chart, x_label="", y_label="probability", horizontal=True, sort="-probability",
                    height=60 + 36 * len(chart),
                )
                st.caption(f"{classifier_info.title}, trained on {classifier_info.trained_on:,} covers")
    with right:
        st.subheader("Text on the cover")
        reader, lock = text_reader()
        try:
            with lock:
                lines = reader.read(path)
        except SleeveError as error:
            st.error(session_query.error_text(error, query, path))
        else:
            if lines:
                st.dataframe(
                    pd.DataFrame({"text": [line.text for line in lines], "confidence": [line.score for line in lines]}),
                    hide_index=True,
                )
            else:
                st.write("No text found.")
            st.caption("Read by RapidOCR (recsys.ocr), lines below 0.5 confidence left out")
