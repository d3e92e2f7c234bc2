"""Incremental words model benchmark: how far can an index grow on its stored vocabulary and IDF (new covers
vectorised with them, recsys.textsearch.update_text_vectors) before its words queries rank differently from a
refit, and what does each update cost either way?

The covers of an index built with ``--read-text`` are shuffled (``--seed``); the model is fitted on the first
``--start`` share of them, then covers are added in ``--steps`` equal updates up to the ``--end`` share (with
``--churn`` each update also removes as many, the earliest in the shuffle), each update applied to the previous
one's model as an incremental build-index does, and compared with a refit on the same covers. Per update it prints
the rule's candidate measures (covers added or removed since the fit over the covers at the fit, and the share of
the added covers' n-gram occurrences missing from the vocabulary), the mean top-10 overlap of words queries (each
cover text of the collection, or ``--queries`` of them, as a query against the rest; results scoring 0 left out;
1 when both are empty), same-``--label`` precision@10 by words of both models (every cover a query, covers with
its content left out, as bench/hybrid.py), and the time of the update against the refit.

    python cli.py build-index --manifest ../shared/artist-covers/MANIFEST.csv --index /tmp/artist-idx --read-text
    python bench/words_incremental.py --index /tmp/artist-idx --label artist

``--synthetic N ...`` times one update instead, on N synthetic covers (texts of as many real OCR lines of the
index's covers as a real cover of it has, drawn at random): the refit a build ran on every update before this rule
against updating the stored model after 10 covers added and 10 removed, and after 1% added (REFIT_SHARE's size).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from index.store import shown_name  # noqa: E402
from recsys import textsearch  # noqa: E402
from recsys.textstore import load_index_with_texts  # noqa: E402

K = 10
CHUNK = 128


def top_k(model: textsearch.TextModel, rows: np.ndarray, hashes: np.ndarray, positive: bool) -> list[np.ndarray]:
    """Each of ``rows``' best K other covers by words (covers with its content left out; only those scoring
    above 0 when ``positive``), ties in row order."""
    found = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        order = np.argsort(chunk)  # words_similarity_rows wants ascending rows
        scores = np.empty((len(chunk), model.covers.shape[0]))
        scores[order] = textsearch.words_similarity_rows(model, chunk[order])
        for row, score in zip(chunk, scores):
            score[hashes == hashes[row]] = -1.0
            best = np.argsort(-score, kind="stable")[:K]
            found.append(best[score[best] > 0] if positive else best)
    return found


def overlap(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    """Mean share of the top K two rankings have in common (1 where both found nothing)."""
    shares = [len(np.intersect1d(a, b)) / max(len(a), len(b)) if max(len(a), len(b)) else 1.0
              for a, b in zip(first, second)]
    return float(np.mean(shares))


def precision(found: list[np.ndarray], rows: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean([np.mean(labels[top] == labels[row]) for row, top in zip(rows, found)]))


def synthetic_texts(texts: list[str], size: int, rng: np.random.Generator) -> list[str]:
    """``size`` cover texts, each as many of ``texts``' OCR lines (drawn at random) as one of them has."""
    per_cover = [[line for line in text.splitlines() if textsearch.normalise(line)] for text in texts]
    pool = np.array([line for lines in per_cover for line in lines], dtype=object)
    counts = rng.choice([len(lines) for lines in per_cover], size)
    return ["\n".join(rng.choice(pool, count)) if count else "" for count in counts]


def time_updates(texts: list[str], sizes: list[int], rng: np.random.Generator) -> None:
    """Refit against update seconds (median of 3) on synthetic collections of ``sizes`` covers."""
    print("| covers | refit s | update: 10 added, 10 removed s | update: 1% added s |")
    print("|---:|---:|---:|---:|")
    for size in sizes:
        collection = synthetic_texts(texts, size + size // 100, rng)
        model = textsearch.fit_text_vectors(collection[:size])
        few = np.r_[np.arange(10, size), np.full(10, -1)]
        grown = np.r_[np.arange(size), np.full(size // 100, -1)]
        cells = []
        for call in (lambda: textsearch.fit_text_vectors(collection[:size]),
                     lambda: textsearch.update_text_vectors(model, few, collection[10 : size + 10]),
                     lambda: textsearch.update_text_vectors(model, grown, collection)):
            seconds = []
            for _ in range(3):
                started = time.perf_counter()
                call()
                seconds.append(time.perf_counter() - started)
            cells.append(f"{np.median(seconds):.2f}")
        print(f"| {size:,} | {' | '.join(cells)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="index built with --read-text")
    parser.add_argument("--label", help="metadata column a good neighbour shares (precision@10 by words)")
    parser.add_argument("--start", type=float, default=0.5, help="share of the covers the model is fitted on")
    parser.add_argument("--end", type=float, default=1.0, help="share of the covers the last update reaches")
    parser.add_argument("--steps", type=int, default=10, help="updates from --start to --end")
    parser.add_argument("--queries", type=int, help="covers with text used as overlap queries (default all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--churn", action="store_true",
                        help="each update also removes as many covers as it adds (the earliest in the shuffle)")
    parser.add_argument("--synthetic", type=int, nargs="+", help="time one update on this many synthetic covers")
    args = parser.parse_args()
    index, texts = load_index_with_texts(args.index)
    rng = np.random.default_rng(args.seed)
    if args.synthetic:
        print(f"# synthetic texts from the OCR lines of {len(texts)} covers of {args.index}; "
              f"{machine_line(describe_machine())}")
        time_updates(texts, args.synthetic, rng)
        return
    order = rng.permutation(len(texts))
    all_texts = [texts[row] for row in order]
    hashes_all = index.metadata["content_hash"].to_numpy()[order]
    labels_all = None
    if args.label:
        metadata = index.metadata.rename(columns=shown_name)
        labels_all = metadata[args.label].astype(str).str.lower().to_numpy()[order]
    fitted = int(round(args.start * len(texts)))
    bounds = np.linspace(fitted, int(round(args.end * len(texts))), args.steps + 1).round().astype(int)
    model = textsearch.fit_text_vectors(all_texts[:fitted])
    added_since = [0, 0]
    print(f"# {len(texts)} covers of {args.index}, fitted on {fitted} (seed {args.seed}), then {args.steps} "
          f"updates to {bounds[-1]}{' with churn' if args.churn else ''}; {machine_line(describe_machine())}")
    label_columns = f" precision@{K} by words, update / refit |" if args.label else ""
    print(f"| covers | added or removed since fit / covers at fit | unknown n-grams of the added | top-{K} overlap |"
          f"{label_columns} update s | refit s |")
    print("|---:|---:|---:|---:|" + ("---:|" if args.label else "") + "---:|---:|")
    low = 0  # the collection is all_texts[low:after]
    for before, after in zip(bounds[:-1], bounds[1:]):
        new = all_texts[before:after]
        gone = (after - before) if args.churn else 0
        unknown, total = textsearch.unknown_grams(model, new)  # against the fitted vocabulary (model keeps it)
        added_since[0] += unknown
        added_since[1] += total
        kept = np.r_[np.arange(gone, before - low), np.full(after - before, -1)]
        low += gone
        current = all_texts[low:after]
        started = time.perf_counter()
        model = textsearch.update_text_vectors(model, kept, current)
        update_seconds = time.perf_counter() - started
        started = time.perf_counter()
        refit = textsearch.fit_text_vectors(current)
        refit_seconds = time.perf_counter() - started
        hashes = hashes_all[low:after]
        queries = np.flatnonzero([bool(textsearch.normalise(t)) for t in current])
        if args.queries and args.queries < len(queries):
            queries = np.sort(rng.choice(queries, args.queries, replace=False))
        share = overlap(top_k(model, queries, hashes, True), top_k(refit, queries, hashes, True))
        cells = ""
        if labels_all is not None:
            every = np.arange(after - low)
            labels = labels_all[low:after]
            cells = (f" {precision(top_k(model, every, hashes, False), every, labels):.3f} / "
                     f"{precision(top_k(refit, every, hashes, False), every, labels):.3f} |")
        changed = (after - fitted) * (2 if args.churn else 1)
        print(f"| {after - low:,} | {changed / fitted:.2f} | {added_since[0] / max(added_since[1], 1):.3f} | "
              f"{share:.4f} |{cells} {update_seconds:.2f} | {refit_seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
