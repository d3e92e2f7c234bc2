"""The neighbour graph's compiled pass (numba): for each cover, its candidates, the look and words scores of
each candidate pair, its words statistics and its k best, in parallel over runs of covers.

Each cover (head) gathers its candidates (itself, its nearest by look, the covers in the postings of its
rarest n-grams within a budget) and the fixed sample; each pair's look is the inner product and its words
textsearch.words_similarity_rows', computed from the rows in place: the head is scattered into dense arrays once and
each tail row read once against it. Nothing per head is left to numpy: the serial numpy of a block (its pair
keys' np.unique, the sample's sparse products, the z-scores and the sort of its pairs) cost about 14% of the
graph on one thread and ran on one core whatever the threads (docs/scale.md). The covers of a call are cut into
one run per thread (numba's thread count: the cores, or NUMBA_NUM_THREADS), each with dense arrays of its own;
a cover's sums run in the same order whatever the runs, so the links are those of one serial pass. Imported only
where a graph is built: compiling takes a few seconds, cached on disk after the first run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:
    from recsys import textsearch


class GraphPass:
    """The graph's links of any run of covers, called once per block: the collection's rows and postings are
    converted once and each run's dense arrays (two of the vocabulary's width, one of the most lines squared)
    allocated once and left clean by every call, so a call costs what its covers' pairs cost."""

    def __init__(
        self,
        vectors: np.ndarray,
        model: textsearch.TextModel,
        bounds: np.ndarray,
        nearest: np.ndarray,
        budget: int,
        sample: np.ndarray,
        chunks: int | None = None,
    ) -> None:
        """``bounds``: cover c's line rows are bounds[c] to bounds[c + 1]. ``nearest``: each cover's nearest by
        look (-1 where none). ``budget``: the most postings a cover's rarest n-grams may bring. ``sample``: the
        sampled covers (ascending). ``chunks``: how many runs each call's covers are cut into, one per numba
        thread when not given."""
        self._rows = _rows(vectors, model, bounds)
        postings = model.covers.tocsc()  # one column per n-gram: the covers that print it
        self._candidates = (np.ascontiguousarray(nearest, dtype=np.int64), postings.indptr.astype(np.int64),
                            postings.indices, np.diff(postings.indptr).astype(np.int64), int(budget),
                            np.asarray(sample, dtype=np.int64))
        chunks = numba.get_num_threads() if chunks is None else chunks
        width, most = model.covers.shape[1], max(int(np.diff(bounds).max(initial=1)), 1)
        self._head_weight = np.zeros((chunks, width), dtype=np.float32)
        self._first = np.full((chunks, width), -1, dtype=np.int32)
        self._products = np.zeros((chunks, most * most), dtype=np.float64)

    def links(
        self, start: int, stop: int, k: int, weight: np.ndarray, look_statistics: tuple[np.ndarray, np.ndarray],
        floor: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Covers start to stop's ``k`` best tails (one row per cover, best first, -1 past the last) and their
        weights (max(score, 0)). A cover's score of a tail: (1 - weight) times the look's z-score over all
        covers (``look_statistics``: each cover's mean and spread) plus weight times the words' (words below
        ``floor`` as none), whose mean and spread are exact over the cover's candidates plus, for every other
        cover, the mean over the sampled covers that are not candidates. Ties keep the candidates' order
        (ascending), then the sample's."""
        look_mean, look_std = look_statistics
        return _links(start, stop, k, floor, np.asarray(weight, dtype=np.float64),
                      np.asarray(look_mean, dtype=np.float32), np.asarray(look_std, dtype=np.float32), *self._rows,
                      *self._candidates, self._head_weight, self._first, self._products)


def pair_scores(
    vectors: np.ndarray, model: textsearch.TextModel, bounds: np.ndarray, heads: np.ndarray, tails: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(look, words) of each pair p as GraphPass scores it: vectors[heads[p]] . vectors[tails[p]] and the words
    similarity of the two covers (``bounds`` as GraphPass takes it), serially."""
    width, most = model.covers.shape[1], max(int(np.diff(bounds).max(initial=1)), 1)
    return _pair_scores(np.asarray(heads, dtype=np.int64), np.asarray(tails, dtype=np.int64),
                        *_rows(vectors, model, bounds), np.zeros(width, dtype=np.float32),
                        np.full(width, -1, dtype=np.int32), np.zeros(most * most, dtype=np.float64))


def _rows(vectors: np.ndarray, model: textsearch.TextModel, bounds: np.ndarray) -> tuple[np.ndarray, ...]:
    covers, lines = model.covers, model.lines
    return (np.ascontiguousarray(vectors, dtype=np.float32), covers.indptr.astype(np.int64), covers.indices,
            covers.data, lines.indptr.astype(np.int64), lines.indices, lines.data, np.asarray(bounds, dtype=np.int64))


@numba.njit(cache=True, nogil=True, parallel=True)
def _links(start, stop, k, floor, weight, look_mean, look_std, vectors, cover_ptr, cover_terms, cover_weights,
           line_ptr, line_terms, line_weights, bounds, nearest, post_ptr, post_covers, frequency, budget, sample,
           head_weight, first, products):  # pragma: no cover - compiled
    size = stop - start
    chunks = len(head_weight)
    best_tails = np.full((size, k), -1, dtype=np.int64)
    best_weights = np.zeros((size, k), dtype=np.float64)
    for chunk in numba.prange(chunks):
        for head in range(start + size * chunk // chunks, start + size * (chunk + 1) // chunks):
            tails, scored = _candidates(head, nearest, cover_ptr, cover_terms, post_ptr, post_covers, frequency,
                                        budget, sample)
            look = np.empty(len(tails), dtype=np.float32)
            words = np.empty(len(tails), dtype=np.float64)
            _score_head(head, tails, vectors, cover_ptr, cover_terms, cover_weights, line_ptr, line_terms,
                        line_weights, bounds, head_weight[chunk], first[chunk], products[chunk], look, words)
            _best(head, tails, scored, look, words, len(look_mean), k, floor, weight[head], look_mean[head],
                  look_std[head], best_tails[head - start], best_weights[head - start])
    return best_tails, best_weights


@numba.njit(cache=True, nogil=True)
def _candidates(head, nearest, cover_ptr, cover_terms, post_ptr, post_covers, frequency, budget,
                sample):  # pragma: no cover - compiled
    """The tails ``head`` is scored against, and how many of them are candidates: the candidates ascending
    (``head`` itself, its nearest by look, the covers sharing its rarest n-grams, postings taken rarest first
    while their total stays within ``budget``), then the sampled covers that are not candidates, ascending."""
    terms = cover_terms[cover_ptr[head] : cover_ptr[head + 1]]
    often = np.empty(len(terms), dtype=np.int64)
    for i in range(len(terms)):
        often[i] = frequency[terms[i]]
    order = np.argsort(often, kind="mergesort")  # rarest first, ties in the row's order
    total, taken = 0, 0
    while taken < len(order) and total + often[order[taken]] <= budget:
        total += often[order[taken]]
        taken += 1
    found = np.empty(1 + nearest.shape[1] + total, dtype=np.int64)
    found[0] = head
    n = 1
    for near in nearest[head]:
        if near >= 0:
            found[n] = near
            n += 1
    for i in order[:taken]:
        for e in range(post_ptr[terms[i]], post_ptr[terms[i] + 1]):
            found[n] = post_covers[e]
            n += 1
    candidates = np.unique(found[:n])
    tails = np.empty(len(candidates) + len(sample), dtype=np.int64)
    tails[: len(candidates)] = candidates
    n, c = len(candidates), 0
    for cover in sample:
        while c < len(candidates) and candidates[c] < cover:
            c += 1
        if c == len(candidates) or candidates[c] != cover:
            tails[n] = cover
            n += 1
    return tails[:n], len(candidates)


@numba.njit(cache=True, nogil=True)
def _best(head, tails, scored, look, words, count, k, floor, weight, look_mean, look_std, best_tails,
          best_weights):  # pragma: no cover - compiled
    """``head``'s k best of ``tails`` (the first ``scored`` its candidates, the rest sampled covers standing for
    the covers that are not candidates) into best_tails and best_weights."""
    total, square, rest_total, rest_square = 0.0, 0.0, 0.0, 0.0
    for p in range(len(tails)):
        if words[p] < floor:
            words[p] = 0.0
        if p < scored:
            total += words[p]
            square += words[p] ** 2
        else:
            rest_total += words[p]
            rest_square += words[p] ** 2
    rest = (count - scored) / max(len(tails) - scored, 1)
    mean = (total + rest * rest_total) / count
    spread = np.sqrt(max((square + rest * rest_square) / count - mean**2, 0.0))
    scores = np.empty(len(tails) - 1, dtype=np.float64)
    others = np.empty(len(tails) - 1, dtype=np.int64)
    n = 0
    for p in range(len(tails)):
        if tails[p] != head:
            look_z = (look[p] - look_mean) / look_std if look_std > 0 else np.float32(0.0)
            words_z = (words[p] - mean) / spread if spread > 0 else 0.0
            scores[n] = (1.0 - weight) * np.float64(look_z) + weight * words_z
            others[n] = tails[p]
            n += 1
    order = np.argsort(-scores[:n], kind="mergesort")
    for i in range(min(k, n)):
        best_tails[i] = others[order[i]]
        best_weights[i] = max(scores[order[i]], 0.0)


@numba.njit(cache=True, nogil=True)
def _pair_scores(heads, tails, vectors, cover_ptr, cover_terms, cover_weights, line_ptr, line_terms, line_weights,
                 bounds, head_weight, first, products):  # pragma: no cover - compiled
    look = np.empty(len(heads), dtype=np.float32)
    words = np.empty(len(heads), dtype=np.float64)
    for p in range(len(heads)):
        _score_head(heads[p], tails[p : p + 1], vectors, cover_ptr, cover_terms, cover_weights, line_ptr, line_terms,
                    line_weights, bounds, head_weight, first, products, look[p : p + 1], words[p : p + 1])
    return look, words


@numba.njit(cache=True, nogil=True, fastmath=True)
def _dot(vectors: np.ndarray, left: int, right: int) -> float:
    total = np.float32(0.0)
    for d in range(vectors.shape[1]):
        total += vectors[left, d] * vectors[right, d]
    return total


@numba.njit(cache=True, nogil=True)
def _score_head(head, tails, vectors, cover_ptr, cover_terms, cover_weights, line_ptr, line_terms, line_weights,
                bounds, head_weight, first, products, look, words):  # pragma: no cover - compiled
    """The look and words of ``head`` against each of ``tails`` into look and words. ``head_weight`` (the
    head's cover row, dense), ``first`` (per n-gram, the head's first line entry printing it) and ``products``
    (line products, at least the most lines squared) come all zero, -1 and zero, and are left so."""
    for e in range(cover_ptr[head], cover_ptr[head + 1]):
        head_weight[cover_terms[e]] = cover_weights[e]
    start, stop = line_ptr[bounds[head]], line_ptr[bounds[head + 1]]
    following = np.empty(stop - start, dtype=np.int32)  # per head line entry: the next entry printing its n-gram
    entry_line = np.empty(stop - start, dtype=np.int64)
    entry_weight = np.empty(stop - start, dtype=np.float64)
    for line in range(bounds[head], bounds[head + 1]):
        for e in range(line_ptr[line], line_ptr[line + 1]):
            slot = e - start
            following[slot] = first[line_terms[e]]
            first[line_terms[e]] = slot
            entry_line[slot] = line - bounds[head]
            entry_weight[slot] = line_weights[e]
    for p in range(len(tails)):
        tail = tails[p]
        look[p] = _dot(vectors, head, tail)
        whole = 0.0
        for e in range(cover_ptr[tail], cover_ptr[tail + 1]):
            whole += head_weight[cover_terms[e]] * cover_weights[e]
        best = 0.0
        if whole > 0.0:  # a line's n-grams are its cover's: none in common, no line in common
            own = bounds[tail + 1] - bounds[tail]
            used = (bounds[head + 1] - bounds[head]) * own
            for line in range(bounds[tail], bounds[tail + 1]):
                column = line - bounds[tail]
                for e in range(line_ptr[line], line_ptr[line + 1]):
                    slot = first[line_terms[e]]
                    while slot >= 0:
                        products[entry_line[slot] * own + column] += entry_weight[slot] * line_weights[e]
                        slot = following[slot]
            for i in range(used):
                best = max(best, products[i])
                products[i] = 0.0
        words[p] = 0.5 * whole + 0.5 * best
    for e in range(cover_ptr[head], cover_ptr[head + 1]):
        head_weight[cover_terms[e]] = 0.0
    for e in range(start, stop):
        first[line_terms[e]] = -1
