"""Warm ``similar_to_cover(by="both")`` p50 / p90 of the two paths recommend.BOTH_EXACT_MAX chooses between:
every allowed cover scored, and only recsys.recommend.both_candidates' covers. Each query cover is read once
beforehand (reading and encoding it costs the same on both paths) and ranked by both paths in turn, so the
load of a shared machine falls on both alike. Query covers: a fixed random draw of the index's covers whose
image file exists (a bench/collection_scale.py collection holds images for its planted covers only). The
index needs a words engine (build-index --read-text writes one), or recommend scores every cover anyway.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/both_crossover.py --index /tmp/idx-a /tmp/idx-b
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from recsys import recommend  # noqa: E402
from recsys.recommend import Recommender  # noqa: E402

PATHS = {"every cover": 10**12, "candidates": 0}
"""recommend.BOTH_EXACT_MAX for each path: never above it, always above it."""


def measure(folder: Path, queries: int) -> tuple[int, dict[str, list[float]]]:
    """The index's cover count and the seconds per query of each path over ``queries`` of its covers."""
    recommender = Recommender.open(folder)
    if recommender._words_engine is None:
        raise SystemExit(f"{folder} has no words engine: both paths would score every cover")
    paths = recommender.index.metadata["path"].to_numpy()
    present = np.flatnonzero([Path(path).is_file() for path in paths])
    rows = np.random.default_rng(1).choice(present, min(queries, len(present)), replace=False)
    covers = [recommender.read_query(paths[row]) for row in rows]
    seconds: dict[str, list[float]] = {name: [] for name in PATHS}
    for name, limit in PATHS.items():  # warm: graph, engine, statistics
        recommend.BOTH_EXACT_MAX = limit
        recommender.similar_to_cover(covers[0], by="both")
    for cover in covers:
        for name, limit in PATHS.items():
            recommend.BOTH_EXACT_MAX = limit
            started = time.perf_counter()
            recommender.similar_to_cover(cover, by="both")
            seconds[name].append(time.perf_counter() - started)
    return len(paths), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, nargs="+", required=True, help="index folders built with --read-text")
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    print(f"# warm similar_to_cover(by='both') ms; {machine_line(describe_machine())}")
    print("| covers | every cover p50 / p90 | candidates p50 / p90 |\n|---:|---:|---:|")
    for folder in args.index:
        count, seconds = measure(folder, args.queries)
        cells = [f"{1000 * np.median(s):.0f} / {1000 * np.percentile(s, 90):.0f}" for s in seconds.values()]
        print(f"| {count:,} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
