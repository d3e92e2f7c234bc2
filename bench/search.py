"""Search benchmark: sleeve's FAISS index types against exact search, at the sizes users will have.

For each collection size it builds every index type with ``index.faiss_index.build_faiss_index`` (exactly what
``sleeve build-index --index-type ...`` builds) and reports, in one markdown table:

- build s: wall time of ``build_faiss_index`` (training included), with all cores;
- recall@10: |approximate top 10 ∩ exact top 10| / 10, averaged over the queries; the exact top 10 comes
  from a separate ``faiss.IndexFlatIP`` over the same vectors;
- p50 / p95 ms: single-query latency, one query (batch of 1) after another, as ``sleeve recommend`` asks;
  FAISS runs with ``--threads`` OpenMP threads (1 by default: a single small query gains nothing from
  more and it keeps the numbers comparable across machines); the first queries are a warm-up;
- speed-up: p50 of exact search (``flat``) at the same size divided by the row's p50;
- bytes/vector: ``len(faiss.serialize_index(index)) / N``, the size of the index file, which is also
  about what the loaded index holds in memory (the embeddings file sleeve keeps beside it is not counted).

Rows marked ``default`` use the parameters sleeve ships. The other rows change one query-time knob on the same
built index with ``apply_search_params`` (HNSW efSearch, IVF nprobe) to show the recall/latency trade-off
behind the defaults. ``--hnsw-m`` / ``--hnsw-ef-construction`` rebuild HNSW with other build parameters
(still through ``build_faiss_index``) to compare them.

Synthetic data, "clustered like real embeddings": a fixed mixture of 2,000 Gaussian clusters (sizes drawn
from a flat Dirichlet) plus a shared mean direction, normalised onto the unit sphere. Cluster centres and
within-cluster noise both have a power-law spectrum (variance of the i-th of ``dim`` random orthogonal
directions proportional to 1/(i+3)), because real embeddings spend most of their variance in a few hundred
directions, and each cluster's spread is scaled by a log-normal factor (sigma 0.3), because some styles are
tighter than others. The weights were fitted to the 4,450 EfficientNet-Lite0 cover embeddings in
/work/dev/index-effnet (1280-d) at the same collection size:

    cosine, 5th / 50th / 95th percentile   real covers          this generator (512-d)
    nearest neighbour                      0.53 / 0.66 / 0.91   0.50 / 0.69 / 0.86
    10th nearest neighbour                 0.46 / 0.59 / 0.68   0.46 / 0.54 / 0.66
    two random covers                      0.20 / 0.34 / 0.50   0.21 / 0.36 / 0.48
    norm of the mean vector                0.59                 0.59

The mixture is the same at every size, so larger collections are denser and their neighbours closer, as
with real collections; the table's header prints the median query-to-nearest-neighbour cosine per size.
Queries are fresh draws from the same mixture (another seed), never vectors of the index.

    python bench/search.py                                   # 10k, 100k, 1M: ~8 GB RAM, ~30 min on 2 cores
    python bench/search.py --sizes 10000,100000 --json out.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine  # noqa: E402
from index import faiss_index  # noqa: E402  (after the path insert, so the checkout's module is measured)

K = 10
EF_SEARCH_SWEEP = (16, 32, 64, 128, 256)
NPROBE_SWEEP = (8, 16, 32, 64, 128)
WARMUP_QUERIES = 50
CHUNK = 50_000
"""Rows generated at a time, so 1M vectors never need more than the finished array plus a little."""


@dataclasses.dataclass
class Mixture:
    """The generator's fixed parameters; sampling from it with different seeds gives index and queries."""

    centres: np.ndarray  # (clusters, dim), shared mean direction included
    spread: np.ndarray  # (clusters,) noise scale per cluster
    weights: np.ndarray  # (clusters,) probability of each cluster
    noise: np.ndarray  # (dim, dim) maps standard normal draws to the power-law noise

    @classmethod
    def fitted(cls, dim: int, clusters: int = 2_000, seed: int = 0) -> Mixture:
        """The mixture whose neighbour statistics match real cover embeddings (see the module docstring)."""
        rng = np.random.default_rng(seed)
        variances = 1.0 / (np.arange(dim) + 3.0)
        variances /= variances.sum()
        centre_basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
        noise_basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
        mean = rng.standard_normal(dim)
        mean /= np.linalg.norm(mean)
        centres = 0.55 * (rng.standard_normal((clusters, dim)) * np.sqrt(variances)) @ centre_basis.T + 0.6 * mean
        return cls(
            centres=centres.astype(np.float32),
            spread=(0.58 * np.exp(rng.normal(0.0, 0.3, clusters))).astype(np.float32),
            weights=rng.dirichlet(np.ones(clusters)),
            noise=(np.sqrt(variances)[:, None] * noise_basis.T).astype(np.float32),
        )

    def sample(self, count: int, seed: int) -> np.ndarray:
        """``count`` unit vectors (float32), generated in chunks."""
        rng = np.random.default_rng(seed)
        out = np.empty((count, len(self.noise)), dtype=np.float32)
        for start in range(0, count, CHUNK):
            rows = min(CHUNK, count - start)
            cluster = rng.choice(len(self.weights), size=rows, p=self.weights)
            draws = rng.standard_normal((rows, len(self.noise)), dtype=np.float32)
            chunk = self.centres[cluster] + (draws @ self.noise) * self.spread[cluster, None]
            out[start : start + rows] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
        return out


def machine_info(threads: int) -> dict[str, Any]:
    """The machine (bench/machine.py) plus this benchmark's thread counts and library versions."""
    return describe_machine() | {
        "query_threads": threads,
        "build_threads": os.cpu_count(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }


def single_queries(
    index: faiss.Index, queries: np.ndarray, exact_vectors: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-K ids of each query, searched one at a time with sleeve's ``search``, and the seconds each took."""
    for query in queries[:WARMUP_QUERIES]:
        faiss_index.search(index, query[None], K, exact_vectors)
    found = np.empty((len(queries), K), dtype=np.int64)
    seconds = np.empty(len(queries))
    for row, query in enumerate(queries):
        started = time.perf_counter()
        _, ids = faiss_index.search(index, query[None], K, exact_vectors)
        seconds[row] = time.perf_counter() - started
        found[row] = ids[0]
    return found, seconds


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(a, b)) / K for a, b in zip(found, truth)]))


def measure(
    index: faiss.Index, queries: np.ndarray, truth: np.ndarray, threads: int, exact_vectors: np.ndarray | None = None
) -> dict[str, float]:
    faiss.omp_set_num_threads(threads)
    found, seconds = single_queries(index, queries, exact_vectors)
    return {
        "recall_at_10": recall_at_k(found, truth),
        "p50_ms": float(np.percentile(seconds, 50) * 1e3),
        "p95_ms": float(np.percentile(seconds, 95) * 1e3),
    }


def build(vectors: np.ndarray, index_type: str, overrides: dict[str, int]) -> tuple[faiss.Index, dict, float]:
    """``build_faiss_index`` with all cores, and with module constants overridden for build-parameter sweeps."""
    saved = {name: getattr(faiss_index, name) for name in overrides}
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    try:
        for name, value in overrides.items():
            setattr(faiss_index, name, value)
        started = time.perf_counter()
        index, params = faiss_index.build_faiss_index(vectors, index_type)
        return index, params, time.perf_counter() - started
    finally:
        for name, value in saved.items():
            setattr(faiss_index, name, value)


def query_sweep(index_type: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The query-time variants worth showing next to the default parameters."""
    if index_type == "hnsw":
        for ef in EF_SEARCH_SWEEP:
            if ef != params["efSearch"]:
                yield {**params, "efSearch": ef}
    elif index_type == "ivfpq":
        for nprobe in NPROBE_SWEEP:
            if nprobe != params["nprobe"] and nprobe <= params["nlist"]:
                yield {**params, "nprobe": nprobe}


def build_variants(args: argparse.Namespace) -> list[tuple[str, dict[str, int]]]:
    """(index type, module-constant overrides) to build; no overrides means what sleeve ships."""
    variants: list[tuple[str, dict[str, int]]] = [("flat", {})]
    for m in args.hnsw_m:
        for ef_construction in args.hnsw_ef_construction:
            overrides = {}
            if m != faiss_index.HNSW_M:
                overrides["HNSW_M"] = m
            if ef_construction != faiss_index.HNSW_EF_CONSTRUCTION:
                overrides["HNSW_EF_CONSTRUCTION"] = ef_construction
            variants.append(("hnsw", overrides))
    variants.append(("ivfpq", {}))
    return [v for v in variants if v[0] in args.types]


def describe(params: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in params.items()) or "-"


def table_row(row: dict[str, Any]) -> str:
    speedup = f"{row['speedup_vs_flat']:.1f}x" if row.get("speedup_vs_flat") else "-"
    build_s = f"{row['build_s']:.1f}" if row["build_s"] is not None else ""
    label = row["index_type"] + (" (default)" if row["default"] else "")
    return (
        f"| {row['size']:,} | {label} | {describe(row['params'])} | {build_s} | {row['recall_at_10']:.3f} "
        f"| {row['p50_ms']:.3f} | {row['p95_ms']:.3f} | {speedup} | {row['bytes_per_vector']:,.0f} |"
    )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_size(
    size: int, args: argparse.Namespace, mixture: Mixture, queries: np.ndarray
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Every row for one collection size, printed as soon as it is measured, and the data's neighbour cosines."""
    vectors = mixture.sample(size, seed=1)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    similarity, truth = exact.search(queries, K)
    del exact
    log(f"{size:,}: ground truth done; query cosine to 1st / 10th neighbour, median "
        f"{np.median(similarity[:, 0]):.3f} / {np.median(similarity[:, -1]):.3f}")
    data = {"size": size, "nearest_cosine_median": float(np.median(similarity[:, 0])),
            "tenth_cosine_median": float(np.median(similarity[:, -1]))}

    rows: list[dict[str, Any]] = []
    flat_p50: float | None = None
    for index_type, overrides in build_variants(args):
        try:
            index, params, build_s = build(vectors, index_type, overrides)
        except faiss_index.IndexConfigError as error:
            log(f"{size:,} {index_type}: skipped ({error})")
            continue
        log(f"{size:,} {index_type} {describe(params)}: built in {build_s:.1f} s")
        bytes_per_vector = len(faiss.serialize_index(index)) / size
        # sleeve recommend re-ranks IVF-PQ candidates with the exact vectors it keeps on disk: that is the
        # default row; the plain FAISS answer is shown beside it.
        rerank = vectors if index_type == "ivfpq" else None
        variants = [(params, rerank), *((v, rerank) for v in query_sweep(index_type, params))]
        if rerank is not None:
            variants.append((params, None))
        for variant, exact_vectors in variants:
            faiss_index.apply_search_params(index, variant)
            row = {
                "size": size,
                "index_type": index_type + (f" + exact re-rank x{faiss_index.RERANK_FACTOR}" if exact_vectors
                                            is not None else ""),
                "params": variant,
                "default": variant is params and exact_vectors is rerank and not overrides,
                "build_s": build_s if variant is params and exact_vectors is rerank else None,
                "bytes_per_vector": bytes_per_vector,
                **measure(index, queries, truth, args.threads, exact_vectors),
            }
            if index_type == "flat":
                flat_p50 = row["p50_ms"]
            row["speedup_vs_flat"] = flat_p50 / row["p50_ms"] if flat_p50 else None
            rows.append(row)
            print(table_row(row), flush=True)
        del index
    return rows, data


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated collection sizes")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads while querying")
    parser.add_argument("--types", default="flat,hnsw,ivfpq", help="index types to build")
    parser.add_argument("--hnsw-m", default=str(faiss_index.HNSW_M), help="comma-separated HNSW M to build")
    parser.add_argument("--hnsw-ef-construction", default=str(faiss_index.HNSW_EF_CONSTRUCTION),
                        help="comma-separated HNSW efConstruction to build")
    parser.add_argument("--json", type=Path, help="also write machine info and every row here")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.types = args.types.split(",")
    args.hnsw_m = [int(s) for s in args.hnsw_m.split(",")]
    args.hnsw_ef_construction = [int(s) for s in args.hnsw_ef_construction.split(",")]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info(args.threads)
    print(f"sleeve search benchmark, {machine['date']}")
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, load average {machine['load_average_1m']} "
          f"at start; faiss {machine['faiss']}, numpy {machine['numpy']}, python {machine['python']}")
    print(f"queries: {args.queries} single-query searches (k={K}), {args.threads} FAISS thread(s); "
          f"builds: {machine['build_threads']} threads; d={args.dim}")
    print("bytes/vector = serialised FAISS index / N\n")
    print("| size | index | params | build s | recall@10 | p50 ms | p95 ms | speed-up vs flat | bytes/vector |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|", flush=True)

    mixture = Mixture.fitted(args.dim)
    queries = mixture.sample(args.queries, seed=2)
    rows, data = [], []
    for size in args.sizes:
        size_rows, size_data = bench_size(size, args, mixture, queries)
        rows += size_rows
        data.append(size_data)
    machine["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(f"\nload average at end: {machine['load_average_1m_end']}")
    print("data, median cosine of a query to its nearest / 10th neighbour: " + ", ".join(
        f"{d['size']:,}: {d['nearest_cosine_median']:.2f} / {d['tenth_cosine_median']:.2f}" for d in data))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "args": vars(args) | {"json": str(args.json)},
                                         "data": data, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
