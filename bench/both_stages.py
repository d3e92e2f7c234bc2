"""Which stage of ``--by both`` loses the planted covers' precision among distractors (issue 27).

bench/collection_scale.py measured that ``both`` falls below ``words`` as a collection grows. This ranks the
planted covers of a kept collection (``--keep``; or any index built with ``--read-text`` whose ``--label``
column is set, such as the artist covers with no distractors) with each stage of recsys.hybrid.both_scores
switched on in turn, over the whole collection (z-scores over every cover, the exact path, as
collection_scale's precision does):
- ``words``, ``look``: each alone;
- ``fusion``: hybrid_scores (z-scores, words floor, words weight by the query's text), no feedback, no graph;
- ``fusion + feedback``: the two feedback rounds, no graph;
- ``fusion + spread``: the spreading over the index's stored neighbour graph, no feedback;
- ``both``: feedback, then spreading (what ``recommend --by both`` ranks by).

Precision@10 is collection_scale's (planted_tops, same_label), split by the artists of half A and half B as
bench/hybrid.py splits them (sorted labels, every other one), and by whether the query prints any text;
beside it, what the other places of the top 10 hold: distractors (no label) or other artists' covers.
``--set NAME=VALUE`` overrides a recsys.hybrid constant (words floor, feedback, spreading) for one run, to
measure a change before making it. The neighbour graph is the stored one: a constant the graph was built with
changes the queries' side only.

    python bench/both_stages.py --index /tmp/bothscale/sleeve-scale-10000-*/index
    python bench/both_stages.py --index /tmp/s21/artist-idx          # no distractors
    python bench/both_stages.py --index /tmp/s21/artist-idx --variant SPREAD_SEEDS=20 --variant SPREAD=0.5
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.collection_scale import planted_queries, planted_tops, same_label  # noqa: E402
from bench.machine import describe_machine, machine_line  # noqa: E402
from index.store import load_index, shown_name  # noqa: E402
from recsys import hybrid, textsearch  # noqa: E402

Ranker = Callable[[int, np.ndarray], dict[str, np.ndarray]]


def with_constants(settings: dict[str, str], work: Callable[[], np.ndarray]) -> np.ndarray:
    """``work()`` with recsys.hybrid's constants set to ``settings`` (NAME -> VALUE) meanwhile."""
    before = {name: getattr(hybrid, name) for name in settings}
    try:
        for name, value in settings.items():
            setattr(hybrid, name, type(before[name])(value))
        return work()
    finally:
        for name, value in before.items():
            setattr(hybrid, name, value)


def stage_ranker(embeddings: np.ndarray, model: textsearch.TextModel, texts: list[str], graph,
                 variants: list[str]) -> Ranker:
    """rank(row, others) for planted_tops: each stage's scores of the ``others`` for query cover ``row``. With
    ``variants`` (each "NAME=VALUE[,NAME=VALUE]"), only feedback, both and both's spreading under each variant's
    constants, all from one feedback run: a spreading change costs no feedback rounds."""

    def rank_variants(row: int, others: np.ndarray) -> dict[str, np.ndarray]:
        fed = hybrid.both_scores(embeddings, model, texts, others, np.asarray(embeddings[row]), texts[row],
                                 neighbours=hybrid.FEEDBACK_NEIGHBOURS, rounds=hybrid.FEEDBACK_ROUNDS)[0]

        def spread() -> np.ndarray:
            return hybrid.spread_from(graph, others, fed, len(texts), hybrid.SPREAD, hybrid.SPREAD_SEEDS,
                                      hybrid.SPREAD_FOCUS, links_at=hybrid.SPREAD_LINKS_AT)

        found = {"fusion + feedback": fed, "both": spread()}
        for variant in variants:
            settings = dict(setting.split("=", 1) for setting in variant.split(","))
            found[f"both, {variant}"] = with_constants(settings, spread)
        return found

    def rank(row: int, others: np.ndarray) -> dict[str, np.ndarray]:
        vector, text = np.asarray(embeddings[row]), texts[row]

        def both(rounds: int, with_graph: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            # the module's constants read now, so that --set reaches the defaults bound at definition too
            return hybrid.both_scores(embeddings, model, texts, others, vector, text,
                                      neighbours=hybrid.FEEDBACK_NEIGHBOURS, rounds=rounds,
                                      graph=graph if with_graph else None, spread=hybrid.SPREAD)

        fusion, look, words = both(0, False)
        return {
            "words": words,
            "look": look,
            "fusion": fusion,
            "fusion + feedback": both(hybrid.FEEDBACK_ROUNDS, False)[0],
            "fusion + spread": both(0, True)[0],
            "both": both(hybrid.FEEDBACK_ROUNDS, True)[0],
        }

    return rank_variants if variants else rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="index folder built with --read-text")
    parser.add_argument("--label", default="artist", help="metadata column a good neighbour shares ('' = none)")
    parser.add_argument("--queries", type=int, help="planted covers to rank (all by default)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a recsys.hybrid constant for this run (e.g. FEEDBACK_WEIGHT=0.5)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                        help="also rank by both with these recsys.hybrid spreading constants, from the same "
                             "feedback (repeatable); then only feedback, both and the variants are ranked")
    args = parser.parse_args()
    for setting in args.set:
        name, value = setting.split("=", 1)
        if not hasattr(hybrid, name):
            raise SystemExit(f"recsys.hybrid has no constant {name}")
        setattr(hybrid, name, type(getattr(hybrid, name))(value))

    from recsys.recommend import Recommender

    machine = describe_machine()
    recommender = Recommender.open(args.index)
    metadata = load_index(args.index).metadata.rename(columns=shown_name)
    labels = metadata[args.label].fillna("").astype(str).str.lower().to_numpy()
    hashes = metadata["content_hash"].to_numpy()
    texts = [str(t) for t in recommender.texts]
    embeddings = np.asarray(recommender.index.embeddings)
    graph = recommender._graph
    rows = planted_queries(labels, args.queries)
    started = time.perf_counter()
    tops = planted_tops(hashes, rows, stage_ranker(embeddings, recommender._text_model, texts, graph, args.variant))
    seconds = time.perf_counter() - started

    half_a = np.isin(labels[rows], np.unique(labels[labels != ""])[::2])
    has_text = np.array([bool(textsearch.normalise(texts[row])) for row in rows])
    print(f"# same-{args.label} precision@10 of {len(rows)} planted covers among {len(texts):,} covers of "
          f"{args.index}; {machine_line(machine)}; load average {machine['load_average_1m']} at start"
          + (f"; set {', '.join(args.set)}" if args.set else ""))
    print(f"| stage | all | half A ({half_a.sum()}) / half B ({(~half_a).sum()}) | with text ({has_text.sum()}) / "
          f"without ({(~has_text).sum()}) | top 10: distractors / other artists |")
    print("|---|---:|---:|---:|---:|")
    for name, top in tops.items():
        h = same_label(labels, rows, top)
        distractors = float(np.mean(labels[top] == ""))
        print(f"| {name} | {h.mean():.3f} | {h[half_a].mean():.3f} / {h[~half_a].mean():.3f} | "
              f"{h[has_text].mean():.3f} / {h[~has_text].mean() if (~has_text).any() else float('nan'):.3f} | "
              f"{distractors:.3f} / {1 - h.mean() - distractors:.3f} |")
    print(f"\n{seconds:.0f} s for {len(rows)} queries; graph: "
          f"{'none' if graph is None else f'{graph.nnz // 2:,} mutual links'}")


if __name__ == "__main__":
    main()
