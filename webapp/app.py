"""sleeve's web app, started with ``python cli.py app --index DIR`` or ``streamlit run webapp/app.py -- --index DIR``.

This script only sets up the page and the navigation; each page is a script in ``views/``.
"""

from __future__ import annotations

import streamlit as st

from webapp.resources import AppIndexError, recommender

st.set_page_config(page_title="sleeve", page_icon=":material/album:", layout="wide")

try:
    has_text = bool(getattr(recommender().recommender, "has_text", False))
except AppIndexError:
    has_text = False  # every page then says what is wrong with the index and how to build one

pages = [
    st.Page("views/lookalikes.py", title="Look-alikes", icon=":material/image_search:", default=True),
    st.Page("views/genre.py", title="Genre", icon=":material/label:"),
    *([st.Page("views/words.py", title="Search by words", icon=":material/search:")] if has_text else []),
    st.Page("views/map.py", title="Map", icon=":material/scatter_plot:"),
    st.Page("views/collection.py", title="Collection", icon=":material/inventory_2:"),
]
st.navigation(pages).run()
