"""IVF-PQ from shards: train once on a sample, encode shards in parallel (anywhere), merge in shard order.

A collection too big for one machine's time or memory is cut into shards of consecutive rows. Every shard is
added to its own copy of the trained, empty index (a thread here, or a worker elsewhere: only the small trained
index travels) under the collection's row ids, and the copies are merged in shard order. PQ codes
depend only on the trained quantisers, and merging appends each inverted list in order, so the result holds
the same ids and codes as the index built in one go. ``merge_on_disk`` writes the merged inverted lists to one
file that FAISS memory-maps when serving, for indexes larger than memory (docs/scale.md).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from faiss.contrib.ondisk import merge_ondisk

from index.faiss_index import (
    apply_search_params, build_faiss_index, check_ivfpq_count, ivf_lists, train_ivfpq, training_sample,
)

SHARD_ROWS = 65_536
"""Rows a shard adds at once: each thread reads its shard's rows (of a memory-mapped file: pages, not a copy)."""


def encode_shard(trained: faiss.Index, vectors: np.ndarray, first_id: int) -> faiss.Index:
    """A copy of the trained index holding ``vectors`` under the collection's ids first_id, first_id + 1, ..."""
    shard = faiss.clone_index(trained)
    ids = np.arange(first_id, first_id + len(vectors), dtype=np.int64)
    shard.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
    return shard


def build_ivfpq_sharded(
    shards: Sequence[np.ndarray], sample: np.ndarray, threads: int | None = None
) -> tuple[faiss.Index, dict[str, Any]]:
    """IVF-PQ over the rows of ``shards`` in order (ids 0..N-1), trained once on ``sample``."""
    sizes = [len(shard) for shard in shards]
    trained, params = train_ivfpq(sample, sum(sizes))
    first_ids = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
    merged = faiss.clone_index(trained)
    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:  # FAISS releases the GIL while adding
        for part in pool.map(functools.partial(encode_shard, trained), shards, first_ids):
            merged.merge_from(part, 0)  # lists are appended in shard order; the ids are already the collection's
    apply_search_params(merged, params)
    return merged, params


def build_ivfpq_in_shards(
    vectors: np.ndarray, rows_per_shard: int = SHARD_ROWS, threads: int | None = None
) -> tuple[faiss.Index, dict[str, Any]]:
    """IVF-PQ over ``vectors`` (e.g. memory-mapped), equal to ``build_faiss_index(vectors, "ivfpq")``: trained on
    the same sample of rows, then added in shards of consecutive rows, so that no copy of all rows is made."""
    check_ivfpq_count(len(vectors))
    sample = training_sample(vectors, ivf_lists(len(vectors)))
    shards = [vectors[start : start + rows_per_shard] for start in range(0, len(vectors), rows_per_shard)]
    return build_ivfpq_sharded(shards, sample, threads)


def build_from_rows(vectors: np.ndarray, index_type: str) -> tuple[faiss.Index, dict[str, Any]]:
    """The FAISS index of ``index_type`` over the (memory-mapped) unit rows ``vectors``: IVF-PQ, which keeps only
    codes, is added in shards of rows so that no copy of them all is made; the other types hold the vectors."""
    if index_type == "ivfpq":
        return build_ivfpq_in_shards(vectors)
    return build_faiss_index(vectors, index_type)


def merge_on_disk(
    trained: faiss.Index, shard_files: Sequence[str | Path], ivfdata: str | Path, params: dict[str, Any]
) -> faiss.Index:
    """Merge shard indexes saved with ``faiss.write_index`` into one whose inverted lists live in ``ivfdata``
    (``faiss.read_index`` of the written index maps them; IO_FLAG_MMAP on it crashes FAISS 1.15).

    The shards are memory-mapped while merging and the result reads its lists from disk, so neither needs the
    codes in memory; write the returned index with ``faiss.write_index`` beside ``ivfdata`` to serve it.
    """
    index = faiss.clone_index(trained)
    merge_ondisk(index, [str(path) for path in shard_files], str(ivfdata), shift_ids=False)
    apply_search_params(index, params)
    return index
