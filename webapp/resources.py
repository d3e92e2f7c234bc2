"""What the app loads once per server process and shares between browser sessions.

The index, its encoder, the stored classifier and the OCR reader are heavy (seconds to load, hundreds of MB),
so they live in ``st.cache_resource``. Sessions run in their own threads; one lock per shared object makes
their calls take turns, because neither PyTorch modules nor RapidOCR promise to be thread-safe.
Everything a session asked for (its query, its results) stays in that session's ``st.session_state``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from index.store import read_info
from recsys import SleeveError

INDEX_ENV = "SLEEVE_APP_INDEX"
"""Where the index folder is named when the app is not started with ``-- --index DIR`` (tests, hosting)."""


class AppIndexError(SleeveError):
    """The index folder cannot be served; the message says how to build one."""


@dataclass
class Shared:
    """A loaded Recommender and the lock its callers take turns on."""

    recommender: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


def index_dir() -> Path:
    """The index folder: ``--index`` after ``--`` on the streamlit command line, else $SLEEVE_APP_INDEX."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--index", default=os.environ.get(INDEX_ENV, "sleeve-index"))
    known, _ = parser.parse_known_args(sys.argv[1:])
    return Path(known.index).resolve()


def build_hint(folder: Path) -> str:
    return f"Build one with: `python cli.py build-index --covers FOLDER_OF_COVERS --index {folder}`"


def recommender() -> Shared:
    """The index and its encoder, loaded once per server process and reloaded when the index is rebuilt."""
    folder = index_dir()
    try:
        created = read_info(folder).created  # cheap: index.json only; a rebuilt index gets a new key
    except SleeveError as error:
        raise AppIndexError(f"{error}. {build_hint(folder)}") from None
    return _load_recommender(str(folder), created)


@st.cache_resource(show_spinner="Loading the index and its encoder…")
def _load_recommender(folder: str, created: str) -> Shared:
    from recsys import open_index

    try:
        loaded = open_index(folder)
        loaded.index.faiss_index  # noqa: B018 - read the FAISS file now, so a damaged one is reported here
    except SleeveError as error:
        raise AppIndexError(f"{error}. {build_hint(Path(folder))}") from None
    except Exception as error:  # pyarrow, numpy and FAISS report damaged files in their own ways
        raise AppIndexError(
            f"the index in {folder} is damaged ({type(error).__name__}: {error}). {build_hint(Path(folder))}"
        ) from None
    return Shared(loaded)


@st.cache_resource(show_spinner="Loading the genre classifier…")
def classifier(folder: str, created: str) -> Any | None:
    """The GenrePredictor of the classifier stored beside the index, or None when there is none."""
    from recsys.classify.predict import GenrePredictor

    return GenrePredictor.for_index(recommender().recommender)


@st.cache_resource(show_spinner="Loading the text reader (OCR)…")
def text_reader() -> tuple[Any, threading.Lock]:
    from recsys.ocr import CoverTextReader

    return CoverTextReader(), threading.Lock()


@st.cache_resource(show_spinner=False)
def cluster_report(folder: str, created: str) -> tuple[Any, Path]:
    """(analysis summary, HTML report) of the index, made once per server process by ``analysis.run.analyze``.

    The report goes to a private temporary folder; the map's layout is cached in the index folder as
    ``sleeve analyze`` caches it, so a map already drawn there is reused.
    """
    import tempfile

    from recsys import Settings, analyze

    out = Path(tempfile.mkdtemp(prefix="sleeve-map-")) / "analysis.html"
    return analyze(folder, out=out, formats=("html",), settings=Settings(progress=False)), out
