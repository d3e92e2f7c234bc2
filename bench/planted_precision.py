"""Same-artist precision@10 of the planted covers ranked by ``similar_to_cover(by="both")``, the path a user's
query takes (above recommend.BOTH_EXACT_MAX covers: recommend.both_candidates' covers only), for a change to
that path to be weighed: bench/collection_scale.py and bench/both_stages.py score every cover instead.

The planted covers are the rows with an artist (bench/collection_scale.py's collections); each is asked with
its stored vector standing for the read cover, as bench/warm_both.py does. Run it with each checkout first on
PYTHONPATH to compare two; ``--answers`` writes each query's top-10 paths for comparing them.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 PYTHONPATH=/tmp/before python bench/planted_precision.py \
        --index /tmp/s21/scale/sleeve-scale-10000-*/index --answers /tmp/before.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parents[1])).split(os.pathsep)[0])

from bench.collection_scale import planted_queries  # noqa: E402
from index.store import load_index, shown_name  # noqa: E402
from recsys.recommend import QueryCover, Recommender  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="a collection_scale index folder (--read-text)")
    parser.add_argument("--queries", type=int, help="planted covers to ask (a fixed sample; all by default)")
    parser.add_argument("--answers", type=Path, help="write each query's top-10 paths here (JSON)")
    args = parser.parse_args()
    recommender = Recommender(load_index(args.index))
    metadata = recommender.index.metadata.rename(columns=shown_name)
    if "artist" not in metadata:
        sys.exit(f"{args.index} has no artist column: build it with bench/collection_scale.py")
    labels = metadata["artist"].fillna("").astype(str).str.lower().to_numpy()
    paths = metadata["path"].astype(str).to_numpy()
    row_of = {path: row for row, path in enumerate(paths)}
    planted = planted_queries(labels, args.queries)
    started, hits, answers = time.perf_counter(), [], []
    for row in planted:
        cover = QueryCover(np.asarray(recommender.index.embeddings[row]), b"", paths[row],
                           str(metadata["content_hash"].iloc[row]))
        found = recommender.similar_to_cover(cover, by="both")["path"].tolist()
        hits.append(np.mean(labels[[row_of[path] for path in found]] == labels[row]))
        answers.append(found)
    print(f"precision@10 by both {np.mean(hits):.4f} over {len(planted)} planted covers "
          f"({(time.perf_counter() - started) / len(planted) * 1e3:.0f} ms a query)")
    if args.answers:
        args.answers.write_text(json.dumps(answers))


if __name__ == "__main__":
    main()
