"""Compare covers by the words printed on them, robust to OCR errors: character n-grams of normalised text.

OCR drops spaces and confuses letters ("ALANIACKSON" for "ALAN JACKSON"), so words are compared by their
character 3-grams, taken with the spaces removed so that a lost space costs nothing, and weighted by TF-IDF
over the collection so that "records" or "stereo" count less than a name. OCR also splits a name over two
lines ("ALAN" / "JACKSON"), so each pair of adjacent lines counts as one more line. Plain functions over arrays.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

NGRAM = (3, 3)
MIN_LINE_CHARS = 4
"""Printed lines shorter than this ("CD", "2") are too common to say that two covers share words."""


def normalise(text: str) -> str:
    """Lower case, accents stripped, only letters and digits, words joined: "Alan  JACKSON!" -> "alanjackson"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return re.sub(r"[\W_]+", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


def printed_lines(text: str) -> list[str]:
    """The OCR lines of a cover text, empty ones dropped, then each pair of adjacent lines joined: a name
    split over two lines matches as a whole (measured in bench/hybrid.py and bench/textsearch.py)."""
    lines = [line for line in text.splitlines() if normalise(line)]
    return lines + [first + second for first, second in zip(lines, lines[1:])]


def _lines(text: str) -> list[str]:
    """The normalised printed lines of a cover text (see printed_lines)."""
    return [normalise(line) for line in printed_lines(text)]


def _analyse(text: str) -> list[str]:
    """Character n-grams of each printed line and adjacent pair (never across lines further apart, whose
    order OCR does not fix)."""
    grams = []
    for line in _lines(text):
        padded = f" {line} "
        for n in range(NGRAM[0], NGRAM[1] + 1):
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


@dataclasses.dataclass(frozen=True)
class TextModel:
    """TF-IDF n-gram rows of a collection's cover texts: one per cover (unit length, all zero without text)
    and one per printed line (``line_owner`` names its cover; a cover's lines are contiguous)."""

    vectorizer: Any  # a fitted sklearn TfidfVectorizer
    covers: sparse.csr_matrix
    lines: sparse.csr_matrix
    line_owner: np.ndarray


def fit_text_vectors(texts: Sequence[str]) -> TextModel:
    """Fit the collection's TF-IDF model (IDF over covers) and vectorise every cover and printed line."""
    from sklearn.feature_extraction.text import (
        TfidfVectorizer,  # only when words are asked for: a look query stays light
    )

    vectorizer = TfidfVectorizer(analyzer=_analyse, sublinear_tf=True, dtype=np.float32)
    if not any(_lines(text) for text in texts):
        vectorizer.fit(["no text"])  # no cover carries text; sklearn refuses an empty vocabulary
    else:
        vectorizer.fit(texts)
    lines, owner = _split_lines(texts)
    covers = vectorizer.transform(texts).tocsr()
    if not lines:  # no cover prints a line long enough to compare; sklearn refuses to transform nothing
        return TextModel(vectorizer, covers, covers[:0], owner)
    return TextModel(vectorizer, covers, vectorizer.transform(lines).tocsr(), owner)


def _split_lines(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    lines, owner = [], []
    for row, text in enumerate(texts):
        for line in printed_lines(text):
            if len(normalise(line)) >= MIN_LINE_CHARS:
                lines.append(line)
                owner.append(row)
    return lines, np.array(owner, dtype=np.int64)


def words_similarity(model: TextModel, text: str) -> np.ndarray:
    """How much each cover says the same words as ``text``, in [0, 1]: the mean of the whole texts' cosine
    and the best cosine between any printed line of each (a name printed on both covers counts fully even
    when the rest of the text differs)."""
    whole = np.asarray((model.covers @ model.vectorizer.transform([text]).T).toarray()).ravel()
    lines, _ = _split_lines([text])
    best_line = np.zeros(model.covers.shape[0], dtype=np.float32)
    if lines and model.lines.shape[0]:
        pairs = (model.lines @ model.vectorizer.transform(lines).T).toarray().max(axis=1)
        np.maximum.at(best_line, model.line_owner, pairs.astype(np.float32))
    return 0.5 * whole + 0.5 * best_line


def words_similarity_rows(model: TextModel, rows: np.ndarray) -> np.ndarray:
    """words_similarity of each indexed cover in ``rows`` (ascending) against every cover, one row each, in a
    few sparse products instead of one query per cover: what a graph over the whole collection needs."""
    rows = np.asarray(rows, dtype=np.int64)
    whole = (model.covers[rows] @ model.covers.T).toarray()
    best = np.zeros_like(whole)
    owner = model.line_owner
    mine = np.flatnonzero(np.isin(owner, rows))  # the lines of ``rows`` (a cover's lines are contiguous)
    if len(mine):
        pairs = (model.lines[mine] @ model.lines.T).toarray()
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # each cover's first line
        per_cover = np.maximum.reduceat(pairs, starts, axis=1)  # best over the other cover's lines
        firsts = np.flatnonzero(np.r_[True, owner[mine][1:] != owner[mine][:-1]])
        per_pair = np.maximum.reduceat(per_cover, firsts, axis=0)  # and over this cover's lines
        best[np.searchsorted(rows, owner[mine][firsts])[:, None], owner[starts][None, :]] = per_pair
    return 0.5 * whole + 0.5 * best
