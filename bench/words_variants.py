"""Which words scoring resists distractors (issue 27)? Same-artist precision@10 by words of the planted covers
under a few scoring variants, all computed from the stored words model.

Each planted cover (a row with an artist) is a query; every cover is scored and the query's own content left
out, as bench/collection_scale.py's ``precision(..., with_both=False)`` ranks them (ties in row order). A score
is ``a * whole + (1 - a) * best``: ``whole`` the cosine of the two covers' TF-IDF rows, ``best`` the best line
score between any printed line (or adjacent pair) of the query and one of the cover's. Variants:
- today: a = 0.5, line score = the cosine of the two lines (what words queries scored before issue 27, and the
  neighbour graph's line score still: recsys.textsearch.words_similarity_rows);
- mix: another ``a``, the line score the cosine;
- informative: a = 0.5, the cosine times min(1, the query line's summed n-gram IDF / M): a short generic line
  ("live", "stereo") no longer counts as much as a name;
- sharp: a = 0.5, the cosine to the power p: a line that only shares part of a name ("power" for
  "powerwolf", cosine 0.6) counts less, an identical line still 1;
- containment: a = 0.5, the share of the query line's TF-IDF weight (L1) on n-grams the cover's line holds
  ("power" holds 4 of the 9 n-grams of "powerwolf", and little of their weight);
- containment x informative: both remedies at once (M chosen again);
- containment x relative informative: the same with a scale-free M = c times ln(covers + 1) + 1 (the smoothed
  IDF's bound), which grows with the collection as IDFs do; c = textsearch.LINE_INFORMATIVE_SHARE is what words
  queries score now (recsys.textsearch.words_similarities; checked, bit for bit).
Each constant (a, M, p) is chosen on half A of the artists (sorted labels, every other one, as bench/hybrid.py
splits them) and confirmed on half B: the value with the best half A precision, averaged over the indexes with
distractors, among those within 0.005 of today's half A precision on the indexes without.

    python bench/words_variants.py --index /tmp/s21/artist-idx /tmp/s21/scale/sleeve-scale-10000-*/index \\
        /tmp/s21/scale/sleeve-scale-100000-*/index
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parents[1])).split(os.pathsep)[0])

from bench.collection_scale import planted_queries  # noqa: E402
from bench.machine import describe_machine, machine_line  # noqa: E402
from index.store import load_index, shown_name  # noqa: E402
from recsys import textsearch  # noqa: E402
from recsys.recommend import Recommender  # noqa: E402

K = 10
CHUNK = 32
"""Queries scored per sparse product: bounds the dense (covers, queries) arrays and the line products."""
MIXES = (0.25, 0.75, 1.0, 0.0)
INFORMATIVE_M = (20.0, 30.0, 40.0, 50.0, 60.0, 80.0)
SHARP_P = (2.0, 3.0, 4.0)
RELATIVE_C = (3.0, 4.0, 5.0, 6.0, 8.0)
FAMILIES = ("mix", "informative", "sharp", "containment x informative", "containment x relative informative")
"""The variants with a constant, each picked on half A (chosen)."""
NO_DISTRACTOR_SLACK = 0.005
STORED = f"containment x relative informative c={textsearch.LINE_INFORMATIVE_SHARE:g}"
"""The variant words queries score (textsearch.words_similarities)."""


def variant_scores(model: textsearch.TextModel, queries: textsearch.Queries) -> dict[str, np.ndarray]:
    """Every variant's (covers, queries) scores of ``queries`` against all covers, by name."""
    nq = len(queries)
    shape = (model.covers.shape[0], nq)
    whole = (model.covers @ queries.covers.T).toarray()
    pairs = (model.lines @ queries.lines.T).tocsr()
    best = textsearch.best_line_scores(pairs, model.line_owner, queries.line_owner, pairs.data, shape)
    scores = {"today": 0.5 * whole + 0.5 * best}
    scores |= {f"mix a={a}": a * whole + (1 - a) * best for a in MIXES}
    for p in SHARP_P:
        scores[f"sharp p={p:g}"] = 0.5 * whole + 0.5 * textsearch.best_line_scores(
            pairs, model.line_owner, queries.line_owner, pairs.data.astype(np.float64) ** p, shape)
    idf_sum = textsearch.line_idf_sums(queries.lines, model.idf)
    for m in INFORMATIVE_M:
        weight = np.minimum(1.0, idf_sum / m)[pairs.indices]
        scores[f"informative M={m:g}"] = 0.5 * whole + 0.5 * textsearch.best_line_scores(
            pairs, model.line_owner, queries.line_owner, pairs.data * weight, shape)
    contained = textsearch.line_containment(model.lines, queries.lines)
    scores["containment"] = 0.5 * whole + 0.5 * textsearch.best_line_scores(
        contained, model.line_owner, queries.line_owner, contained.data, shape)
    for m in INFORMATIVE_M:
        weight = np.minimum(1.0, idf_sum / m)[contained.indices]
        scores[f"containment x informative M={m:g}"] = 0.5 * whole + 0.5 * textsearch.best_line_scores(
            contained, model.line_owner, queries.line_owner, contained.data * weight, shape)
    for c in RELATIVE_C:
        weight = np.minimum(1.0, idf_sum / textsearch.informative_idf(model, c))[contained.indices]
        scores[f"containment x relative informative c={c:g}"] = 0.5 * whole + 0.5 * textsearch.best_line_scores(
            contained, model.line_owner, queries.line_owner, contained.data * weight, shape)
    return scores


def top_k(scores: np.ndarray, k: int = K) -> list[np.ndarray]:
    """The rows of each column's ``k`` highest scores, ties in row order: np.argsort(-column, kind="stable")[:k]
    of every column, without sorting every cover."""
    kth = np.partition(scores, scores.shape[0] - k, axis=0)[scores.shape[0] - k]
    row, column = np.nonzero(scores >= kth)  # the top k and any ties with the k-th, row-major: rows ascending
    order = np.lexsort((row, -scores[row, column], column))
    row, column = row[order], column[order]
    starts = np.searchsorted(column, np.arange(scores.shape[1]))
    return [row[start : start + k] for start in starts]


def precisions(model: textsearch.TextModel, texts: list[str], labels: np.ndarray, hashes: np.ndarray,
               rows: np.ndarray, check: Callable[[textsearch.Queries, np.ndarray], None] | None = None,
               ) -> dict[str, np.ndarray]:
    """Precision@10 of each query ``rows[i]`` under each variant, by name."""
    content = np.unique(hashes, return_inverse=True)[1]
    hits: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        own_row, own_query = np.nonzero(content[:, None] == content[chunk][None, :])  # the queries' own content
        queries = textsearch.vectorise_queries(model, [texts[row] for row in chunk])
        scores = variant_scores(model, queries)
        if check is not None:
            check(queries, scores[STORED])
        for name, matrix in scores.items():
            matrix = matrix.astype(np.float32)  # float32 scores, as the product ranks them
            matrix[own_row, own_query] = -np.inf
            tops = top_k(matrix)
            hits.setdefault(name, []).append(np.array([np.mean(labels[top] == labels[row])
                                                       for top, row in zip(tops, chunk)]))
    return {name: np.concatenate(found) for name, found in hits.items()}


def check_stored(model: textsearch.TextModel) -> Callable[[textsearch.Queries, np.ndarray], None]:
    """A check that the STORED variant is the stored scoring, bit for bit."""
    def check(queries: textsearch.Queries, variant: np.ndarray) -> None:
        stored = textsearch.words_similarities(model, queries)
        if not np.array_equal(stored, variant.astype(stored.dtype)):
            raise SystemExit(f"'{STORED}' differs from words_similarities: max {np.abs(stored - variant).max():.3g}")
    return check


def measure(folder: Path, limit: int | None) -> dict[str, np.ndarray]:
    """Per-query precision of every variant, the half A mask and whether the index holds distractors (covers
    without an artist), for one index folder."""
    recommender = Recommender(load_index(folder))
    metadata = recommender.index.metadata.rename(columns=shown_name)
    labels = metadata["artist"].fillna("").astype(str).str.lower().to_numpy()
    hashes = metadata["content_hash"].to_numpy()
    texts = [str(text) for text in recommender.texts]
    rows = planted_queries(labels, limit)
    model = recommender._text_model
    started = time.perf_counter()
    found = precisions(model, texts, labels, hashes, rows, check_stored(model))
    print(f"{folder}: {len(labels):,} covers, {len(rows)} queries, {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    half_a = np.isin(labels[rows], np.unique(labels[rows])[::2])
    return found | {"_half_a": half_a, "_distractors": np.array(np.any(labels == ""))}


def chosen(results: list[dict[str, np.ndarray]], family: str, distractors: list[bool]) -> str:
    """The variant of ``family`` picked on half A: best mean half A precision over the indexes with
    distractors, among those within NO_DISTRACTOR_SLACK of today's half A on the indexes without."""
    def half_a(result: dict[str, np.ndarray], name: str) -> float:
        return float(result[name][result["_half_a"]].mean())

    names = [name for name in results[0] if name.startswith(family)]
    kept = [name for name in names if all(half_a(r, name) >= half_a(r, "today") - NO_DISTRACTOR_SLACK
                                          for r, d in zip(results, distractors) if not d)]
    return max(kept or names, key=lambda name: np.mean([half_a(r, name) for r, d in zip(results, distractors) if d]))


def print_table(results: list[dict[str, np.ndarray]], sizes: list[int], names: list[str], what: str,
                cell: Callable[[dict[str, np.ndarray], str], str]) -> None:
    """One markdown table: the variants ``names`` down, the indexes across."""
    print("| variant | " + " | ".join(f"{size:,} covers: {what}" for size in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for name in names:
        print(f"| {name} | " + " | ".join(cell(r, name) for r in results) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, nargs="+", required=True,
                        help="index folders with text and planted artists (the artists alone first)")
    parser.add_argument("--queries", type=int, help="planted covers to ask (a fixed sample; all by default)")
    args = parser.parse_args()
    machine = describe_machine()
    print(f"# words scoring variants, {machine['date']}")
    print(f"machine: {machine_line(machine)}; load average {machine['load_average_1m']} at start")
    print(f"command: python bench/words_variants.py {' '.join(sys.argv[1:])}\n")
    results = [measure(folder, args.queries) for folder in args.index]
    sizes = [len(load_index(folder).metadata) for folder in args.index]
    distractors = [bool(r["_distractors"]) for r in results]
    picks = {family: chosen(results, family, distractors) for family in FAMILIES}
    shown = ["today", "mix a=1.0", "mix a=0.0", "containment", *picks.values()]
    print(f"chosen on half A: {', '.join(picks.values())}\n")
    print_table(results, sizes, list(dict.fromkeys(shown)), "A / B / all", lambda r, n: (
        f"{r[n][r['_half_a']].mean():.3f} / {r[n][~r['_half_a']].mean():.3f} / {r[n].mean():.3f}"))
    print("\nevery constant tried, half A only (what chose them):\n")
    print_table(results, sizes, [n for n in results[0] if n.startswith(FAMILIES)], "half A",
                lambda r, n: f"{r[n][r['_half_a']].mean():.3f}")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
