"""How far a change to `--by both` scoring moves the scores: this checkout beside an older one, unrounded.

For each index folder, one child process per checkout (PYTHONPATH its checkout) asks the same covers (as
bench/warm_both.py picks them) the way Recommender._by_words does: both_candidates, then both_scores over the
grown candidates; it keeps every candidate's fused, look and words score. The parent says whether the candidates
and each query's top 10 are the same in both, and the largest absolute difference of each score.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/both_rounding.py --before /tmp/before --planted \\
        --index /tmp/idx-10k /tmp/idx-100k
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine, machine_line  # noqa: E402
from bench.warm_both import query_rows  # noqa: E402


def child(folder: Path, queries: int, planted: bool, out: Path) -> None:
    """Each query's candidates and their (fused, look, words) scores, saved to ``out``."""
    from index.store import load_index
    from recsys import hybrid, recommend

    recommender = recommend.Recommender(load_index(folder))
    index, texts = recommender.index, recommender.texts
    table = index.metadata
    saved = {}
    for at, row in enumerate(query_rows(table, texts, planted)[:queries]):
        allowed = np.ones(index.info.count, dtype=bool)
        allowed[row] = False
        vector, text = np.asarray(index.embeddings[row]), str(texts[row])
        collection = hybrid.CollectionScores(recommender._statistics, recommender._text_model)
        candidates = recommend.both_candidates(
            index.embeddings, recommender._text_model, texts, allowed, vector, text,
            lambda vectors, count: recommender._search(vectors, count)[1], recommender._words_engine,
            recommender._graph, collection, 10)
        scores = hybrid.both_scores(index.embeddings, recommender._text_model, texts, candidates, vector, text,
                                    graph=recommender._graph, collection=collection)
        saved |= {f"{at}-candidates": candidates} | {f"{at}-{name}": score
                                                     for name, score in zip(("fused", "look", "words"), scores)}
    np.savez(out, **saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, nargs="+", required=True, help="index folders built with --read-text")
    parser.add_argument("--before", type=Path, help="an older sleeve checkout (required)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--planted", action="store_true", help="ask the planted covers (bench/warm_both.py)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.environ["PYTHONPATH"])  # the library of the checkout asked, not this file's
        child(args.index[0], args.queries, args.planted, args.child)
        return
    if args.before is None:
        parser.error("--before is required")
    print(f"# start: {machine_line(describe_machine())}")
    print("| covers | queries | same candidates | same top 10 | max diff fused | max diff look | max diff words |\n"
          "|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for folder in args.index:
            found = []
            for name, checkout in (("after", REPO), ("before", args.before)):
                out = Path(scratch) / f"{name}.npz"
                subprocess.run([sys.executable, str(Path(__file__).resolve()), "--index", str(folder), "--queries",
                                str(args.queries), *(["--planted"] if args.planted else []), "--child", str(out)],
                               env=dict(os.environ, PYTHONPATH=str(checkout)), cwd=checkout, check=True)
                found.append(dict(np.load(out)))
            after, before = found
            count = len([key for key in after if key.endswith("-candidates")])
            same = [np.array_equal(after[f"{at}-candidates"], before[f"{at}-candidates"]) for at in range(count)]
            top = [np.array_equal(after[f"{at}-candidates"][np.argsort(-after[f"{at}-fused"], kind="stable")[:10]],
                                  before[f"{at}-candidates"][np.argsort(-before[f"{at}-fused"], kind="stable")[:10]])
                   for at in range(count)]
            diffs = [max((float(np.abs(after[f"{at}-{name}"] - before[f"{at}-{name}"]).max(initial=0.0))
                          for at in range(count) if same[at]), default=0.0) for name in ("fused", "look", "words")]
            print(f"| {count_of(folder):,} | {count} | {sum(same)} | {sum(top)} | "
                  + " | ".join(f"{diff:.2e}" for diff in diffs) + " |")
    print(f"# end: {machine_line(describe_machine())}")


def count_of(folder: Path) -> int:
    return json.loads((folder / "index.json").read_text())["count"]


if __name__ == "__main__":
    main()
