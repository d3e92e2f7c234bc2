"""Each index type finds the true neighbours on clustered data, and ``auto`` picks the type the size calls for.

Recall bounds are loose on purpose: they catch a broken index (wrong metric, lost search parameters, vectors
added twice), not a regression of a few points, which ``bench/search.py`` measures. No timing is asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from index.faiss_index import (
    FLAT_LIMIT,
    HNSW_M,
    IVFPQ_MIN_COUNT,
    IndexConfigError,
    SearchParamsError,
    apply_search_params,
    build_faiss_index,
    choose_index_type,
    memory_budget_bytes,
    search,
)

DIM = 128
COUNT = 20_000
K = 10


def clustered_unit_vectors(count: int, seed: int, clusters: int = 200) -> np.ndarray:
    """Gaussian clusters with power-law noise, normalised: neighbours at cosine ~0.6, as with real covers.

    Isotropic noise would make the data far harder to compress than real embeddings, whose variance sits in
    few directions; this is a small version of the generator in ``bench/search.py``.
    """
    centres = np.random.default_rng(0).standard_normal((clusters, DIM))
    scale = 1.0 / np.sqrt(np.arange(DIM) + 10.0)
    scale *= np.sqrt(DIM) / np.linalg.norm(scale)
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(clusters, size=count)] + rng.standard_normal((count, DIM)) * scale
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered_unit_vectors(COUNT, seed=1)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered_unit_vectors(200, seed=2)


@pytest.fixture(scope="module")
def truth(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    exact = faiss.IndexFlatIP(DIM)
    exact.add(vectors)
    return exact.search(queries, K)[1]


@pytest.fixture(scope="module")
def built(vectors: np.ndarray) -> Iterator[dict[str, tuple[faiss.Index, dict]]]:
    """Built on one thread: a parallel HNSW build inserts in a different order each run, and on a busy machine
    idle OpenMP threads spin and make training several times slower."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield {kind: build_faiss_index(vectors, kind) for kind in ("flat", "hnsw", "ivfpq")}
    finally:
        faiss.omp_set_num_threads(threads)


def recall(index: faiss.Index, queries: np.ndarray, truth: np.ndarray) -> float:
    found = index.search(queries, K)[1]
    return float(np.mean([len(np.intersect1d(a, b)) / K for a, b in zip(found, truth)]))


# A broken index (wrong metric, lost parameters, shuffled ids) scores near 0; IVF-PQ's 16-byte codes at 128-d
# score ~0.54 here, so its bound leaves room for k-means to land differently on another machine.
@pytest.mark.parametrize(("kind", "bound"), [("flat", 1.0), ("hnsw", 0.9), ("ivfpq", 0.4)])
def test_each_index_type_finds_the_exact_neighbours(built, queries, truth, kind: str, bound: float) -> None:
    index, _ = built[kind]
    assert index.ntotal == COUNT
    assert recall(index, queries, truth) >= bound


def test_scores_are_cosine_similarities(built, vectors: np.ndarray) -> None:
    scores, ids = built["flat"][0].search(vectors[:5], 1)
    assert ids[:, 0].tolist() == list(range(5))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize(("kind", "knob"), [("hnsw", "efSearch"), ("ivfpq", "nprobe")])
def test_search_params_round_trip_through_serialisation(built, queries, kind: str, knob: str) -> None:
    index, params = built[kind]
    changed = {**params, knob: params[knob] // 2}
    apply_search_params(index, changed)
    try:
        loaded = faiss.deserialize_index(faiss.serialize_index(index))
        apply_search_params(loaded, changed)
        if kind == "hnsw":
            assert faiss.downcast_index(loaded).hnsw.efSearch == changed[knob]
        else:
            assert faiss.extract_index_ivf(loaded).nprobe == changed[knob]
        np.testing.assert_array_equal(loaded.search(queries, K)[1], index.search(queries, K)[1])
    finally:
        apply_search_params(index, params)


@pytest.mark.parametrize(("kind", "params", "problem"), [
    ("flat", {"nprobe": 8}, "IndexFlatIP has no nprobe"),
    ("hnsw", {"nprobe": 8}, "has no nprobe"),
    ("ivfpq", {"efSearch": 64}, "has no efSearch"),
    ("hnsw", {"efSearch": "64"}, "positive integer"),
    ("hnsw", {"efSearch": 64.5}, "positive integer"),
    ("hnsw", {"efSearch": True}, "positive integer"),
    ("hnsw", {"efSearch": -1}, "positive integer"),
    ("ivfpq", {"nprobe": 10**30}, "positive integer"),
])
def test_search_params_the_index_cannot_take_are_refused(built, kind: str, params: dict, problem: str) -> None:
    index, good = built[kind]
    with pytest.raises(SearchParamsError, match=problem):
        apply_search_params(index, params)
    apply_search_params(index, {**good, **{knob: np.int64(value) for knob, value in good.items()}})


def test_build_reports_the_parameters_in_effect(built) -> None:
    hnsw, params = built["hnsw"]
    assert faiss.downcast_index(hnsw).hnsw.efSearch == params["efSearch"]
    ivfpq, params = built["ivfpq"]
    assert faiss.extract_index_ivf(ivfpq).nprobe == params["nprobe"] <= params["nlist"]


def test_auto_picks_by_size_and_memory_budget() -> None:
    assert choose_index_type(1_000, DIM) == "flat"
    assert choose_index_type(FLAT_LIMIT, DIM) == "flat"
    assert choose_index_type(FLAT_LIMIT + 1, DIM) == "hnsw"
    hnsw_bytes = 10 * FLAT_LIMIT * (DIM * 4 + HNSW_M * 2 * 4)
    assert choose_index_type(10 * FLAT_LIMIT, DIM, memory_budget_bytes=2 * hnsw_bytes) == "hnsw"
    assert choose_index_type(10 * FLAT_LIMIT, DIM, memory_budget_bytes=hnsw_bytes // 2) == "ivfpq"


def test_the_memory_budget_is_half_of_what_the_os_reports_available() -> None:
    budget = memory_budget_bytes()
    if not Path("/proc/meminfo").is_file():
        assert budget is None
        return
    available_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                         if line.startswith("MemAvailable:"))
    assert budget is not None and abs(budget - available_kib * 512) < 0.2 * available_kib * 1024


def test_ivfpq_needs_enough_vectors_to_train(vectors: np.ndarray) -> None:
    with pytest.raises(IndexConfigError, match="at least"):
        build_faiss_index(vectors[: IVFPQ_MIN_COUNT - 1], "ivfpq")


def test_unknown_index_type_is_a_config_error(vectors: np.ndarray) -> None:
    with pytest.raises(IndexConfigError, match="unknown index type"):
        build_faiss_index(vectors[:100], "lsh")


def test_exact_re_rank_lifts_ivfpq_recall_and_keeps_exact_scores(built, vectors, queries, truth) -> None:
    index, _ = built["ivfpq"]
    plain = recall(index, queries, truth)
    reranked = search(index, queries, 10, exact_vectors=vectors)[1]
    reranked_recall = float(np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(reranked, truth)]))
    assert reranked_recall > plain + 0.1
    scores, ids = search(index, queries[:1], 10, exact_vectors=vectors)
    np.testing.assert_allclose(scores[0], vectors[ids[0]] @ queries[0], rtol=1e-5)
    assert np.all(np.diff(scores[0]) <= 0)


def test_re_rank_reads_the_rows_of_rerank_times_k_candidates(built, vectors, queries) -> None:
    """``rerank`` sets how many of the compressed index's candidates are re-scored: their rows alone are read."""
    index, _ = built["ivfpq"]

    class Rows:
        def __init__(self) -> None:
            self.read: list[int] = []

        def __getitem__(self, rows: np.ndarray) -> np.ndarray:
            self.read.extend(np.asarray(rows).tolist())
            return vectors[rows]

    for rerank in (1, 3, 10):
        rows = Rows()
        scores, ids = search(index, queries[:1], 10, exact_vectors=rows, rerank=rerank)
        assert len(rows.read) == 10 * rerank
        assert set(ids[0]) <= set(rows.read)
        np.testing.assert_allclose(scores[0], vectors[ids[0]] @ queries[0], rtol=1e-5)


def test_search_without_re_rank_is_the_plain_faiss_answer(built, queries) -> None:
    index, _ = built["hnsw"]
    scores, ids = search(index, queries[3:4], 10)
    expected_scores, expected_ids = index.search(queries[3][None], 10)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(scores, expected_scores)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_a_batch_of_queries_finds_what_each_query_alone_finds(built, vectors, queries, kind) -> None:
    """Searching many queries in one call (as recommend's both candidates do) changes no answer, re-ranked or
    not; a query with fewer than k candidates (k above the index's size) is padded with -1 in both."""
    index, _ = built[kind]
    rerank = vectors if kind == "ivfpq" else None
    batch = queries[:20]
    scores, ids = search(index, batch, K, exact_vectors=rerank)
    for row, query in enumerate(batch):
        alone_scores, alone_ids = search(index, query[None], K, exact_vectors=rerank)
        np.testing.assert_array_equal(ids[row], alone_ids[0])
        np.testing.assert_allclose(scores[row], alone_scores[0], rtol=1e-5)
    small = faiss.IndexFlatIP(DIM)
    small.add(vectors[:3])
    scores, ids = search(small, batch[:2], 5, exact_vectors=vectors[:3])
    assert (ids[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all() and (ids[:, :3] >= 0).all()
