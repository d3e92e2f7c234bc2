"""Warm ``similar_to_cover(by="both")`` (or, ``--ask words``, ``search_text``) p50 / p95 of this checkout beside an
older one, in the same run.

Each round runs one fresh child process per checkout (PYTHONPATH its checkout), alternating, so the load of a
shared machine falls on both alike. A child opens the index without an encoder and asks ``--queries`` covers of
the index that carry text (a fixed random draw; ``--planted``: the planted real covers, those with an artist, as
bench/collection_scale.py asks, whose real texts share n-grams with many covers: the slow case) as query covers, their stored vectors standing for the read
cover (recommend.QueryCover: reading and encoding the cover costs the same in both checkouts and is not part of
the warm query; ``--ask words``: each such cover's whole stored text as a typed search, as bench/collection_scale.py
asks it); the first WARMUP queries load the graph, words model, engine and statistics and are not timed.
Answers are compared too: each checkout's paths and scores (rounded as shown) of every timed query must agree.

    git -C /path/to/repo archive main | tar -x -C /tmp/before   # the older checkout
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/warm_both.py --before /tmp/before \
        --index /tmp/idx-10k /tmp/idx-100k --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine, machine_line  # noqa: E402

WARMUP = 3


def query_rows(table: pd.DataFrame, texts: Sequence[str], planted: bool) -> list[int]:
    """Rows whose covers carry text, in a fixed random order; only the planted ones (an artist) when asked."""
    from index.store import shown_name

    table = table.rename(columns=shown_name)  # the manifest's artist column is stored as user:artist
    artists = table["artist"].fillna("").astype(str) if planted and "artist" in table else None
    if planted and artists is None:
        raise SystemExit("--planted needs an index whose metadata has an artist column (bench/collection_scale.py)")
    return [int(row) for row in np.random.default_rng(7).permutation(len(table))
            if str(texts[row]).strip() and (artists is None or artists.iloc[row] != "")]


def child(folder: Path, queries: int, planted: bool, lazy: bool, ask: str = "both") -> dict[str, list]:
    """Seconds and answers (paths, scores) of each timed query, in this process's checkout."""
    from index.store import load_index
    from recsys.recommend import QueryCover, Recommender

    recommender = Recommender(load_index(folder))
    table, embeddings, texts = recommender.index.metadata, recommender.index.embeddings, recommender.texts
    with_text = query_rows(table, texts, planted)
    if ask == "words":
        covers: list = [str(texts[row]) for row in with_text[: WARMUP + queries]]
    else:
        covers = [QueryCover(np.asarray(embeddings[row]), b"", str(table["path"].iloc[row]),
                             str(table["content_hash"].iloc[row])) for row in with_text[: WARMUP + queries]]
    if lazy:  # the queries' own index, its metadata table read as asked (picking the queries decoded it whole)
        recommender = Recommender(load_index(folder))

    def query(cover: object) -> pd.DataFrame:
        if ask == "words":
            return recommender.search_text(cover)
        return recommender.similar_to_cover(cover, by="both")

    for cover in covers[:WARMUP]:
        query(cover)
    seconds, answers = [], []
    for cover in covers[WARMUP:]:
        started = time.perf_counter()
        found = query(cover)
        seconds.append(time.perf_counter() - started)
        answers.append([found["path"].tolist(), found["score"].tolist()])
    return {"seconds": seconds, "answers": answers}


def run_child(
    checkout: Path, folder: Path, queries: int, planted: bool, lazy: bool, extra: dict[str, str], ask: str = "both"
) -> dict[str, list]:
    environment = dict(os.environ, PYTHONPATH=str(checkout)) | extra
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", "--index", str(folder), "--queries", str(queries),
         "--ask", ask, *(["--planted"] if planted else []), *(["--lazy"] if lazy else [])],
        capture_output=True, text=True, env=environment, cwd=checkout, check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, nargs="+", required=True, help="index folders built with --read-text")
    parser.add_argument("--before", type=Path, help="an older sleeve checkout to time beside this one")
    parser.add_argument("--queries", type=int, default=50, help="timed queries per child process")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--planted", action="store_true",
                        help="ask the planted covers (an artist in the metadata) instead of random covers with text")
    parser.add_argument("--lazy", action="store_true",
                        help="query an index whose metadata table is read as asked, as a served one is (without: "
                             "the table decoded whole, as picking the queries leaves it)")
    parser.add_argument("--before-env", action="append", default=[], metavar="NAME=VALUE",
                        help="set this in the older checkout's children only (e.g. OPENBLAS_NUM_THREADS=1, with "
                             "--before a copy of this checkout, to time the libraries' threads beside one)")
    parser.add_argument("--ask", choices=("both", "words"), default="both",
                        help="what to time: similar_to_cover(by='both'), or search_text of each cover's whole text")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.environ.get("PYTHONPATH", str(REPO)))
        print(json.dumps(child(args.index[0], args.queries, args.planted, args.lazy, args.ask)))
        return
    checkouts = {"this checkout": REPO} | ({f"before ({args.before})": args.before} if args.before else {})
    before_env = dict(setting.split("=", 1) for setting in args.before_env)
    if before_env:
        print(f"# the older checkout's children also have {' '.join(args.before_env)}")
    asked = "search_text(whole cover text)" if args.ask == "words" else "similar_to_cover(by='both')"
    print(f"# warm {asked} ms, {args.rounds} rounds x {args.queries} "
          f"{'planted' if args.planted else 'random'} queries{', lazy table' if args.lazy else ''}; "
          f"start: {machine_line(describe_machine())}")
    print("| covers | checkout | p50 | p95 | answers as this checkout's |\n|---:|---|---:|---:|---|")
    for folder in args.index:
        runs: dict[str, list[dict[str, list]]] = {name: [] for name in checkouts}
        for _ in range(args.rounds):
            for name, checkout in reversed(checkouts.items()):  # the older one first in each round
                extra = before_env if name != "this checkout" else {}
                runs[name].append(run_child(checkout, folder, args.queries, args.planted, args.lazy, extra, args.ask))
        count = json.loads((folder / "index.json").read_text())["count"]
        mine = runs["this checkout"][0]["answers"]
        for name, done in runs.items():
            seconds = np.concatenate([run["seconds"] for run in done]) * 1e3
            same = all(run["answers"] == mine for run in done)
            print(f"| {count:,} | {name} | {np.percentile(seconds, 50):.1f} | {np.percentile(seconds, 95):.1f} | "
                  f"{'same' if same else 'DIFFERENT'} |")
    print(f"# end: {machine_line(describe_machine())}")


if __name__ == "__main__":
    main()
