"""Incremental words model benchmark: how far can an index grow on its stored vocabulary and IDF (new covers
vectorised with them, recsys.textsearch.update_text_vectors) before its words queries rank differently from a
refit, and what does each update cost either way?

The covers of an index built with ``--read-text`` are shuffled (``--seed``); the model is fitted on the first
``--start`` share of them, then covers are added in ``--steps`` equal updates up to the ``--end`` share, each applied to the previous
update's model as an incremental build-index does, and compared with a refit on the same covers. Per update it
prints the rule's candidate measures (covers added since the fit over the covers at the fit, and the share of the
added covers' n-gram occurrences missing from the vocabulary), the mean top-10 overlap of words queries (each
covered text of the collection, or ``--queries`` of them, as a query against the rest; results scoring 0 left
out; 1 when both are empty), same-``--label`` precision@10 by words of both models (every cover a query, covers
with its content left out, as bench/hybrid.py), and the time of the update against the refit.

    python cli.py build-index --manifest ../shared/artist-covers/MANIFEST.csv --index /tmp/artist-idx --read-text
    python bench/words_incremental.py --index /tmp/artist-idx --label artist
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="index built with --read-text")
    parser.add_argument("--label", help="metadata column a good neighbour shares (precision@10 by words)")
    parser.add_argument("--start", type=float, default=0.5, help="share of the covers the model is fitted on")
    parser.add_argument("--end", type=float, default=1.0, help="share of the covers the last update reaches")
    parser.add_argument("--steps", type=int, default=10, help="updates from --start to --end")
    parser.add_argument("--queries", type=int, help="covers with text used as overlap queries (default all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    index, texts = load_index_with_texts(args.index)
    rng = np.random.default_rng(args.seed)
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
    print(f"# {len(texts)} covers of {args.index}, fitted on {fitted} (seed {args.seed}), then {args.steps} updates to {bounds[-1]}; "
          f"{machine_line(describe_machine())}")
    label_columns = f" precision@{K} by words, update / refit |" if args.label else ""
    print(f"| covers | added since fit / covers at fit | unknown n-grams of the added | top-{K} overlap |"
          f"{label_columns} update s | refit s |")
    print("|---:|---:|---:|---:|" + ("---:|" if args.label else "") + "---:|---:|")
    for before, after in zip(bounds[:-1], bounds[1:]):
        new = all_texts[before:after]
        unknown, total = textsearch.unknown_grams(model, new)  # against the fitted vocabulary (model keeps it)
        added_since[0] += unknown
        added_since[1] += total
        kept = np.r_[np.arange(before), np.full(after - before, -1)]
        started = time.perf_counter()
        model = textsearch.update_text_vectors(model, kept, all_texts[:after])
        update_seconds = time.perf_counter() - started
        started = time.perf_counter()
        refit = textsearch.fit_text_vectors(all_texts[:after])
        refit_seconds = time.perf_counter() - started
        hashes = hashes_all[:after]
        queries = np.flatnonzero([bool(textsearch.normalise(t)) for t in all_texts[:after]])
        if args.queries and args.queries < len(queries):
            queries = np.sort(rng.choice(queries, args.queries, replace=False))
        share = overlap(top_k(model, queries, hashes, True), top_k(refit, queries, hashes, True))
        cells = ""
        if labels_all is not None:
            every = np.arange(after)
            labels = labels_all[:after]
            cells = (f" {precision(top_k(model, every, hashes, False), every, labels):.3f} / "
                     f"{precision(top_k(refit, every, hashes, False), every, labels):.3f} |")
        print(f"| {after:,} | {(after - fitted) / fitted:.2f} | {added_since[0] / max(added_since[1], 1):.3f} | "
              f"{share:.4f} |{cells} {update_seconds:.2f} | {refit_seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
