"""sleeve's web app, started with ``python cli.py app --index DIR`` or ``streamlit run webapp/app.py -- --index DIR``.

This script only sets up the page and the navigation; each page is a script in ``views/``.
"""

from __future__ import annotations

import streamlit as st

from webapp.resources import AppIndexError, recommender

st.set_page_config(page_title="sleeve", layout="wide")  # the default icon: no font is fetched from the net

try:
    has_text = recommender().recommender.has_text
except AppIndexError:
    has_text = False  # every page then says what is wrong with the index and how to build one

# No page icons: Streamlit fetches Material icons from fonts.gstatic.com, and sleeve runs offline.
pages = [
    st.Page("views/lookalikes.py", title="Look-alikes", default=True),
    st.Page("views/genre.py", title="Genre"),
    *([st.Page("views/words.py", title="Search by words")] if has_text else []),
    st.Page("views/map.py", title="Map"),
    st.Page("views/collection.py", title="Collection"),
    st.Page("views/editions.py", title="Editions"),
]
st.navigation(pages).run()
