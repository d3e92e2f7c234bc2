"""Fuse "looks like" and "says the same words" into one ranking, and say which of the two each result owes.

Plain functions over arrays of scores, one score per candidate cover, so the fusion can be measured on its
own (bench/hybrid.py). The two scores live on different scales (cosine of image embeddings around 0.3-0.9,
cosine of text n-grams mostly 0 with a long tail), so they are z-scored over the candidates before they are
added; how much the words count depends on how much text the query cover carries, since a cover with one
short, misread line says little. Then two rounds of pseudo-relevance feedback: the mean fused scores of the
query's five best candidates, as queries themselves, are added to the query's, and the five best of that
ranking feed back once more, so covers that share words or a look with its closest matches (a series whose
name the query's OCR missed) rise too. Last, those scores spread over the collection's neighbour graph (each
cover linked to the covers it and they rank among each other's ten best by the same fusion): a cover whose
own close neighbours score well rises, one that matches the query on a common line ("ADVISORY") but whose
neighbours do not falls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from recsys import textsearch

if TYPE_CHECKING:
    from scipy import sparse

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


GRAPH_NEIGHBOURS = 10
SPREAD = 0.8
"""The neighbour graph links two covers when each is among the other's GRAPH_NEIGHBOURS best by hybrid_scores;
a cover keeps SPREAD of what its neighbours score at each step of the spreading. Chosen on half A of the
artists among 5, 10, 15 and 20 neighbours and 0.5 to 0.95 (10 and 15 tied at 0.8 there; the smaller graph
kept), then confirmed on half B and on same-genre precision (bench/hybrid.py, docs/words.md)."""
SPREAD_STEPS = 30
"""Steps of the spreading: SPREAD ** 30 is 0.001, the rest changes no ranking."""
GRAPH_MAX_COVERS = 10_000
"""The graph compares every cover with every other, so it is built once, by build-index, and stored with the
index (bench/hybrid.py: 0.2 s for 755 covers, 3.4 s for 4,450 on 2 cores, growing with the square); above
this many covers none is built and ``both`` keeps the feedback ranking alone. A limit on build time, not measured
for precision."""


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
    graph: sparse.csr_matrix | None = None,
    spread: float = SPREAD,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``--by both`` over the ``candidates`` (rows of ``embeddings``/``texts``/``model``): (scores with
    feedback from ``neighbours`` best candidates, ``rounds`` times, then spread over the collection's
    neighbour ``graph`` with ``spread``, when a graph is given; look; words), one value per candidate."""
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
    if graph is not None and spread > 0:
        seeds = np.zeros(len(texts))
        seeds[candidates] = np.maximum(fused, 0.0)
        fused = spread_over(graph, seeds, spread)[candidates]
    return fused, look, words


def neighbour_graph(
    embeddings: np.ndarray, model: textsearch.TextModel, texts: Sequence[str], k: int = GRAPH_NEIGHBOURS
) -> sparse.csr_matrix:
    """The collection's mutual-neighbour graph: covers i and j are linked when each is among the other's ``k``
    best by hybrid_scores, weighted by the smaller of the two (positive) scores and divided by the square root
    of both covers' total weight, so a cover linked to many does not lift them all. Mutual, because a cover
    that shares only a common line with many others ranks them high but they do not rank it high.
    Every cover against every other: build-index builds it once and stores it (recsys.textstore)."""
    from scipy import sparse  # only when a graph is built: a look query stays light

    count = len(texts)
    if count < 2:
        return sparse.csr_matrix((count, count))
    k = min(k, count - 1)
    chars = [len(textsearch.normalise(text)) for text in texts]
    vectors = np.asarray(embeddings, dtype=np.float32)
    heads, tails, weights = [], [], []
    for start in range(0, count, 64):  # 64 covers at a time: their line products stay small
        rows = np.arange(start, min(start + 64, count))
        words, looks = textsearch.words_similarity_rows(model, rows), vectors[rows] @ vectors.T
        for row, look, word in zip(rows, looks, words):
            scores = hybrid_scores(look, word, chars[row])
            scores[row] = -np.inf
            best = np.argpartition(-scores, k - 1)[:k]
            heads.append(np.full(k, row))
            tails.append(best)
            weights.append(np.maximum(scores[best], 0.0))
    ranked = sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(heads), np.concatenate(tails))), shape=(count, count)
    )
    mutual = ranked.minimum(ranked.T)
    degree = np.asarray(mutual.sum(axis=1)).ravel()
    scale = sparse.diags(1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)))
    return (scale @ mutual @ scale).tocsr()


def spread_over(graph: sparse.csr_matrix, seeds: np.ndarray, keep: float = SPREAD) -> np.ndarray:
    """Scores spread over the graph (Zhou et al.'s diffusion, iterated): f = seeds + keep * graph @ f, one
    value per cover; a cover whose neighbours are seeded rises though its own seed is small."""
    scores = seeds.astype(np.float64)
    for _ in range(SPREAD_STEPS):
        scores = seeds + keep * (graph @ scores)
    return scores


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
