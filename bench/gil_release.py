"""Do the searches of a warm ``--by both`` release the GIL (issue 27: both_candidates runs them on two threads)?

For each call, a pure-Python ticker thread runs beside it: the longest gap between the ticker's ticks during
the call is about the whole call when the call holds the GIL, and the part that holds it otherwise. Then
``--calls`` calls one after another against the same calls on two threads (recsys.recommend.searches' size):
about 2x where the calls release the GIL and the machine has a second core free. The calls, on synthetic data:
index.words_engine.WordsEngine.candidates (a tantivy search of ``--docs`` documents of Zipf-drawn n-grams, 150
n-grams a query, 200 asked), a flat FAISS search of ``--rows`` unit vectors, index.mapped_rows' ``preadv`` read of
2,000 scattered rows and index.faiss_index.search of an IVF-PQ index re-scoring 2,000 rows (the 1M case's look).

    python bench/gil_release.py   # writes its data under /tmp/gil-release (kept for a rerun)
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine, machine_line  # noqa: E402


def ticker_gap(call: Callable[[], object], calls: int) -> float:
    """Median over ``calls`` calls of the longest stretch in a call during which a Python thread did not run."""
    stop, ticks = threading.Event(), []

    def tick() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.02)
    spans = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        spans.append((started, time.perf_counter()))
    stop.set()
    ticker.join()
    at = np.array(ticks)
    return float(np.median([np.diff(np.r_[a, at[(at > a) & (at < b)], b]).max() for a, b in spans]))


def measure(name: str, call: Callable[[], object], calls: int, pool: ThreadPoolExecutor) -> None:
    call()
    started = time.perf_counter()
    for _ in range(calls):
        call()
    alone = time.perf_counter() - started
    gap = ticker_gap(call, calls)
    started = time.perf_counter()
    list(pool.map(lambda _: call(), range(calls)))
    threaded = time.perf_counter() - started
    one = alone / calls
    print(f"| {name} | {one * 1e3:.2f} | {gap * 1e3:.2f} ({gap / one:.2f}) | {alone * 1e3:.0f} | "
          f"{threaded * 1e3:.0f} | {alone / threaded:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--data", type=Path, default=Path("/tmp/gil-release"))
    args = parser.parse_args()

    import faiss

    from index.faiss_index import search
    from index.mapped_rows import MappedRows
    from index.words_engine import WordsEngine, write_engine

    rng = np.random.default_rng(0)
    args.data.mkdir(exist_ok=True)
    vocabulary, per_doc = 30_000, 60
    terms = np.array([f"g{i:05d}" for i in range(vocabulary)], dtype=object)
    engine_path = args.data / f"engine-{args.docs}"
    if not engine_path.exists():
        grams = rng.zipf(1.3, size=args.docs * per_doc) % vocabulary
        write_engine(engine_path, terms, grams, np.arange(0, args.docs * per_doc + 1, per_doc))
    engine = WordsEngine(engine_path, args.docs)
    query_grams = list(terms[rng.zipf(1.3, size=150) % vocabulary])
    vectors = rng.standard_normal((args.rows, 512), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    np.save(args.data / "vectors.npy", vectors)
    mapped = np.load(args.data / "vectors.npy", mmap_mode="r")
    flat = faiss.IndexFlatIP(512)
    flat.add(vectors)
    ivfpq = faiss.index_factory(512, "IVF1024,PQ64", faiss.METRIC_INNER_PRODUCT)
    ivfpq.train(vectors[:50_000])
    ivfpq.add(vectors)
    ivfpq.nprobe = 32
    query, picks = vectors[:1], np.sort(rng.choice(args.rows, 2000, replace=False))
    print(f"# start: {machine_line(describe_machine())}")
    print(f"| call | ms | ticker's longest gap ms (of the call) | {args.calls} alone ms | on 2 threads ms | x |")
    print("|---|---:|---:|---:|---:|---:|")
    with ThreadPoolExecutor(2) as pool, open(args.data / "vectors.npy", "rb") as handle:
        rows = MappedRows.open(handle, mapped.dtype, mapped.offset, mapped.shape)
        measure(f"WordsEngine.candidates, {args.docs:,} docs", lambda: engine.candidates(query_grams, 200), args.calls,
                pool)
        measure(f"FAISS flat search, {args.rows:,} rows", lambda: flat.search(query, 200), args.calls, pool)
        measure("MappedRows preadv, 2,000 rows", lambda: rows[picks], args.calls, pool)
        measure("faiss_index.search IVF-PQ, re-scoring 2,000", lambda: search(ivfpq, query, 200, exact_vectors=rows),
                args.calls, pool)
    print(f"# end: {machine_line(describe_machine())}")


if __name__ == "__main__":
    main()
