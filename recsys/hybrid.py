"""Fuse "looks like" and "says the same words" into one ranking, and say which of the two each result owes.

Plain functions over arrays of scores, one score per candidate cover, so the fusion can be measured on its
own (bench/hybrid.py). The two scores live on different scales (cosine of image embeddings around 0.3-0.9,
cosine of text n-grams mostly 0 with a long tail), so they are z-scored over the candidates before they are
added; how much the words count depends on how much text the query cover carries, since a cover with one
short, misread line says little.
"""

from __future__ import annotations

import numpy as np

MODES = ("look", "words", "both")
WORDS_WEIGHT = 0.7
"""Weight of the words' z-score against the look's for a query with plenty of text (measured, bench/hybrid.py)."""
FULL_TEXT_CHARS = 12
"""A query whose normalised text has at least this many characters gets the full words weight."""


def zscore(scores: np.ndarray) -> np.ndarray:
    """Scores centred and scaled over the candidates (all zero when they do not vary)."""
    spread = float(scores.std())
    return (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores, dtype=np.float64)


def words_weight(query_chars: int, full: float = WORDS_WEIGHT) -> float:
    """The weight of the words for a query with ``query_chars`` normalised characters of text: none without
    text, growing to ``full`` at FULL_TEXT_CHARS."""
    return full * min(1.0, query_chars / FULL_TEXT_CHARS)


def fuse(look: np.ndarray, words: np.ndarray, weight: float) -> np.ndarray:
    """One score per candidate: (1 - weight) * z(look) + weight * z(words)."""
    return (1.0 - weight) * zscore(look.astype(np.float64)) + weight * zscore(words.astype(np.float64))


def ranks(scores: np.ndarray) -> np.ndarray:
    """1 for the best score, 2 for the next (ties broken by position)."""
    order = np.argsort(-scores, kind="stable")
    out = np.empty(len(scores), dtype=np.int64)
    out[order] = np.arange(1, len(scores) + 1)
    return out


def owed_to(look: np.ndarray, words: np.ndarray, k: int) -> np.ndarray:
    """For each candidate, "both" if it is in the top ``k`` by look and by words alone, else the part
    in whose own ranking it stands higher ("words" only when it carries text that matches)."""
    look_rank, words_rank = ranks(look), ranks(words)
    matched = words > 0
    labels = np.where(matched & (words_rank < look_rank), "words", "look").astype(object)
    labels[(look_rank <= k) & (words_rank <= k) & matched] = "both"
    return labels
