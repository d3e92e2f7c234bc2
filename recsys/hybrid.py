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

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from index.lookstats import LookMoments
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
SPREAD_SEEDS = 0
"""How many of the best candidates seed the spreading (the rest seed 0); 0 seeds every candidate with a
positive score. Kept at 0: 10, 20, 50 and 100 seeds lost at 10,000 covers or gained nothing at 30,000 (N = 10
gained at 30k, lost 0.010 at 10k; docs/scale.md, bench/both_stages.py --variant)."""
SPREAD_FOCUS = 0.22
SPREAD_POOL = 100
"""A spreading strength that follows the candidates: SPREAD is scaled by min(1, s / SPREAD_FOCUS), s the top
10's share of the positive scores of the SPREAD_POOL best (1 when the best stand apart, 0.1 when 100 tie), so that
a query whose best are a crowd of near-ties (distractors, in a large collection) spreads less; 0 keeps SPREAD
whatever the candidates. Chosen on the planted artist covers (bench/both_stages.py --variant, docs/scale.md):
pools of 20, 50 and 100 and thresholds 0.2 to 0.8, kept only where 10,000 covers with real-look distractors stay
at least at today's on both halves (0.3 and above with pool 50 lost up to 0.009 on half B there, 0.25 with pool
100 lost 0.003); 0.22 beat 0.2 on half A at 30,000 covers (0.418 against 0.413, 0.406 with a constant SPREAD),
half B confirmed it there (0.487 against 0.483) and with no distractors (0.661, unchanged)."""
SPREAD_LINKS_AT = 0.0
SPREAD_LINK_SEEDS = 10
SPREAD_LINK_POOL = 100
"""A spreading strength that follows the graph around the seeds: SPREAD is also scaled by min(1, s /
SPREAD_LINKS_AT), s the share of the SPREAD_LINK_SEEDS best candidates' link weight that ends at one of the
SPREAD_LINK_POOL best candidates, so that seeds whose links lead out of the query's strong candidates (to
distractors, in a large collection) spread less; 0 keeps SPREAD whatever the graph (bench/both_stages.py
--variant, docs/scale.md)."""
SPREAD_STEPS = 30
"""Steps of the spreading: SPREAD ** 30 is 0.001, the rest changes no ranking."""
LOOK_CANDIDATES = 50
WORDS_CANDIDATES = 400
WORDS_SAMPLE = 200
"""The graph ranks each cover's candidates, never all covers: its LOOK_CANDIDATES nearest by look, the covers
that share its rarest n-grams (postings taken rarest first while their total stays within WORDS_CANDIDATES; an
n-gram printed on more covers is too common to pick candidates by) and a fixed random sample of WORDS_SAMPLE
covers, which also estimates the words' mean and spread over the covers that are not candidates
(bench/graph.py measures the graph against the exact one, bench/hybrid.py the precision of ``both`` on it). A
sample of 200 keeps almost as many of the exact graph's links as one of 500 (0.874 against 0.880 at 5,000
synthetic covers, 0.819 against 0.824 at 10,000; 100 keeps 0.870 and 0.815) and is scored in 40% of the time.
The exact links the candidates miss are mostly covers that share only n-grams too common for the budget (on the
4,450 shared covers, 2,431 of the 3,746 missed links were no candidate; a budget of 1,000 would have reached 96%
of those, 100 look candidates 2%): a budget of 400 keeps 0.930 of the exact links there and 0.923 at 10,000
synthetic covers, against 0.797 and 0.819 with 200, for 10% more time at 10,000 (docs/words.md)."""
LOOK_EXACT_MAX = 20_000
"""Up to this many covers the nearest by look are found by exact blocked products; above, by an HNSW index,
whose build and search grow with N log N instead of N squared (bench/graph.py)."""
LOOK_SEARCH_DIMS = 256
"""nearest_by_look searches this many principal components of the look vectors, 4x faster than all 1280 of
efficientnet-lite0 (20,000 synthetic covers, exact search of 51 neighbours, one thread: 3.8 against 15.3 s) while
its 50 nearest still hold a cover's true 10 nearest (recall 1.000 on the 4,450 shared covers, 0.958 on bench/
graph.py's synthetic 20,000, whose mixture spreads its variance over more directions; 128 components: 0.996 and
0.877)."""
HNSW_GRAPH_M = 16
HNSW_GRAPH_EF = 64
"""A small HNSW index for the look candidates only: the words candidates and the sample make up for what it
misses, and a query never reads it."""
EXACT_GRAPH_MAX = 3_000
"""Up to this many covers neighbour_graph scores every pair: the all-pairs graph is exact and, this small, about
as fast as the one from candidates (bench/graph.py on synthetic covers, 2 cores at load 12, 2026-12-06: 2,000
covers 2.3 s all pairs against 2.8 s from candidates, 3,000 covers 4.9 s against 4.3 s, 5,000 covers 24.1 s
against 11.2 s; docs/words.md)."""
GRAPH_BLOCK = 4_096
"""Covers whose links one call of the graph's compiled pass returns: enough that a call's own cost vanishes
(a few milliseconds each), few enough that an interrupt is answered within seconds."""


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


@dataclasses.dataclass(frozen=True)
class Statistics:
    """What z-scoring over the whole collection needs when only some covers are scored (candidate_statistics):
    over all covers j, the mean of v.v_j is v.mu and its variance v^T Sigma v (``mean_vector`` mu and
    ``covariance`` Sigma, of the collection); the words' mean and spread are estimated from a fixed random
    ``sample`` of the ``count`` covers, as neighbour_graph does."""

    mean_vector: np.ndarray
    covariance: np.ndarray
    sample: np.ndarray
    count: int


STATISTICS_ROWS = 50_000
"""sampled_look_moments reads at most this many covers (a fixed random sample above it) for the mean vector and
covariance: exact up to it, and an index written without stored moments does not make a query process read
every vector of a large collection."""


def candidate_statistics(
    embeddings: np.ndarray, sample: int = WORDS_SAMPLE, stored: LookMoments | None = None
) -> Statistics:
    """The collection's look moments and words sample (Statistics), computed once per index: the ``stored``
    moments where the index holds them (index.lookstats, written by build-index), so that no vector is read,
    else sampled_look_moments of the ``embeddings``."""
    count = len(embeddings)
    moments = sampled_look_moments(embeddings) if stored is None else stored
    return Statistics(moments.mean_vector, moments.covariance, words_sample(count, sample), count)


def sampled_look_moments(embeddings: np.ndarray) -> LookMoments:
    """The mean vector and covariance (float32) of the ``embeddings``, over at most STATISTICS_ROWS of them:
    what build-index stores with an index for candidate_statistics."""
    count = len(embeddings)
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(count, STATISTICS_ROWS, replace=False)) if count > STATISTICS_ROWS else slice(None)
    vectors = np.array(embeddings[rows], dtype=np.float32)  # a copy of its own, centred in place
    mean_vector, covariance = look_moments(vectors, overwrite=True)
    return LookMoments(mean_vector.astype(np.float32), covariance)


QUERY = -1
"""CollectionScores' key for the query itself (feedback covers are keyed by their row)."""


class CollectionScores:
    """One query's scores z-scored against the whole collection (Statistics), remembered per query cover (the
    query, each feedback cover: its text vectorised, its look and words per candidate, its words over the
    statistics' sample and its look moments). both_candidates runs the feedback over the query's own
    candidates to pick the covers whose neighbours join them; both_scores' feedback over the grown candidates
    then scores only the covers that joined, and the moments are taken again over the grown candidates from
    what is kept, as scoring them afresh would. The query covers of one call are scored together: their
    words in one sparse product (textsearch.words_similarities), the sample's rows with the candidates'."""

    def __init__(self, statistics: Statistics, model: textsearch.TextModel) -> None:
        self.statistics, self.model = statistics, model
        self._scored: dict[int, _Scored] = {}
        self._queries: textsearch.Queries | None = None
        self._column: dict[int, int] = {}
        """Each query cover's text in _queries."""
        self._read = _ReadRows()

    def grams(self, key: int, text: str) -> np.ndarray:
        """The n-grams of query cover ``key``'s ``text`` that the model knows (textsearch.known_grams), from
        the text as vectorised for its scores."""
        self._vectorise([key], [text])
        return self._queries.grams(self.model, self._column[key])

    def _vectorise(self, keys: Sequence[int], texts: Sequence[str]) -> None:
        """Vectorise the ``texts`` of the ``keys`` not vectorised before, all in one go."""
        fresh = {key: text for key, text in zip(keys, texts) if key not in self._column}
        if not fresh:
            return
        queries = textsearch.vectorise_queries(self.model, list(fresh.values()))
        self._column |= {key: len(self._column) + at for at, key in enumerate(fresh)}
        self._queries = queries if self._queries is None else textsearch.stack_queries(self._queries, queries)

    def scores(
        self, keys: Sequence[int], candidates: np.ndarray, embeddings: np.ndarray, vectors: np.ndarray,
        texts: Sequence[str],
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(fused, look, words) over the ``candidates`` (ascending rows of ``embeddings``) of each query cover
        ``keys[i]`` (``vectors[i]``, ``texts[i]``), scoring each only against the candidates it was not
        scored against before."""
        self._vectorise(keys, texts)
        known = [self._scored.get(key) for key in keys]
        new = [np.ones(len(candidates), bool) if scored is None else ~_within(candidates, scored.rows)
               for scored in known]
        needed = candidates[np.logical_or.reduce(new)] if new else candidates[:0]
        fresh = [at for at, scored in enumerate(known) if scored is None]
        sample = self.statistics.sample if fresh else self.statistics.sample[:0]
        rows = np.concatenate([needed, sample])
        words = (textsearch.words_similarities(self.model, self._queries, rows) if len(rows)
                 else np.zeros((0, len(self._column)), np.float32))
        # v.mu and v Sigma v of every fresh cover in one product: Sigma is read once, not per cover
        fresh_vectors = np.asarray(vectors)[np.asarray(fresh, dtype=np.int64)]
        means = fresh_vectors @ self.statistics.mean_vector
        variances = np.einsum("ij,ij->i", fresh_vectors @ self.statistics.covariance, fresh_vectors)
        for at, mean, variance in zip(fresh, means, variances):
            weight = words_weight(len(textsearch.normalise(texts[at])))
            known[at] = _Scored(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32),
                                _floored(words[len(needed):, self._column[keys[at]]]), weight,
                                float(mean), float(np.sqrt(max(float(variance), 0.0))))
        looks = self._looks(new, candidates, lambda rows: self._read.rows(embeddings, rows), vectors)
        outside = ~_within(self.statistics.sample, candidates)
        results = []
        for key, scored, mask, look in zip(keys, known, new, looks):
            if mask.any():
                added = candidates[mask]
                merged = [np.concatenate(pair) for pair in zip(
                    (scored.rows, scored.look, scored.words),
                    (added, look, words[np.searchsorted(needed, added), self._column[key]]))]
                order = np.argsort(merged[0], kind="stable")
                scored = dataclasses.replace(scored, rows=merged[0][order], look=merged[1][order],
                                             words=merged[2][order])
            self._scored[key] = scored
            results.append(scored.over(self.statistics, candidates, outside))
        return results

    @staticmethod
    def _looks(
        new: list[np.ndarray], candidates: np.ndarray, read: Callable[[np.ndarray], np.ndarray], vectors: np.ndarray
    ) -> list[np.ndarray | None]:
        """Each query cover's look over its ``new`` candidates (None for none): the covers that need the same
        rows in one product, so that those rows are gathered once, not once per cover (``read``: the vectors of
        some ascending rows)."""
        looks: list[np.ndarray | None] = [None] * len(new)
        alike: dict[bytes, list[int]] = {}
        for at, mask in enumerate(new):
            if mask.any():
                alike.setdefault(mask.tobytes(), []).append(at)
        for ats in alike.values():
            product = read(candidates[new[ats[0]]]) @ np.asarray(vectors)[ats].T
            looks_of = np.ascontiguousarray(product.T)
            for at, look in zip(ats, looks_of):
                looks[at] = look
        return looks


class _ReadRows:
    """The embeddings rows one query has read, kept so that each is read from the file once: its scores calls
    (the query's candidates, then its feedback covers', then the grown candidates') asked the same rows about
    four times over, 4,400 scattered 7 KB reads a planted query at 1M covers, most of its time where they
    are not in the page cache."""

    def __init__(self) -> None:
        self._vectors: np.ndarray | None = None
        self._count = 0
        self._sorted = np.zeros(0, np.int64)  # the rows read, ascending, and where each is kept
        self._at = np.zeros(0, np.int64)

    def rows(self, embeddings: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (ascending, unique), as ``np.asarray(embeddings[rows])`` gives them."""
        missing = rows[~_within(rows, self._sorted)]
        if len(missing):
            self._keep(np.asarray(embeddings[missing]), missing)
        return self._vectors[self._at[np.searchsorted(self._sorted, rows)]]

    def _keep(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        needed = self._count + len(rows)
        if self._vectors is None or needed > len(self._vectors):  # grown by doubling: copied log(n) times
            grown = np.empty((max(needed, 2 * self._count), vectors.shape[1]), dtype=vectors.dtype)
            if self._vectors is not None:
                grown[: self._count] = self._vectors[: self._count]
            self._vectors = grown
        self._vectors[self._count : needed] = vectors
        merged = np.concatenate([self._sorted, rows])
        order = np.argsort(merged, kind="stable")
        self._sorted = merged[order]
        self._at = np.concatenate([self._at, np.arange(self._count, needed)])[order]
        self._count = needed


def _within(values: np.ndarray, ascending: np.ndarray) -> np.ndarray:
    """np.isin(values, ascending) for an ``ascending`` array: a binary search each, not isin's sort of both (a
    sixth of CollectionScores' time at 100k covers, docs/scale.md)."""
    at = np.minimum(np.searchsorted(ascending, values), max(len(ascending) - 1, 0))
    return ascending[at] == values if len(ascending) else np.zeros(len(values), dtype=bool)


@dataclasses.dataclass(frozen=True)
class _Scored:
    """What CollectionScores keeps of one query cover: rows scored (ascending), their look and words scores,
    its floored words over the statistics' sample, its words weight, and the mean and standard deviation of
    its look over the collection (Statistics)."""

    rows: np.ndarray
    look: np.ndarray
    words: np.ndarray
    sample_words: np.ndarray
    weight: float
    look_mean: float
    look_std: float

    def over(
        self, statistics: Statistics, candidates: np.ndarray, outside: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fused, look, words) over the ``candidates``, all scored before; ``outside``: the statistics'
        sample rows that are not candidates, whose words stand for every cover that is not one."""
        at = np.searchsorted(self.rows, candidates)
        look, words = self.look[at], self.words[at]
        floored = _floored(words)
        words_mean, words_std = _words_moments(statistics, len(candidates), floored, self.sample_words[outside])
        fused = ((1.0 - self.weight) * _z(look, np.float64(self.look_mean), np.float64(self.look_std))
                 + self.weight * _z(floored, np.float64(words_mean), np.float64(words_std)))
        return fused, look, words


def _words_moments(
    statistics: Statistics, candidates: int, words: np.ndarray, outside: np.ndarray
) -> tuple[float, float]:
    """(words mean, words std) of a query cover against the whole collection: the floored ``words`` of the
    ``candidates`` counted exactly, the sample's other covers (``outside``, floored) standing for the rest."""
    rest = max(statistics.count - candidates, 0)
    total = words.sum() + (rest * outside.mean() if len(outside) else 0.0)
    squares = (words**2).sum() + (rest * (outside**2).mean() if len(outside) else 0.0)
    mean = total / statistics.count
    return mean, float(np.sqrt(max(squares / statistics.count - mean**2, 0.0)))


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
    collection: CollectionScores | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``--by both`` over the ``candidates`` (rows of ``embeddings``/``texts``/``model``): (scores with
    feedback from ``neighbours`` best candidates, ``rounds`` times, then spread over the collection's
    neighbour ``graph`` with ``spread``, when a graph is given; look; words), one value per candidate.

    Without ``collection`` the z-scores are over the candidates (all covers, for an exact answer); with it,
    over the whole collection (CollectionScores), so that a few thousand candidates rank as they would among
    all covers. The spreading then runs over the graph's links among the candidates, and never reads more."""
    fused, look, words, _ = _feedback(embeddings, model, texts, candidates, query_vector, query_text,
                                      neighbours, rounds, collection)
    if graph is not None and spread > 0:
        fused = spread_from(graph, candidates, fused, len(texts), spread, exact=collection is None)
    return fused, look, words


def spread_from(graph: sparse.csr_matrix, candidates: np.ndarray, fused: np.ndarray, covers: int,
                keep: float = SPREAD, seeds: int = SPREAD_SEEDS, focus_at: float = SPREAD_FOCUS,
                exact: bool = True, links_at: float = SPREAD_LINKS_AT) -> np.ndarray:
    """The ``candidates``' ``fused`` scores spread over the neighbour ``graph`` of ``covers`` covers, seeded
    by the ``seeds`` best (all positive ones when 0), with ``keep`` scaled by focus(fused, ``focus_at``) and by
    min(1, link_share / ``links_at``) (see SPREAD_LINKS_AT; 0 leaves it): over the whole graph when ``exact``,
    else over its links among the candidates only. One value per candidate."""
    start = seed_scores(fused, seeds)
    keep = keep * focus(fused, focus_at)
    if links_at > 0:
        keep *= min(1.0, link_share(graph, candidates, fused) / links_at)
    if not exact:
        return spread_over(subgraph(graph, candidates), start, keep)
    whole = np.zeros(covers)
    whole[candidates] = start
    return spread_over(graph, whole, keep)[candidates]


def focus(fused: np.ndarray, threshold: float) -> float:
    """How much of SPREAD the spreading keeps: the top 10's share of the SPREAD_POOL best positive ``fused``
    scores over ``threshold``, at most 1 (1 when ``threshold`` is 0 or no score is positive)."""
    positive = np.maximum(fused, 0.0)
    if len(positive) > SPREAD_POOL:  # the best SPREAD_POOL, not a sort of every cover (the exact path's 1M)
        positive = np.partition(positive, len(positive) - SPREAD_POOL)[-SPREAD_POOL:]
    pool = np.sort(positive)[::-1]
    if threshold <= 0 or pool.sum() <= 0:
        return 1.0
    return min(1.0, float(pool[:10].sum() / pool.sum()) / threshold)


def link_share(graph: sparse.csr_matrix, candidates: np.ndarray, fused: np.ndarray) -> float:
    """The share of the SPREAD_LINK_SEEDS best ``candidates``' link weight in ``graph`` that ends at one of the
    SPREAD_LINK_POOL best: how much of what the best seeds spread stays among the query's strong candidates
    (1 when they have no links, as there is nothing to spread then)."""
    pool = min(SPREAD_LINK_POOL, len(fused))
    best = np.argpartition(-fused, pool - 1)[:pool] if pool < len(fused) else np.arange(len(fused))
    best = best[np.argsort(-fused[best], kind="stable")]
    links = graph[candidates[best[:SPREAD_LINK_SEEDS]]]
    if links.sum() <= 0:
        return 1.0
    inside = np.isin(links.indices, candidates[best])
    return float(links.data[inside].sum() / links.data.sum())


def seed_scores(fused: np.ndarray, seeds: int) -> np.ndarray:
    """The spreading's seeds: the positive ``fused`` scores of the ``seeds`` best (every one when 0), else 0."""
    start = np.maximum(fused, 0.0)
    if 0 < seeds < len(fused):
        start[np.argsort(-fused, kind="stable")[seeds:]] = 0.0
    return start


def feedback_rows(
    embeddings: np.ndarray, model: textsearch.TextModel, texts: Sequence[str], candidates: np.ndarray,
    query_vector: np.ndarray, query_text: str, collection: CollectionScores | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The covers both_scores' feedback rounds take as queries among the ``candidates`` (their own look-alikes
    and words matches belong among the candidates too), and the candidates' scores after feedback."""
    fused, _, _, fed = _feedback(embeddings, model, texts, candidates, query_vector, query_text,
                                 FEEDBACK_NEIGHBOURS, FEEDBACK_ROUNDS, collection)
    return fed, fused


def _feedback(
    embeddings: np.ndarray, model: textsearch.TextModel, texts: Sequence[str], candidates: np.ndarray,
    query_vector: np.ndarray, query_text: str, neighbours: int, rounds: int,
    collection: CollectionScores | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(fused scores after the feedback rounds, look, words, the rows fed back) over the ``candidates``; the
    covers a round feeds back are scored together."""
    if collection is None:
        vectors = np.asarray(embeddings[candidates])  # the candidates' rows only, read once for every round

    def scores_of(
        keys: list[int], key_vectors: np.ndarray, key_texts: list[str]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if collection is not None:
            return collection.scores(keys, candidates, embeddings, key_vectors, key_texts)
        words = textsearch.words_similarities(model, textsearch.vectorise_queries(model, key_texts), candidates)
        looks = [vectors @ vector for vector in key_vectors]
        return [(hybrid_scores(look, word, len(textsearch.normalise(text))), look, word)
                for look, word, text in zip(looks, np.ascontiguousarray(words.T), key_texts)]

    [(first, look, words)] = scores_of([QUERY], query_vector[None], [query_text])
    fused, seen = first, {}  # the second round's best are mostly the first's: score each once
    for _ in range(rounds):
        best = candidates[np.argsort(-fused, kind="stable")[:neighbours]]
        fresh = [int(row) for row in best if row not in seen]
        if fresh:
            scored = scores_of(fresh, np.asarray(embeddings[fresh]), [texts[row] for row in fresh])
            seen |= {row: scores[0] for row, scores in zip(fresh, scored)}
        feedback = [seen[row] for row in best]
        if feedback:
            fused = first + FEEDBACK_WEIGHT * np.mean(feedback, axis=0)
    return fused, look, words, np.array(sorted(seen), dtype=np.int64)


def subgraph(graph: sparse.csr_matrix, rows: np.ndarray) -> sparse.csr_matrix:
    """The links of ``graph`` among ``rows`` (ascending), one row and column per row, read from those rows
    alone (no array the size of the collection)."""
    from scipy import sparse

    part = graph[rows]
    position = np.minimum(np.searchsorted(rows, part.indices), len(rows) - 1)
    kept = rows[position] == part.indices
    owner = np.repeat(np.arange(len(rows)), np.diff(part.indptr))
    return sparse.csr_matrix((part.data[kept], (owner[kept], position[kept])), shape=(len(rows), len(rows)))


def neighbour_graph(
    embeddings: np.ndarray,
    model: textsearch.TextModel,
    texts: Sequence[str],
    k: int = GRAPH_NEIGHBOURS,
    exact_max: int = EXACT_GRAPH_MAX,
    look_candidates: int = LOOK_CANDIDATES,
    words_candidates: int = WORDS_CANDIDATES,
    sample: int = WORDS_SAMPLE,
) -> sparse.csr_matrix:
    """The collection's mutual-neighbour graph: covers i and j are linked when each is among the other's ``k``
    best by hybrid_scores, weighted by the smaller of the two (positive) scores and divided by the square root
    of both covers' total weight, so a cover linked to many does not lift them all. Mutual, because a cover
    that shares only a common line with many others ranks them high but they do not rank it high.

    Up to ``exact_max`` covers every pair is scored (exact_neighbour_graph), which is faster there; above, the
    graph is built from candidates (candidate_neighbour_graph, with the other arguments)."""
    if len(texts) <= exact_max:
        return exact_neighbour_graph(embeddings, model, texts, k)
    return candidate_neighbour_graph(embeddings, model, texts, k, look_candidates, words_candidates, sample)


def candidate_neighbour_graph(
    embeddings: np.ndarray,
    model: textsearch.TextModel,
    texts: Sequence[str],
    k: int = GRAPH_NEIGHBOURS,
    look_candidates: int = LOOK_CANDIDATES,
    words_candidates: int = WORDS_CANDIDATES,
    sample: int = WORDS_SAMPLE,
) -> sparse.csr_matrix:
    """neighbour_graph built from candidates, in time linear in the number of covers: each cover is scored only
    against its ``look_candidates`` nearest by look, the covers in the postings of its rarest n-grams (at most
    ``words_candidates``) and a fixed random ``sample`` of covers, and keeps its ``k`` best of those.
    hybrid_scores z-scores look and words over all covers; here each cover's statistics come another way. The
    look's are exact: over all covers j, the mean of v.v_j is v.mu and its variance v^T Sigma v, with mu and
    Sigma the collection's mean vector and covariance. The words' (after WORDS_FLOOR) are estimated: exact sums
    over the cover itself and its candidates, plus, for every other cover, the mean over the sample's other
    covers. With a sample as large as the collection every cover is scored and the graph is
    exact_neighbour_graph's; bench/graph.py measures how far apart they are otherwise."""
    from scipy import sparse  # only when a graph is built: a look query stays light

    from recsys import pairscore

    count = len(texts)
    if count < 2:
        return sparse.csr_matrix((count, count))
    k = min(k, count - 1)
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    weight = np.array([words_weight(len(textsearch.normalise(text))) for text in texts])
    moments = look_moments(vectors)
    statistics = look_statistics(vectors, moments)
    nearest = nearest_by_look(vectors, min(look_candidates, count - 1), moments[1])
    graph_pass = pairscore.GraphPass(vectors, model, line_bounds(model), nearest, words_candidates,
                                     words_sample(count, sample))
    heads, tails, weights = [], [], []
    for start in range(0, count, GRAPH_BLOCK):
        stop = min(start + GRAPH_BLOCK, count)
        best, best_weights = graph_pass.links(start, stop, k, weight, statistics, WORDS_FLOOR)
        kept = best >= 0
        heads.append(np.broadcast_to(np.arange(start, stop)[:, None], best.shape)[kept])
        tails.append(best[kept])
        weights.append(best_weights[kept])
    return _mutual_graph(np.concatenate(heads), np.concatenate(tails), np.concatenate(weights), count)


def _floored(words: np.ndarray) -> np.ndarray:
    """Words similarities below WORDS_FLOOR as none, as hybrid_scores counts them."""
    return np.where(words >= WORDS_FLOOR, words, 0.0)


def _z(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(values - mean) / std, zero where std is zero (as zscore)."""
    return np.where(std > 0, (values - mean) / np.where(std > 0, std, 1.0), 0.0)


def exact_neighbour_graph(
    embeddings: np.ndarray, model: textsearch.TextModel, texts: Sequence[str], k: int = GRAPH_NEIGHBOURS
) -> sparse.csr_matrix:
    """neighbour_graph by scoring every cover against every other (time growing with the square of the
    collection): what small collections get, and the reference that tests and bench/hybrid.py, bench/graph.py
    measure candidate_neighbour_graph against."""
    from scipy import sparse

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
    return _mutual_graph(np.concatenate(heads), np.concatenate(tails), np.concatenate(weights), count)


def _mutual_graph(heads: np.ndarray, tails: np.ndarray, weights: np.ndarray, count: int) -> sparse.csr_matrix:
    """The links each cover ranked (head -> tail, weight) kept where both ends ranked each other, weighted by
    the smaller weight and scaled by both ends' total weight."""
    from scipy import sparse

    ranked = sparse.csr_matrix((weights, (heads, tails)), shape=(count, count))
    mutual = ranked.minimum(ranked.T)
    degree = np.asarray(mutual.sum(axis=1)).ravel()
    scale = sparse.diags(1.0 / np.sqrt(np.where(degree > 0, degree, 1.0)))
    return (scale @ mutual @ scale).tocsr()


def look_statistics(
    vectors: np.ndarray, moments: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For each cover v, the mean and standard deviation of v.v_j over all covers j (itself included): v.mu and
    sqrt(v^T Sigma v), from the collection's mean vector mu and covariance Sigma (``moments``, look_moments'
    when not given), without comparing any pair."""
    mean_vector, covariance = look_moments(vectors) if moments is None else moments
    step = 65_536
    variance = np.concatenate([np.einsum("ij,ij->i", vectors[start : start + step] @ covariance,
                                         vectors[start : start + step]) for start in range(0, len(vectors), step)])
    return vectors @ mean_vector.astype(np.float32), np.sqrt(np.maximum(variance, 0.0))


def look_moments(vectors: np.ndarray, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The mean vector (float64) and covariance (float32) of ``vectors``, accumulated 65,536 rows at a time so
    that a memory-mapped collection is never copied whole, each block centred 1,024 rows at a time so that no
    float64 copy of it is held. ``overwrite``: ``vectors`` is the caller's own float32 copy, centred in place."""
    mean_vector = vectors.mean(axis=0, dtype=np.float64)
    covariance = np.zeros((vectors.shape[1],) * 2)
    for start in range(0, len(vectors), 65_536):
        block = vectors[start : start + 65_536]
        centred = block if overwrite else np.empty(block.shape, dtype=np.float32)
        for piece in range(0, len(block), 1_024):
            centred[piece : piece + 1_024] = block[piece : piece + 1_024] - mean_vector
        covariance += centred.T @ centred
    return mean_vector, (covariance / len(vectors)).astype(np.float32)


def words_sample(count: int, size: int) -> np.ndarray:
    """A fixed random sample of ``size`` of ``count`` rows (ascending), the same on every run: the covers whose
    words stand for the rest of the collection in the graph's and the queries' statistics."""
    return np.sort(np.random.default_rng(0).choice(count, min(size, count), replace=False))


def nearest_by_look(vectors: np.ndarray, count: int, covariance: np.ndarray | None = None) -> np.ndarray:
    """Each cover's ``count`` nearest covers by cosine (itself usually among them; -1 where fewer were found):
    exact up to LOOK_EXACT_MAX covers, an HNSW search above. Given the collection's ``covariance``, the search
    runs on the vectors' LOOK_SEARCH_DIMS principal components: the graph scores every pair it keeps with the
    full vectors anyway, and needs only the look neighbours among the candidates, not their order."""
    import faiss

    if covariance is not None and vectors.shape[1] > LOOK_SEARCH_DIMS:
        axes = np.linalg.eigh(covariance.astype(np.float64))[1][:, ::-1][:, :LOOK_SEARCH_DIMS]
        step = 65_536
        vectors = np.concatenate([vectors[start : start + step] @ axes.astype(np.float32)
                                  for start in range(0, len(vectors), step)])
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) <= LOOK_EXACT_MAX:
        index = faiss.IndexFlatIP(vectors.shape[1])
    else:
        index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_GRAPH_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_GRAPH_EF
        index.hnsw.efSearch = max(HNSW_GRAPH_EF, count + 1)
    index.add(vectors)
    return index.search(vectors, count + 1)[1]


def line_bounds(model: textsearch.TextModel) -> np.ndarray:
    """Where each cover's printed lines lie in a words model's line rows: cover c's are rows bounds[c] to
    bounds[c + 1] (a cover's lines are contiguous)."""
    return np.searchsorted(model.line_owner, np.arange(model.covers.shape[0] + 1))


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
