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

model, kind, count, built = st.columns(4)
model.metric("Model", info.model_key.split(":")[0], help=info.model_key)
kind.metric("Index type", info.index_type)
count.metric("Covers", f"{info.count:,}")
built.metric("Built", info.created[:16].replace("T", " "), help=f"{info.created}, sleeve {info.sleeve_version}")
if getattr(shared.recommender, "has_text", False):
    st.write("The index holds the text printed on its covers: look-alikes can match by words too.")
if has_classifier(index.folder):
    stored = read_classifier_info(index.folder)
    st.write(f"Genre classifier: {stored.title}, trained on {stored.trained_on:,} covers ({stored.created}).")

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
