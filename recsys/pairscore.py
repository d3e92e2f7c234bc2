"""The neighbour graph's two scores for a list of cover pairs, compiled (numba): the look's inner product and
textsearch.words_similarity, computed pair by pair from the rows in place.

The graph scores a few hundred candidate pairs per cover, nearly all with a different tail. Sparse products
over all pairs in scipy copy every tail's cover and line rows, build matrices of them and reduce those (three
to five passes over the copies); here each tail row is read once, against its head scattered into dense
arrays, so the pairs cost what reading their tails costs (bench/graph.py, docs/scale.md). Imported only where
a graph is built: compiling takes a few seconds, cached on disk after the first run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np

if TYPE_CHECKING:
    from recsys import textsearch


def pair_scores(
    vectors: np.ndarray, model: textsearch.TextModel, bounds: np.ndarray, heads: np.ndarray, tails: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(look, words) of each pair p: vectors[heads[p]] . vectors[tails[p]] and the words similarity of the two
    indexed covers. ``bounds`` gives each cover's run of line rows (cover c: bounds[c] to bounds[c + 1]).
    Fastest with the pairs grouped by head: each head is scattered once per run of its pairs."""
    covers, lines = model.covers, model.lines
    return _pair_scores(
        np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(heads, dtype=np.int64),
        np.asarray(tails, dtype=np.int64), covers.indptr.astype(np.int64), covers.indices, covers.data,
        lines.indptr.astype(np.int64), lines.indices, lines.data, np.asarray(bounds, dtype=np.int64),
        covers.shape[1],
    )


@numba.njit(cache=True, nogil=True, fastmath=True)
def _dot(vectors: np.ndarray, left: int, right: int) -> float:
    total = np.float32(0.0)
    for d in range(vectors.shape[1]):
        total += vectors[left, d] * vectors[right, d]
    return total


@numba.njit(cache=True, nogil=True)
def _pair_scores(vectors, heads, tails, cover_ptr, cover_terms, cover_weights, line_ptr, line_terms, line_weights,
                 bounds, width):  # pragma: no cover - compiled
    pairs = len(heads)
    look = np.empty(pairs, dtype=np.float32)
    words = np.empty(pairs, dtype=np.float64)
    head_weight = np.zeros(width, dtype=np.float32)  # the head's cover row, dense
    first = np.full(width, -1, dtype=np.int32)  # per n-gram, the head's first line entry printing it
    most_lines = 1
    for cover in range(len(bounds) - 1):
        most_lines = max(most_lines, bounds[cover + 1] - bounds[cover])
    following = np.empty(0, dtype=np.int32)  # per head line entry: the next entry printing its n-gram
    entry_line = np.empty(0, dtype=np.int64)
    entry_weight = np.empty(0, dtype=np.float64)
    products = np.zeros(most_lines * most_lines, dtype=np.float64)
    head = -1
    for p in range(pairs):
        if heads[p] != head:
            if head >= 0:  # clear the last head
                for e in range(cover_ptr[head], cover_ptr[head + 1]):
                    head_weight[cover_terms[e]] = 0.0
                for e in range(line_ptr[bounds[head]], line_ptr[bounds[head + 1]]):
                    first[line_terms[e]] = -1
            head = heads[p]
            for e in range(cover_ptr[head], cover_ptr[head + 1]):
                head_weight[cover_terms[e]] = cover_weights[e]
            start, end = line_ptr[bounds[head]], line_ptr[bounds[head + 1]]
            following = np.empty(end - start, dtype=np.int32)
            entry_line = np.empty(end - start, dtype=np.int64)
            entry_weight = np.empty(end - start, dtype=np.float64)
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
    return look, words
