"""bench/words_variants.py: its 'today' variant is the graph's words scoring and its STORED variant the query's,
its top 10 is a stable argsort's, and its remedies score a partial or generic line below a whole name."""

from __future__ import annotations

import numpy as np

from bench.words_variants import STORED, top_k, variant_scores
from recsys import textsearch

TEXTS = ["POWERWOLF\nBlessed", "POWER\nANN", "LIVE\nstereo", "Powerwolf\nLupus Dei", "LIVE\nHerbie Hancock", ""]


def test_today_is_the_graphs_scoring_stored_the_querys_and_remedies_favour_the_whole_name() -> None:
    model = textsearch.fit_text_vectors(TEXTS)
    queries = textsearch.vectorise_queries(model, [TEXTS[0], TEXTS[4]])  # covers 0 and 4 asked by their own text
    scores = variant_scores(model, queries)
    assert np.array_equal(scores[STORED], textsearch.words_similarities(model, queries))
    assert np.allclose(scores["today"].T, textsearch.words_similarity_rows(model, np.array([0, 4])), atol=1e-6)
    assert not np.allclose(scores["today"], scores[STORED], atol=1e-3)
    for name in ("containment", "sharp p=2"):  # "power" holds part of "powerwolf": it counts for less
        assert scores[name][1, 0] < scores["today"][1, 0]
        assert np.isclose(scores[name][3, 0], scores["today"][3, 0])  # the whole name still counts fully
    # "live" is a short line: informative weighting lowers what it shares with cover 2
    assert scores["informative M=80"][2, 1] < scores["today"][2, 1]


def test_top_k_is_a_stable_argsort_of_each_column() -> None:
    scores = np.random.default_rng(0).integers(0, 4, (50, 6)).astype(np.float32)
    scores[7, 2] = -np.inf
    for column, top in enumerate(top_k(scores)):
        assert np.array_equal(top, np.argsort(-scores[:, column], kind="stable")[:10])
