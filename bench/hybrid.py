"""Hybrid look-alikes benchmark: how often the 10 covers ranked nearest to each cover share its label
(artist on ../shared/artist-covers, genre on ../shared/covers), ranking by look, by words, and both fused.

Every cover of an index built with ``--read-text`` is a query in turn; covers with the query's content are
left out of its results, as ``sleeve recommend`` does. Modes, side by side:
- ``look``: cosine of the image embeddings (what ``recommend --by look`` ranks by);
- ``words``: recsys.textsearch.words_similarity of the printed text (``--by words``);
- ``z-score fusion 0.7 (reference)``: z-scored look + 0.7 z-scored cosine of whole texts, the issue's reference;
- ``rrf``: reciprocal rank fusion (k=60) of look and words, words weighted 0.7;
- ``fusion without feedback``: recsys.hybrid.hybrid_scores (z-scores, words weighted by the query's text);
- ``both``: recsys.hybrid.both_scores, that fusion plus pseudo-relevance feedback (two rounds from the five
  best candidates), spread over the collection's mutual-neighbour graph built from candidates
  (recsys.hybrid.candidate_neighbour_graph, what build-index stores above EXACT_GRAPH_MAX covers), what
  ``recommend --by both`` ranks by;
- ``both, exact graph (all pairs)``: the same spread over recsys.hybrid.exact_neighbour_graph, every cover
  scored against every other (what build-index stores up to EXACT_GRAPH_MAX covers), the reference the
  candidate graph must match;
- ``both before: feedback, not spread``: the same without the spreading (``--by both`` until 2026-12-04);
- ``spread without feedback``: the fusion spread over the graph, no feedback;
- ``both, feedback from 3 best, 1 round, not spread``: the narrower feedback sleeve used before that.

With ``--candidates`` only two modes run: ``both`` as above (every cover scored) and ``both from candidates``,
what ``recommend --by both`` ranks by above recsys.recommend.BOTH_EXACT_MAX covers, forced on at any size: the
covers recsys.recommend.both_candidates picks (the index's own FAISS search and a words engine written from the
words model) scored with collection-wide statistics (recsys.hybrid.candidate_statistics). It also prints how
many covers a query scored and how often its top 10 equals ``both``'s.

The ``owes`` columns give the share of ``both``'s top-10 results labelled look / words / both. Columns split
the queries: the artists of half A (sorted labels, every other one) and half B, and the query covers that
print their own label (any of its words of 3+ letters found by rapidfuzz's partial_ratio >= 70, as in
bench/textsearch.py's lenient ceiling) against those that do not: words can only find the label's other
covers through what the query prints.

    python cli.py build-index --manifest ../shared/artist-covers/MANIFEST.csv --index /tmp/artist-idx --read-text
    python bench/hybrid.py --index /tmp/artist-idx --label artist
    python bench/hybrid.py --index /tmp/artist-idx --label artist --candidates
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from bench.textsearch import prints  # noqa: E402
from index.store import shown_name  # noqa: E402
from index.words_engine import WordsEngine, write_engine  # noqa: E402
from recsys import hybrid, recommend, textsearch  # noqa: E402
from recsys.textstore import load_index_with_texts  # noqa: E402

K = 10


def reciprocal_rank_fusion(look: np.ndarray, words: np.ndarray, weight: float = 0.7, c: int = 60) -> np.ndarray:
    return (1 - weight) / (c + hybrid.ranks(look)) + weight / (c + hybrid.ranks(words))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="index built with --read-text")
    parser.add_argument("--label", default="artist", help="metadata column a good neighbour shares")
    parser.add_argument("--candidates", action="store_true",
                        help="compare both over every cover with both over recommend's candidates only")
    args = parser.parse_args()
    index, texts = load_index_with_texts(args.index)
    metadata = index.metadata.rename(columns=shown_name)  # manifest columns are stored as user:<name>
    labels = metadata[args.label].astype(str).str.lower().to_numpy()
    hashes = metadata["content_hash"].to_numpy()
    embeddings = np.asarray(index.embeddings)
    model = textsearch.fit_text_vectors(texts)
    started = time.perf_counter()
    graph = hybrid.candidate_neighbour_graph(embeddings, model, texts)
    graph_seconds = time.perf_counter() - started
    if args.candidates:
        compare_candidates(args, index, texts, labels, hashes, embeddings, model, graph)
        return
    started = time.perf_counter()
    exact = hybrid.exact_neighbour_graph(embeddings, model, texts)
    exact_seconds = time.perf_counter() - started
    names = ["look", "words", "z-score fusion 0.7 (reference)", "rrf", "fusion without feedback", "both",
             "both, exact graph (all pairs)",
             "both before: feedback, not spread", "spread without feedback",
             "both, feedback from 3 best, 1 round, not spread"]
    hits = {name: [] for name in names}
    owed = []
    for row, text in enumerate(texts):
        others = np.flatnonzero(hashes != hashes[row])
        both, look, words = hybrid.both_scores(embeddings, model, texts, others, embeddings[row], text, graph=graph)
        whole = np.asarray((model.covers[others] @ model.covers[row].T).toarray()).ravel()
        scores = {
            "look": look,
            "words": words,
            "z-score fusion 0.7 (reference)": hybrid.fuse(look, whole, 0.7),
            "rrf": reciprocal_rank_fusion(look, words),
            "fusion without feedback": hybrid.hybrid_scores(look, words, len(textsearch.normalise(text))),
            "both": both,
            "both, exact graph (all pairs)": hybrid.both_scores(
                embeddings, model, texts, others, embeddings[row], text, graph=exact
            )[0],
            "both before: feedback, not spread": hybrid.both_scores(
                embeddings, model, texts, others, embeddings[row], text
            )[0],
            "spread without feedback": hybrid.both_scores(
                embeddings, model, texts, others, embeddings[row], text, rounds=0, graph=graph
            )[0],
            "both, feedback from 3 best, 1 round, not spread": hybrid.both_scores(
                embeddings, model, texts, others, embeddings[row], text, neighbours=3, rounds=1
            )[0],
        }
        for name, score in scores.items():
            top = np.argsort(-score, kind="stable")[:K]
            hits[name].append(float(np.mean(labels[others[top]] == labels[row])))
        owed.extend(hybrid.owed_to(look, words, K)[np.argsort(-scores["both"], kind="stable")[:K]])
    owed = np.array(owed)
    with_text = sum(bool(textsearch.normalise(t)) for t in texts)
    print(f"# same-{args.label} precision@{K}, {len(texts)} covers ({with_text} with text) of {args.index}; "
          f"{machine_line(describe_machine())}")
    half = np.isin(labels, np.unique(labels)[::2])
    printed = np.array([bool(prints(label, [text], strict=False)[0]) for label, text in zip(labels, texts)])
    print(f"| mode | precision@10 | half A / half B | query prints its {args.label} ({printed.sum()}) / not "
          f"({(~printed).sum()}) |")
    print("|---|---:|---:|---:|")
    for name in names:
        h = np.array(hits[name])
        print(f"| {name} | {h.mean():.3f} | {h[half].mean():.3f} / {h[~half].mean():.3f} | "
              f"{h[printed].mean():.3f} / {h[~printed].mean():.3f} |")
    others_of = [np.flatnonzero((labels == label) & (hashes != digest)) for label, digest in zip(labels, hashes)]
    cap = np.array([min(K, len(same)) / K for same in others_of])
    reachable = np.array([min(K, int(printed[same].sum())) / K for same in others_of])
    estimate = np.where(printed, reachable, np.array(hits["both"])).mean()
    print(f"\nceilings: min({K}, other covers of the {args.label}) / {K} = {cap.mean():.3f}; queries that print their "
          f"{args.label} ranking first all other covers that print it, the rest as both: {estimate:.3f}")
    common = graph.multiply(exact).nnz // 2
    print(f"\nneighbour graph from candidates: {graph.nnz // 2} mutual links among {len(texts)} covers, built once "
          f"in {graph_seconds:.1f} s; exact (all pairs): {exact.nnz // 2} links in {exact_seconds:.1f} s; "
          f"{common} links in both")
    shares = ", ".join(f"{part} {np.mean(owed == part):.2f}" for part in hybrid.MODES)
    print(f"\nboth's top {K} owe their rank to: {shares}")


def compare_candidates(args: argparse.Namespace, index, texts, labels, hashes, embeddings, model, graph) -> None:
    """Precision@10 of both over every cover and over recommend.both_candidates, and how far apart they are."""
    statistics = hybrid.candidate_statistics(embeddings)
    hits: dict[str, list[float]] = {"both": [], "both from candidates": []}
    same, sizes, seconds = 0, [], []
    with tempfile.TemporaryDirectory() as scratch:
        write_engine(Path(scratch) / "engine", model.terms, model.covers.indices, model.covers.indptr)
        engine = WordsEngine(Path(scratch) / "engine", len(texts))

        def nearest(vectors: np.ndarray, count: int) -> np.ndarray:
            return index.faiss_index.search(np.ascontiguousarray(vectors, dtype=np.float32), count)[1]

        for row, text in enumerate(texts):
            allowed = hashes != hashes[row]
            others = np.flatnonzero(allowed)
            full = hybrid.both_scores(embeddings, model, texts, others, embeddings[row], text, graph=graph)[0]
            started = time.perf_counter()
            collection = hybrid.CollectionScores(statistics, model)
            rows = recommend.both_candidates(embeddings, model, texts, allowed, embeddings[row], text, nearest,
                                             engine, graph, collection, K)
            if rows is None:  # as recommend does when the query's own candidates are too few
                rows, scores = others, full
            else:
                scores = hybrid.both_scores(embeddings, model, texts, rows, embeddings[row], text, graph=graph,
                                            collection=collection)[0]
            seconds.append(time.perf_counter() - started)
            sizes.append(len(rows))
            tops = others[np.argsort(-full, kind="stable")[:K]], rows[np.argsort(-scores, kind="stable")[:K]]
            same += list(tops[0]) == list(tops[1])
            for name, top in zip(hits, tops):
                hits[name].append(float(np.mean(labels[top] == labels[row])))
    print(f"# same-{args.label} precision@{K}, {len(texts)} covers of {args.index}; {machine_line(describe_machine())}")
    print(f"# recommend.LOOK_NEIGHBOURS {recommend.LOOK_NEIGHBOURS}, WORDS_NEIGHBOURS {recommend.WORDS_NEIGHBOURS}, "
          f"FEEDBACK_WORDS_NEIGHBOURS {recommend.FEEDBACK_WORDS_NEIGHBOURS}")
    print("| mode | precision@10 |\n|---|---:|")
    for name, h in hits.items():
        print(f"| {name} | {np.mean(h):.3f} |")
    print(f"\ncandidates per query: median {np.median(sizes):.0f}, max {max(sizes)}; same top {K} as both over every "
          f"cover for {same} of {len(texts)} queries; candidate path {1000 * np.median(seconds):.1f} ms p50")


if __name__ == "__main__":
    main()
