"""The neighbour graph's two scores for a list of cover pairs, compiled (numba): the look's inner product and
textsearch.words_similarity, computed pair by pair from the rows in place, in parallel over runs of heads.

The graph scores a few hundred candidate pairs per cover, nearly all with a different tail. Sparse products
over all pairs in scipy copy every tail's cover and line rows, build matrices of them and reduce those (three
to five passes over the copies); here each tail row is read once, against its head scattered into dense
arrays, so the pairs cost what reading their tails costs (bench/graph.py, docs/scale.md). The pairs are cut
into one chunk per thread (numba's thread count: the cores, or NUMBA_NUM_THREADS), each cut between two runs
of heads, and each chunk scatters into dense arrays of its own; a pair's sums run in the same order whatever
the chunks, so the scores are those of one serial pass. Imported only where a graph is built: compiling takes
a few seconds, cached on disk after the first run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:
    from recsys import textsearch


class PairScorer:
    """pair_scores over one collection, called once per block of heads: the collection's rows are converted
    once and the chunks' dense arrays (two of the vocabulary's width each) allocated once and left clean by
    every call, so a call costs what its pairs cost, not what the collection's size does."""

    def __init__(
        self, vectors: np.ndarray, model: textsearch.TextModel, bounds: np.ndarray, chunks: int | None = None
    ) -> None:
        """``chunks``: how many parts each call's pairs are cut into, one per numba thread when not given."""
        covers, lines = model.covers, model.lines
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._rows = (covers.indptr.astype(np.int64), covers.indices, covers.data, lines.indptr.astype(np.int64),
                      lines.indices, lines.data, np.asarray(bounds, dtype=np.int64))
        chunks = numba.get_num_threads() if chunks is None else chunks
        self._head_weight = np.zeros((chunks, covers.shape[1]), dtype=np.float32)
        self._first = np.full((chunks, covers.shape[1]), -1, dtype=np.int32)

    def __call__(self, heads: np.ndarray, tails: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(look, words) of each pair p: vectors[heads[p]] . vectors[tails[p]] and the words similarity of the
        two covers. Fastest with the pairs grouped by head: each head is scattered once per run of its pairs."""
        heads = np.asarray(heads, dtype=np.int64)
        cuts = _cuts(heads, len(self._first))
        return _pair_scores(self._vectors, heads, np.asarray(tails, dtype=np.int64), *self._rows, cuts,
                            self._head_weight, self._first)


def pair_scores(
    vectors: np.ndarray, model: textsearch.TextModel, bounds: np.ndarray, heads: np.ndarray, tails: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(look, words) of each pair p: vectors[heads[p]] . vectors[tails[p]] and the words similarity of the two
    indexed covers. ``bounds`` gives each cover's run of line rows (cover c: bounds[c] to bounds[c + 1]).
    One call; a caller scoring many blocks of pairs keeps a PairScorer."""
    return PairScorer(vectors, model, bounds)(heads, tails)


def _cuts(heads: np.ndarray, chunks: int) -> np.ndarray:
    """Where each of ``chunks`` parts of the pairs begins and ends (chunks + 1 positions, ascending, some parts
    possibly empty): each cut at the start of a run of one head (or the end) nearest to equal numbers of pairs."""
    starts = np.r_[np.flatnonzero(np.r_[True, heads[1:] != heads[:-1]]) if len(heads) else [], len(heads)]
    targets = np.arange(1, chunks) * len(heads) / chunks
    after = np.searchsorted(starts, targets)
    before = np.maximum(after - 1, 0)
    nearest = np.where(targets - starts[before] <= starts[after] - targets, starts[before], starts[after])
    return np.r_[0, nearest, len(heads)].astype(np.int64)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _dot(vectors: np.ndarray, left: int, right: int) -> float:
    total = np.float32(0.0)
    for d in range(vectors.shape[1]):
        total += vectors[left, d] * vectors[right, d]
    return total


@numba.njit(cache=True, nogil=True, parallel=True)
def _pair_scores(vectors, heads, tails, cover_ptr, cover_terms, cover_weights, line_ptr, line_terms, line_weights,
                 bounds, cuts, head_weight, first):  # pragma: no cover - compiled
    look = np.empty(len(heads), dtype=np.float32)
    words = np.empty(len(heads), dtype=np.float64)
    for chunk in numba.prange(len(cuts) - 1):
        _score_chunk(vectors, heads, tails, cover_ptr, cover_terms, cover_weights, line_ptr, line_terms,
                     line_weights, bounds, cuts[chunk], cuts[chunk + 1], head_weight[chunk], first[chunk], look, words)
    return look, words


@numba.njit(cache=True, nogil=True)
def _score_chunk(vectors, heads, tails, cover_ptr, cover_terms, cover_weights, line_ptr, line_terms, line_weights,
                 bounds, begin, end, head_weight, first, look, words):  # pragma: no cover - compiled
    """Pairs begin to end into look and words. ``head_weight`` (the head's cover row, dense) and ``first`` (per
    n-gram, the head's first line entry printing it) come all zero and -1, and are left so."""
    if begin == end:
        return
    most_head, most_tail = 1, 1
    for p in range(begin, end):
        most_head = max(most_head, bounds[heads[p] + 1] - bounds[heads[p]])
        most_tail = max(most_tail, bounds[tails[p] + 1] - bounds[tails[p]])
    products = np.zeros(most_head * most_tail, dtype=np.float64)
    following = np.empty(0, dtype=np.int32)  # per head line entry: the next entry printing its n-gram
    entry_line = np.empty(0, dtype=np.int64)
    entry_weight = np.empty(0, dtype=np.float64)
    head = -1
    for p in range(begin, end):
        if heads[p] != head:
            if head >= 0:
                _clear(head, cover_ptr, cover_terms, line_ptr, line_terms, bounds, head_weight, first)
            head = heads[p]
            for e in range(cover_ptr[head], cover_ptr[head + 1]):
                head_weight[cover_terms[e]] = cover_weights[e]
            start, stop = line_ptr[bounds[head]], line_ptr[bounds[head + 1]]
            following = np.empty(stop - start, dtype=np.int32)
            entry_line = np.empty(stop - start, dtype=np.int64)
            entry_weight = np.empty(stop - start, dtype=np.float64)
            for line in range(bounds[head], bounds[head + 1]):
                for e in range(line_ptr[line], line_ptr[line + 1]):
                    slot = e - start
                    following[slot] = first[line_terms[e]]
                    first[line_terms[e]] = slot
                    entry_line[slot] = line - bounds[head]
                    entry_weight[slot] = line_weights[e]
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
    _clear(head, cover_ptr, cover_terms, line_ptr, line_terms, bounds, head_weight, first)


@numba.njit(cache=True, nogil=True)
def _clear(head, cover_ptr, cover_terms, line_ptr, line_terms, bounds, head_weight, first):  # pragma: no cover
    """The dense arrays back to all zero and -1 after ``head``."""
    for e in range(cover_ptr[head], cover_ptr[head + 1]):
        head_weight[cover_terms[e]] = 0.0
    for e in range(line_ptr[bounds[head]], line_ptr[bounds[head + 1]]):
        first[line_terms[e]] = -1
