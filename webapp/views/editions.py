"""Editions: groups of covers that are one release, side by side, each with a button to dismiss it."""

from __future__ import annotations

import streamlit as st

from recsys import SleeveError
from recsys.editions import dismiss, without_dismissed
from webapp.resources import Shared
from webapp.widgets import GRID_COLUMNS, shared_index, show_cover

GROUPS_SHOWN = 20
"""Groups on the page at once (a collection of thousands of covers has hundreds)."""


def _dismiss(shared: Shared, number: int) -> None:
    """Button callback: remember the group as not one release, in the index folder."""
    try:
        with shared.lock:
            dismiss(shared.recommender.index, shared.recommender.editions, number)
    except (SleeveError, OSError) as error:
        st.session_state["editions-problem"] = f"group {number} could not be dismissed: {error}"


shared = shared_index()
st.title("Editions")
with st.spinner("Finding the covers that are one release (once per index)…"), shared.lock:
    groups = shared.recommender.editions
shown = without_dismissed(shared.recommender.index, groups)
if (problem := st.session_state.pop("editions-problem", None)) is not None:
    st.error(problem)
numbers = list(dict.fromkeys(shown["group"]))
st.caption(f"{len(numbers)} groups of covers that look like one release (re-scans, crops, reissues with a banner "
           "or sticker, recoloured prints). \"Not the same\" hides a group here and in collapsed recommendations.")
if not numbers:
    st.info("No editions found: every cover is a release of its own.")
    st.stop()
page = st.number_input("Page", 1, (len(numbers) - 1) // GROUPS_SHOWN + 1, 1, key="editions-page")
for number in numbers[(page - 1) * GROUPS_SHOWN : page * GROUPS_SHOWN]:
    members = shown[shown["group"] == number].to_dict(orient="records")
    with st.container(border=True):
        score = sum(member["score"] for member in members) / len(members)
        st.markdown(f"**Group {number}** · {len(members)} covers · score {score:.3f}")
        for start in range(0, len(members), GRID_COLUMNS):
            for column, member in zip(st.columns(GRID_COLUMNS), members[start : start + GRID_COLUMNS], strict=False):
                with column:
                    show_cover(str(member["path"]))
                    st.caption(f"{member['reason']} · {member['score']:.3f}  \n{member['path']}")
        st.button("Not the same", key=f"dismiss-{number}", on_click=_dismiss, args=(shared, int(number)))
