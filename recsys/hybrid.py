"""Fuse "looks like" and "says the same words" into one ranking, and say which of the two each result owes.

Plain functions over arrays of scores, one score per candidate cover, so the fusion can be measured on its
own (bench/hybrid.py). The two scores live on different scales (cosine of image embeddings around 0.3-0.9,
cosine of text n-grams mostly 0 with a long tail), so they are z-scored over the candidates before they are
added; how much the words count depends on how much text the query cover carries, since a cover with one
short, misread line says little. Then two rounds of pseudo-relevance feedback: the mean fused scores of the
query's five best candidates, as queries themselves, are added to the query's, and the five best of that
ranking feed back once more, so covers that share words or a look with its closest matches (a series whose
name the query's OCR missed) rise too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys import textsearch

MODES = ("look", "words", "both")
WORDS_WEIGHT = 0.9
"""Weight of the words' z-score against the look's for a query with plenty of text (measured, bench/hybrid.py)."""
FULL_TEXT_CHARS = 12
"""A query whose normalised text has at least this many characters gets the full words weight."""
WORDS_FLOOR = 0.2
"""Words similarities below this (a few shared letter groups such as "records" or "live") count as none:
without the floor they drown the look for covers that share no name (same-genre precision fell below look's)."""
FEEDBACK_NEIGHBOURS = 5
FEEDBACK_ROUNDS = 2
FEEDBACK_WEIGHT = 1.0
"""Pseudo-relevance feedback: how many best candidates feed back, how often (the second round takes the best
of the first's ranking) and how much their mean scores count. 5 and 2 beat 3 and 1 on both halves of the
artists and on same-genre precision (bench/hybrid.py)."""


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


def hybrid_scores(look: np.ndarray, words: np.ndarray, query_chars: int) -> np.ndarray:
    """The fusion before feedback: words below WORDS_FLOOR dropped, weighted by how much text the query carries."""
    return fuse(look, np.where(words >= WORDS_FLOOR, words, 0.0), words_weight(query_chars))


def both_scores(
    embeddings: np.ndarray,
    model: textsearch.TextModel,
    texts: Sequence[str],
    candidates: np.ndarray,
    query_vector: np.ndarray,
    query_text: str,
    neighbours: int = FEEDBACK_NEIGHBOURS,
    rounds: int = FEEDBACK_ROUNDS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``--by both`` over the ``candidates`` (rows of ``embeddings``/``texts``/``model``): (scores with
    feedback from ``neighbours`` best candidates, ``rounds`` times; look; words), one value per candidate."""
    def scores_of(vector: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        look = np.asarray(embeddings[candidates]) @ vector
        words = textsearch.words_similarity(model, text)[candidates]
        return hybrid_scores(look, words, len(textsearch.normalise(text))), look, words

    first, look, words = scores_of(query_vector, query_text)
    fused, seen = first, {}  # the second round's best are mostly the first's: score each once
    for _ in range(rounds):
        best = candidates[np.argsort(-fused, kind="stable")[:neighbours]]
        for row in best:
            if row not in seen:
                seen[row] = scores_of(np.asarray(embeddings[row]), texts[row])[0]
        feedback = [seen[row] for row in best]
        if feedback:
            fused = first + FEEDBACK_WEIGHT * np.mean(feedback, axis=0)
    return fused, look, words


def ranks(scores: np.ndarray) -> np.ndarray:
    """1 for the best score, 2 for the next (ties broken by position)."""
    order = np.argsort(-scores, kind="stable")
    out = np.empty(len(scores), dtype=np.int64)
    out[order] = np.arange(1, len(scores) + 1)
    return out


def owed_to(look: np.ndarray, words: np.ndarray, k: int) -> np.ndarray:
    """For each candidate, "both" if it is in the top ``k`` by look and by words alone, else the part
    in whose own ranking it stands higher ("words" only when its words similarity reaches WORDS_FLOOR)."""
    look_rank, words_rank = ranks(look), ranks(words)
    matched = words >= WORDS_FLOOR
    labels = np.where(matched & (words_rank < look_rank), "words", "look").astype(object)
    labels[(look_rank <= k) & (words_rank <= k) & matched] = "both"
    return labels
