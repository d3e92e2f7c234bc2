"""Collection: what the index is, so a user knows what the other pages search."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from index.store import SKIPPED_CSV
from recsys.classify.persist import has_classifier, read_classifier_info
from webapp.widgets import shared_index

shared = shared_index()
index = shared.recommender.index
info = index.info
st.title("Collection")
st.caption(f"Index folder {index.folder}")

classifier = read_classifier_info(index.folder) if has_classifier(index.folder) else None
facts = {
    "Model": f"{info.model.get('family', info.model_key)} ({info.dim}-d vectors; key `{info.model_key}`)",
    "Index type": f"{info.index_type} {info.search_params or ''}".strip(),
    "Covers": f"{info.count:,}",
    "Built": f"{info.created.replace('T', ' ')} by sleeve {info.sleeve_version}",
    "Cover text": "held: look-alikes can match by words" if shared.recommender.has_text else "not held",
    "Genre classifier": (
        f"{classifier.title}, trained on {classifier.trained_on:,} covers ({classifier.created})"
        if classifier is not None else "none stored (make one with `python cli.py train-classifier`)"
    ),
}
st.markdown("  \n".join(f"**{name}:** {value}" for name, value in facts.items()))

st.subheader("Covers per genre")
genres = index.metadata["genre"].fillna("(no genre)").astype(str).value_counts().rename("covers")
st.bar_chart(genres, horizontal=True, height=60 + 30 * len(genres))

st.subheader("Skipped files")
skipped_csv = index.folder / SKIPPED_CSV
skipped = pd.read_csv(skipped_csv) if skipped_csv.is_file() and skipped_csv.stat().st_size else pd.DataFrame()
if skipped.empty:
    st.write("None: every file found was indexed.")
else:
    st.write(f"{len(skipped):,} files could not be indexed:")
    st.dataframe(skipped, hide_index=True)
