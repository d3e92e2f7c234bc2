"""FAISS indexes over unit vectors, where inner product is cosine similarity.

``flat`` is exact and answers a query in a few milliseconds up to FLAT_LIMIT covers. ``hnsw`` answers in well
under a millisecond at a million covers with recall@10 near 0.99, at the cost of build time (8 minutes for 1M
on 2 quiet cores, 17 on busy ones) and ~1.13x the raw vector memory. ``ivfpq`` stores ~80 bytes per 512-d
vector instead of ~2,300, for collections that would not fit in memory otherwise; re-scoring its candidates
with the exact vectors (``search``) brings recall@10 at 1M from 0.47 to 0.94. The numbers behind these
defaults come from ``bench/search.py``; docs/search-bench.md has the tables.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import faiss
import numpy as np

from index.errors import SleeveError
from index.registry import INDEX_TYPES, IndexConfigError

FLAT_LIMIT = 50_000
"""Collections up to this size use exact search by default: a query scans every vector, 1.1 ms at 20k, 3.9 ms at
50k and ~8 ms at 100k on one core (bench/search.py); at 10k HNSW is no faster, and it builds 100k in 75 s."""
IVFPQ_MIN_COUNT = 10_000
"""Product quantisation learns 256 centroids per sub-space and wants ~39 training points for each."""

# HNSW, measured at 1M clustered 512-d vectors (bench/search.py). recall@10 at efSearch 128 by efConstruction:
# 40 -> 0.936, 80 -> 0.960, 160 -> 0.986; 160 builds ~1.5x slower than 80 (17 min on 2 busy cores) but
# reaches 0.974 already at efSearch 64. At 100k, M 16 lost recall (0.974 vs 0.989 at efSearch 128) and M 48
# matched M 32's recall per millisecond while costing 128 more bytes a vector; M 48 was not measured at 1M.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 160
# efSearch 64 would give 0.974 in 0.4 ms at 1M; 128 gives 0.986 in 0.7 ms (p50, one thread), and encoding the
# query cover costs far more than either, so recall wins.
HNSW_EF_SEARCH = 128
# IVF-PQ recall is capped by the 64-byte codes, not by the lists probed: at 1M it is 0.472 at nprobe 8,
# 0.474 at 16 and 0.476 at 128, while latency grows ~1.5x with every doubling.
IVF_NPROBE = 16
RERANK_FACTOR = 10
"""An IVF-PQ search fetches this many times k candidates and re-scores them with the exact vectors, which
sleeve keeps memory-mapped on disk beside the index (bench/search.py: "ivfpq + exact re-rank" rows)."""


class SearchParamsError(SleeveError):
    """Search parameters that the index cannot take (see :func:`apply_search_params`)."""


def choose_index_type(count: int, dim: int, memory_budget_bytes: int | None = None) -> str:
    """``auto``: exact up to FLAT_LIMIT vectors, then HNSW, or IVF-PQ when HNSW would not fit the budget.

    IVF-PQ is never picked on size alone: HNSW finds more of the true top 10 (0.986 against 0.942 at 1M).
    """
    if count <= FLAT_LIMIT:
        return "flat"
    hnsw_bytes = count * (dim * 4 + HNSW_M * 2 * 4)
    if memory_budget_bytes is not None and hnsw_bytes > memory_budget_bytes:
        return "ivfpq"
    return "hnsw"


def auto_index_type(count: int, dim: int) -> str:
    """The ``auto`` rule of index.registry.INDEX_TYPES: :func:`choose_index_type` within this machine's memory."""
    return choose_index_type(count, dim, memory_budget_bytes())


def memory_budget_bytes() -> int | None:
    """What ``auto`` may spend on an index: half the memory available now (the other half for the vectors it is
    built from: build-index's memory-mapped file in the page cache, an in-memory index's array). None where the
    OS does not say (no /proc/meminfo)."""
    try:
        with open("/proc/meminfo") as meminfo:
            available_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return available_kib * 1024 // 2


def build_faiss_index(vectors: np.ndarray, index_type: str) -> tuple[faiss.Index, dict[str, Any]]:
    """Index ``vectors`` (N, d) float32 unit rows with a registered type (index.registry); returns the index
    and the search parameters it uses."""
    build = INDEX_TYPES[index_type].load()
    index, params = build(np.ascontiguousarray(vectors, dtype=np.float32))
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    apply_search_params(index, params)
    return index, params


def build_flat(vectors: np.ndarray) -> tuple[faiss.Index, dict[str, Any]]:
    return faiss.IndexFlatIP(vectors.shape[1]), {}


def build_hnsw(vectors: np.ndarray) -> tuple[faiss.Index, dict[str, Any]]:
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index, {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}


def build_ivfpq(vectors: np.ndarray) -> tuple[faiss.Index, dict[str, Any]]:
    """Trained on a sample of ``vectors``; the caller adds them."""
    count = len(vectors)
    check_ivfpq_count(count)
    return train_ivfpq(training_sample(vectors, ivf_lists(count)), count)


def check_ivfpq_count(count: int) -> None:
    """Refuse a collection too small to train product quantisers on."""
    if count < IVFPQ_MIN_COUNT:
        raise IndexConfigError(f"ivfpq needs at least {IVFPQ_MIN_COUNT:,} vectors (got {count:,}); use flat")


def train_ivfpq(sample: np.ndarray, count: int) -> tuple[faiss.IndexIVFPQ, dict[str, Any]]:
    """An empty IVF-PQ index for ``count`` vectors, trained on ``sample``; returns it and its search parameters."""
    dim = sample.shape[1]
    nlist = ivf_lists(count)
    subquantizers = pq_subquantizers(dim)
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, subquantizers, 8, faiss.METRIC_INNER_PRODUCT)
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index, {"nlist": nlist, "m": subquantizers, "nbits": 8, "nprobe": min(IVF_NPROBE, nlist)}


def search(
    index: faiss.Index, queries: np.ndarray, k: int, exact_vectors: np.ndarray | None = None,
    rerank: int = RERANK_FACTOR,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, row ids) of each unit query in ``queries`` (n, d), one row each (n, k); ids of -1 mean
    fewer than k were found. FAISS answers a matrix of queries in one call, much faster than one call each.

    Given ``exact_vectors`` (the index's rows, e.g. memory-mapped), ``rerank * k`` candidates per query
    are re-scored exactly: a compressed index then ranks as well as its candidate lists allow, while the
    full vectors stay on disk and only the candidates' rows are read, once however many queries share them.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, index.d)
    if exact_vectors is None:
        return index.search(queries, k)
    _, candidates = index.search(queries, k * rerank)
    missing = candidates < 0
    # each query's candidates ascending (missing last): a tie keeps the lower row
    candidates = np.sort(np.where(missing, np.iinfo(np.int64).max, candidates), axis=1)
    missing = np.sort(missing, axis=1)
    rows = np.unique(candidates[~missing])  # ascending rows read the file front to back
    exact = np.full((len(queries), len(rows) + 1), -np.inf, dtype=np.float32)  # the last column: missing
    exact[:, :-1] = (np.asarray(exact_vectors[rows]) @ queries.T).T
    scores = np.take_along_axis(exact, np.where(missing, len(rows), np.searchsorted(rows, candidates)), axis=1)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(scores, top, axis=1)
    return scores, np.where(np.isfinite(scores), np.take_along_axis(candidates, top, axis=1), -1)


def apply_search_params(index: faiss.Index, params: dict[str, Any]) -> None:
    """Set query-time knobs (efSearch, nprobe), which FAISS files do not always keep.

    They come from ``index.json``, which a person or a damaged disk may have changed: a value that is not a
    positive integer, or a knob the index does not have (nprobe on a flat index), raises SearchParamsError.
    """
    for name in ("efSearch", "nprobe"):
        if name not in params:
            continue
        value = params[name]
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not 1 <= value < 2**31:
            raise SearchParamsError(f"{name} must be a positive integer, not {value!r:.40}")
        setattr(_knob_owner(index, name), name, int(value))


def _knob_owner(index: faiss.Index, name: str) -> Any:
    """The FAISS object that holds the knob ``name`` (the HNSW graph, the inverted file)."""
    if name == "efSearch":
        owner = getattr(faiss.downcast_index(index), "hnsw", None)
    else:
        try:
            owner = faiss.extract_index_ivf(index)
        except RuntimeError:  # FAISS's way of saying the index has no inverted file
            owner = None
    if owner is None:
        kind = type(faiss.downcast_index(index)).__name__
        raise SearchParamsError(f"{name} is set, but a {kind} has no {name}")
    return owner


def ivf_lists(count: int) -> int:
    """About 4 * sqrt(N) inverted lists, with at least 39 training points per list as FAISS asks."""
    return int(max(1, min(4 * math.sqrt(count), count // 39)))


def pq_subquantizers(dim: int) -> int:
    """Bytes per vector: the largest divisor of ``dim`` up to dim/8 (512-d -> 64 bytes).

    dim/16 (32 bytes) kept recall@10 at 0.52 at 100k; dim/8 raises it to 0.63 for 32 more bytes a vector.
    """
    target = max(1, dim // 8)
    return max(m for m in range(1, target + 1) if dim % m == 0)


def training_sample(vectors: np.ndarray, nlist: int, per_list: int = 100) -> np.ndarray:
    """``per_list`` rows per inverted list (at least 10,000), drawn with a fixed seed; all rows when fewer."""
    size = min(len(vectors), max(nlist * per_list, 10_000))
    if size == len(vectors):
        return vectors
    rows = np.random.default_rng(0).choice(len(vectors), size=size, replace=False)
    return vectors[np.sort(rows)]
