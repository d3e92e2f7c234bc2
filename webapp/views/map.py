"""Map: how well each genre separates and the cover map, as the analysis report draws them (hover a point to
see its cover), with each cluster's example covers."""

from __future__ import annotations

import streamlit as st

from recsys import SleeveError
from webapp.resources import cluster_report
from webapp.widgets import shared_index

shared = shared_index()
index = shared.recommender.index
st.title("Map")
try:
    drawing = f"Drawing the map of {index.info.count:,} covers (a minute or more the first time, then cached)…"
    with st.spinner(drawing):
        summary, report = cluster_report(str(index.folder), index.info.created)
except SleeveError as error:
    st.error(str(error))
    st.stop()

st.markdown(
    f"**Best to worst separated:** {', '.join(summary.ranking)}. Genre purity of the nearest neighbours "
    f"{summary.purity:.2f} (chance {summary.chance:.2f}); {summary.clusters} clusters, {summary.noise_share:.0%} "
    "of the covers between them. The report below explains each genre and cluster."
)
st.iframe(report, height="content", alt="Cluster analysis report: cover map, separability table, cluster examples")
