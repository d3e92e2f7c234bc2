"""Warm ``Recommender.search_text`` of checkouts of sleeve on index folders of one collection, each folder opened
as a query process opens it (nothing decoded beforehand), and the step that shows the results alone
(``Table.rows`` of the shown columns of each query's top 10).

Each pair is ``CHECKOUT=INDEX``: per round, every pair runs in a fresh process of its checkout (imports from
it), warms up on 3 queries, then times every query; the pairs alternate round by round so that the machine's
load falls on each alike. Made to compare an index with the shown columns stored row-addressable (index.shown)
against the same index without that file, and the code before against the code after. Queries are whole stored
texts of planted covers (rows whose ``artist`` column is set and whose text is not empty, a fixed sample), as
bench/collection_scale.py asks them; every pair must answer each query with the same frame.

    python bench/shown_rows.py --pair /work/main=/tmp/shownrows/main-100000 \\
        --pair .=/tmp/shownrows/main-100000 --pair .=/tmp/shownrows/shown-100000 --queries 50 --rounds 4
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

THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
WARMUP = 3
CHILD = """
import json, sys, time
import numpy as np
from index.store import SHOWN_FIELDS, load_index, user_columns
from recsys import textsearch
from recsys.recommend import Recommender

queries, folder, warmup = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3])
recommender = Recommender(load_index(folder))
table = recommender.index.table
columns = [*SHOWN_FIELDS, *user_columns(table)]
allowed = np.ones(recommender.index.info.count, dtype=bool)
for query in queries[:warmup]:
    recommender.search_text(query)
search, shown, answers = [], [], []
for query in queries:
    rows, _ = textsearch.best_by_words(recommender._text_model, query, recommender._words_engine, allowed, 10,
                                      typed=True)
    started = time.perf_counter()
    answers.append(recommender.search_text(query).to_json())
    search.append(time.perf_counter() - started)
    started = time.perf_counter()
    table.rows(rows, columns=columns)
    shown.append(time.perf_counter() - started)
assert not table.decoded, "the metadata was decoded whole"
print(json.dumps({"search": search, "shown": shown, "answers": answers,
                  "has_shown_file": "shown" in recommender.index.info.files}))
"""


def planted_texts(folder: Path, count: int) -> list[str]:
    """Stored texts of ``count`` planted covers with text (a fixed sample)."""
    from index.store import load_index
    from recsys import textsearch
    from recsys.recommend import Recommender

    index = load_index(folder)
    artists = index.table.rows(np.arange(index.info.count), columns=["user:artist"])["user:artist"]
    texts = Recommender(index).texts
    rows = [row for row in np.flatnonzero(artists.fillna("").astype(str).to_numpy() != "")
            if textsearch.normalise(str(texts[row]))]
    chosen = np.sort(np.random.default_rng(7).choice(rows, min(count, len(rows)), replace=False))
    return [str(texts[row]) for row in chosen]


def run(checkout: Path, folder: Path, queries_file: str) -> dict:
    """One fresh process of ``checkout`` timing every query on ``folder``; exits on failure."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, queries_file, str(folder), str(WARMUP)], cwd=checkout,
        capture_output=True, text=True, env=os.environ | THREADS | {"PYTHONPATH": str(checkout)},
    )
    if done.returncode:
        raise SystemExit(f"{checkout} on {folder} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", action="append", required=True, help="CHECKOUT=INDEX (repeat)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    pairs = [(Path(checkout).resolve(), Path(index)) for checkout, index in (p.split("=", 1) for p in args.pair)]
    print(f"machine: {machine_line(describe_machine())}")
    queries = planted_texts(pairs[0][1], args.queries)
    search: list[list[float]] = [[] for _ in pairs]
    shown: list[list[float]] = [[] for _ in pairs]
    files: list[bool] = [False for _ in pairs]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as queries_file:
        json.dump(queries, queries_file)
        queries_file.flush()
        answers = None
        for _ in range(args.rounds):
            for number, (checkout, folder) in enumerate(pairs):
                measured = run(checkout, folder, queries_file.name)
                if answers is None:
                    answers = measured["answers"]
                if measured["answers"] != answers:
                    raise SystemExit(f"{checkout} on {folder} answered differently from {pairs[0]}")
                search[number] += measured["search"]
                shown[number] += measured["shown"]
                files[number] = measured["has_shown_file"]
    print(f"{len(queries)} queries x {args.rounds} rounds per pair (a fresh process each), pairs alternated; "
          "every pair answered every query with the same frame")
    print("| checkout | index | shown file | search_text p50 / p95 ms | shown rows p50 / p95 ms |\n"
          "|---|---|---|---:|---:|")
    for number, (checkout, folder) in enumerate(pairs):
        s50, s95 = (np.percentile(search[number], p) * 1e3 for p in (50, 95))
        r50, r95 = (np.percentile(shown[number], p) * 1e3 for p in (50, 95))
        print(f"| {checkout} | {folder} | {'yes' if files[number] else 'no'} | {s50:.1f} / {s95:.1f} | "
              f"{r50:.2f} / {r95:.2f} |")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
