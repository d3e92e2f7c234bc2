"""IVF-PQ built from shards equals the index built in one go: same ids, same answers, same recall."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from index.faiss_index import build_faiss_index, ivf_lists, training_sample
from index.sharded import build_ivfpq_sharded, encode_shard, merge_on_disk

COUNT, DIM, K = 12_000, 32, 10


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    """Unit vectors around 200 centres, like embeddings of covers that come in families."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(200, DIM))
    rows = centres[rng.integers(0, 200, COUNT)] + 0.6 * rng.normal(size=(COUNT, DIM))
    rows = rows.astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def queries(vectors: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(8)
    noisy = vectors[rng.choice(COUNT, 300, replace=False)] + 0.1 * rng.normal(size=(300, DIM)).astype(np.float32)
    return np.ascontiguousarray(noisy / np.linalg.norm(noisy, axis=1, keepdims=True), dtype=np.float32)


def shards_of(vectors: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(vectors, np.cumsum(sizes)[:-1])


def stored_ids(index: faiss.Index) -> np.ndarray:
    lists = faiss.extract_index_ivf(index).invlists
    ids = [faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n)).copy() for n in range(lists.nlist)]
    return np.sort(np.concatenate(ids))


def recall(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray) -> float:
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :K]
    _, found = index.search(queries, K)
    return float(np.mean([len(set(t) & set(f)) / K for t, f in zip(truth, found)]))


def test_shards_merged_equal_the_index_built_in_one_go(vectors: np.ndarray, queries: np.ndarray) -> None:
    one_go, one_go_params = build_faiss_index(vectors, "ivfpq")
    sample = training_sample(vectors, ivf_lists(COUNT))
    sharded, params = build_ivfpq_sharded(shards_of(vectors, [5_000, 3_000, 4_000]), sample, threads=2)

    assert params == one_go_params
    assert sharded.ntotal == one_go.ntotal == COUNT
    assert np.array_equal(stored_ids(sharded), np.arange(COUNT))
    _, expected = one_go.search(queries, K)
    _, got = sharded.search(queries, K)
    assert np.array_equal(got, expected)  # same training sample: the same codes in the same lists
    assert recall(sharded, vectors, queries) == recall(one_go, vectors, queries) > 0.3


def test_shards_merged_on_disk_answer_like_memory(vectors: np.ndarray, queries: np.ndarray, tmp_path) -> None:
    in_memory, params = build_ivfpq_sharded(shards_of(vectors, [7_000, 5_000]), vectors)
    trained = faiss.clone_index(in_memory)
    trained.reset()
    files = []
    for number, (shard, first_id) in enumerate(zip(shards_of(vectors, [7_000, 5_000]), [0, 7_000])):
        files.append(tmp_path / f"shard-{number}.faiss")
        faiss.write_index(encode_shard(trained, shard, first_id), str(files[-1]))
    faiss.write_index(merge_on_disk(trained, files, tmp_path / "lists.ivfdata", params), str(tmp_path / "merged"))
    on_disk = faiss.read_index(str(tmp_path / "merged"))  # its lists stay in lists.ivfdata, memory-mapped
    faiss.extract_index_ivf(on_disk).nprobe = params["nprobe"]

    code_bytes = COUNT * (params["m"] + 8)  # a PQ code and an id per vector
    assert (tmp_path / "lists.ivfdata").stat().st_size >= code_bytes > (tmp_path / "merged").stat().st_size
    _, expected = in_memory.search(queries, K)
    _, got = on_disk.search(queries, K)
    assert np.array_equal(got, expected)
