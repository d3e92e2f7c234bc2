"""Words candidate stage benchmark: does scoring only the engine's best covers (textsearch.words_scores) rank the
same top 10 as scoring every cover, and how long does a warm words query take either way?

Every cover text of an index built with ``--read-text`` is a query in turn, against the index's stored words
model and candidate engine, for several candidate counts (textsearch.CANDIDATES is the one sleeve uses).

    python cli.py build-index --manifest ../shared/artist-covers/MANIFEST.csv --index /tmp/artist-idx --read-text
    python bench/words_candidates.py --index /tmp/artist-idx
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from recsys import textsearch  # noqa: E402
from recsys.textstore import load_index_with_texts  # noqa: E402

K = 10


def top_scores(rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The best K scores (rows tied on a score may come in either order)."""
    return np.sort(scores[scores > 0])[::-1][:K]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="index built with --read-text")
    parser.add_argument("--limits", type=int, nargs="+", default=[100, 250, 500, textsearch.CANDIDATES])
    args = parser.parse_args()
    index, texts = load_index_with_texts(args.index)
    if index.words is None or index.words_engine is None:
        sys.exit(f"{args.index} holds no words candidate engine; build it again with --read-text")
    model = textsearch.model_from_arrays(index.words)
    queries = [text for text in texts if textsearch.normalise(text)]
    allowed = np.ones(len(texts), dtype=bool)
    print(f"# {len(queries)} cover texts as queries, {len(texts)} covers of {args.index}; "
          f"{machine_line(describe_machine())}")
    print("| candidates | same top 10 as every cover | warm query, candidates | warm query, every cover |")
    print("|---:|---:|---:|---:|")
    for limit in args.limits:
        textsearch.CANDIDATES = limit
        same, seconds, every_seconds = 0, [], []
        for query in queries:
            started = time.perf_counter()
            full = textsearch.words_scores(model, query, None, allowed, K)
            every_seconds.append(time.perf_counter() - started)
            started = time.perf_counter()
            found = textsearch.words_scores(model, query, index.words_engine, allowed, K)
            seconds.append(time.perf_counter() - started)
            same += np.allclose(top_scores(*found), top_scores(*full), atol=1e-6) if len(
                top_scores(*found)) == len(top_scores(*full)) else 0
        print(f"| {limit:,} | {same:,} / {len(queries):,} | {np.median(seconds) * 1e3:.2f} ms p50 | "
              f"{np.median(every_seconds) * 1e3:.2f} ms p50 |")


if __name__ == "__main__":
    main()
