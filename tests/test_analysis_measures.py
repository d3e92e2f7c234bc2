"""Each separability measure on synthetic genres whose answer is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analysis import narrative
from analysis.classifier_metrics import MetricsFileError, read_recall
from analysis.covermap import NOISE
from analysis.profiles import ClusterProfile, GenreFit, cluster_profiles
from analysis.separability import (
    chance_purity,
    cluster_agreement,
    confusability,
    genre_silhouette,
    nearest_neighbours,
    overall_purity,
    separability_table,
)
from analysis.traits import image_traits
from tests.analysis_helpers import blobs

SEPARATE = {"country": 40, "jazz": 40, "rock": 40}


def measures(embeddings: np.ndarray, genres: np.ndarray, k: int = 10) -> pd.DataFrame:
    confusion = confusability(nearest_neighbours(embeddings, k), genres)
    return separability_table(
        genre_silhouette(embeddings, genres), confusion, chance_purity(genres), pd.Series(genres).value_counts()
    )


def test_nearest_neighbours_match_brute_force_and_exclude_self() -> None:
    embeddings, _ = blobs({"a": 30, "b": 25}, spread=0.5)
    found = nearest_neighbours(embeddings, 5)
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    expected = np.argsort(-similarity, axis=1)[:, :5]
    assert (found == expected).all()
    assert not (found == np.arange(len(embeddings))[:, None]).any()


def test_nearest_neighbours_refuse_k_as_large_as_the_collection() -> None:
    embeddings, _ = blobs({"a": 4})
    with pytest.raises(ValueError, match="between 1 and 3"):
        nearest_neighbours(embeddings, 4)


def test_well_separated_genres_have_high_silhouette_and_purity() -> None:
    table = measures(*blobs(SEPARATE))
    assert (table["purity"] == 1.0).all()
    assert (table["silhouette"] > 0.8).all()
    assert (table["lift"] > 2.5).all()


def test_two_mixed_genres_confuse_each_other_and_the_separate_one_does_not() -> None:
    embeddings, genres = blobs({"pop": 50, "electronic": 50, "country": 50}, shared_centre=("pop", "electronic"))
    confusion = confusability(nearest_neighbours(embeddings, 10), genres)
    assert confusion.loc["pop", "electronic"] > 0.3
    assert confusion.loc["electronic", "pop"] > 0.3
    assert confusion.loc["country", "country"] == 1.0
    np.testing.assert_allclose(confusion.sum(axis=1), 1.0)
    table = measures(embeddings, genres)
    assert table.index[0] == "country"
    assert table.loc["country", "rank"] == 1
    assert table.loc["pop", "silhouette"] < 0.1 < table.loc["country", "silhouette"]
    assert table.loc["pop", "closest"] == "electronic"


def test_chance_purity_is_the_share_of_the_other_covers() -> None:
    chance = chance_purity(np.array(["a"] * 3 + ["b"] * 7, dtype=object))
    assert chance["a"] == pytest.approx(2 / 9)
    assert chance["b"] == pytest.approx(6 / 9)


def test_overall_purity_weights_genres_by_their_size() -> None:
    table = pd.DataFrame({"covers": [30, 10], "purity": [0.5, 0.1], "chance": [0.7, 0.2]}, index=["a", "b"])
    purity, chance = overall_purity(table)
    assert purity == pytest.approx(0.4) and chance == pytest.approx(0.575)


def test_silhouette_on_a_sample_stays_close_to_the_full_value() -> None:
    embeddings, genres = blobs({"a": 200, "b": 200}, spread=0.3, shared_centre=())
    full = genre_silhouette(embeddings, genres)
    sampled = genre_silhouette(embeddings, genres, max_covers=150, seed=1)
    np.testing.assert_allclose(sampled, full, atol=0.05)


def test_cluster_agreement_is_perfect_for_clusters_that_are_genres_whatever_their_numbers() -> None:
    genres = np.array(["a"] * 10 + ["b"] * 10 + ["c"] * 10, dtype=object)
    labels = np.repeat([2, 0, 1], 10)
    labels[[0, 15]] = NOISE
    agreement = cluster_agreement(labels, genres)
    assert agreement.ari == pytest.approx(1.0)
    assert agreement.nmi == pytest.approx(1.0)
    assert agreement.homogeneity == pytest.approx(1.0) and agreement.completeness == pytest.approx(1.0)
    assert agreement.clustered_share == pytest.approx(28 / 30)
    assert agreement.contingency.loc[NOISE].sum() == 2
    assert agreement.contingency.loc[2, "a"] == 9


def test_cluster_agreement_of_clusters_unrelated_to_genre_is_near_zero() -> None:
    rng = np.random.default_rng(0)
    genres = rng.choice(np.array(["a", "b", "c"], dtype=object), size=600)
    agreement = cluster_agreement(rng.integers(0, 4, size=600), genres)
    assert abs(agreement.ari) < 0.02
    assert agreement.nmi < 0.02


def test_splitting_a_genre_keeps_homogeneity_but_lowers_completeness() -> None:
    genres = np.array(["a"] * 20 + ["b"] * 20, dtype=object)
    agreement = cluster_agreement(np.repeat([0, 1, 2, 2], 10), genres)
    assert agreement.homogeneity == pytest.approx(1.0)
    assert agreement.completeness < 0.8


def test_classifier_recall_comes_from_the_best_model_or_the_named_one(tmp_path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"models": {
        "knn": {"macro_f1": 0.3, "per_genre": {"pop": {"precision": 0.2, "recall": 0.1, "f1": 0.1, "support": 9}}},
        "logreg": {"macro_f1": 0.5, "per_genre": {"pop": {"precision": 0.5, "recall": 0.6, "f1": 0.5, "support": 9},
                                                   "rock": {"precision": 0.4, "recall": 0.7, "f1": 0.5, "support": 9}}},
    }}))
    model, recall = read_recall(path)
    assert model == "logreg" and recall.to_dict() == {"pop": 0.6, "rock": 0.7}
    assert read_recall(path, "knn")[1]["pop"] == 0.1
    with pytest.raises(MetricsFileError, match="knn, logreg"):
        read_recall(path, "svm")


@pytest.mark.parametrize("content", ["{not json", '{"models": {}}', '{"models": {"m": {"macro_f1": 1, "per_genre": {"pop": {}}}}}'])
def test_unusable_metrics_files_raise_a_user_error(tmp_path, content: str) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(content)
    with pytest.raises(MetricsFileError):
        read_recall(path)
    with pytest.raises(MetricsFileError, match="not found"):
        read_recall(tmp_path / "missing.json")


def test_sentences_name_the_separate_genre_and_the_rival_of_the_mixed_ones() -> None:
    embeddings, genres = blobs({"pop": 50, "electronic": 50, "country": 50}, shared_centre=("pop", "electronic"))
    table = measures(embeddings, genres)
    sentences = dict(zip(table.index, narrative.ranking_sentences(table, 10)))
    assert sentences["country"].startswith("country has a look of its own: 100% of country covers' 10 nearest")
    assert "electronic" in sentences["pop"] and "pop" in sentences["electronic"]
    assert "Across all 150 labelled covers" in narrative.overall_sentence(table, 10)


def genre_row(purity: float, chance: float, rival: str, rival_share: float) -> pd.Series:
    return pd.Series({"purity": purity, "chance": chance, "lift": purity / chance, "closest": rival,
                      "closest_share": rival_share})


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (genre_row(0.23, 0.18, "country", 0.25),
         "pop and country blur: 25% of pop covers' neighbours are country, only 23% are pop (chance 18%)."),
        (genre_row(0.44, 0.22, "country", 0.18),
         "pop has a look of its own: 44% of pop covers' 10 nearest neighbours are pop, 2.0x chance; "
         "it blurs most with country (18%)."),
        (genre_row(0.23, 0.18, "country", 0.22),
         "pop is barely apart: 23% of pop covers' neighbours are pop, only 1.3x chance, with country close "
         "behind (22%)."),
    ],
)
def test_the_wording_follows_the_numbers(row: pd.Series, expected: str) -> None:
    assert narrative.genre_sentence("pop", row, 10) == expected


def test_sentence_mentions_recall_when_a_classifier_was_evaluated() -> None:
    embeddings, genres = blobs(SEPARATE)
    confusion = confusability(nearest_neighbours(embeddings, 5), genres)
    recall = pd.Series({"country": 0.81, "jazz": 0.5, "rock": 0.4})
    table = separability_table(genre_silhouette(embeddings, genres), confusion, chance_purity(genres),
                               pd.Series(genres).value_counts(), recall)
    assert table.loc["country", "recall"] == 0.81
    assert "A classifier recalls 81% of country covers." in narrative.genre_sentence("country", table.loc["country"], 5)


def profile(shares: dict[str, float]) -> ClusterProfile:
    return ClusterProfile(0, 10, pd.Series(shares).sort_values(ascending=False), pd.Series(dtype=float), [])


def test_clusters_follow_lean_to_or_mix_genres() -> None:
    overall = pd.Series({"pop": 0.2, "rock": 0.8})
    assert profile({"pop": 0.6, "rock": 0.4}).genre_fit(overall) is GenreFit.FOLLOWS
    assert profile({"rock": 0.55, "pop": 0.45}).genre_fit(overall) is GenreFit.FOLLOWS
    assert profile({"pop": 0.4, "x": 0.3, "rock": 0.3}).genre_fit(overall) is GenreFit.LEANS
    assert profile({"rock": 0.5, "pop": 0.5}).genre_fit(overall) is GenreFit.MIXED
    sentence = narrative.cluster_sentence(profile({"pop": 0.4, "x": 0.3, "rock": 0.3}), overall)
    assert "leans to pop: 40% pop (vs 20% of all covers)" in sentence


def test_cluster_profiles_name_size_mix_traits_and_typical_examples() -> None:
    labels = np.array([0] * 6 + [1] * 4 + [NOISE] * 2)
    probabilities = np.array([1, 1, 1, 1, 1, 0.2, 1, 1, 1, 1, 0, 0], dtype=float)
    reduced = np.zeros((12, 2))
    reduced[0] = [5, 5]  # member far from its cluster's centre
    genres = pd.Series(["a"] * 5 + ["b"] + ["b"] * 4 + ["a", "b"], dtype="string")
    traits = pd.DataFrame({"brightness": [0.1] * 6 + [0.9] * 6})
    profiles = cluster_profiles(labels, probabilities, reduced, genres, traits, examples=3)
    assert [p.cluster for p in profiles] == [0, 1] and [p.size for p in profiles] == [6, 4]
    assert profiles[0].top_genre == "a" and profiles[0].top_share == pytest.approx(5 / 6)
    assert profiles[0].examples == [1, 2, 3]  # sure members near the centre, not row 0 (far) or row 5 (unsure)
    assert profiles[0].trait_scores["brightness"] < 0 < profiles[1].trait_scores["brightness"]
    assert "darker" in narrative.trait_phrase(profiles[0])
    assert "brighter" in narrative.trait_phrase(profiles[1])


def test_image_traits_tell_dark_from_bright_and_plain_from_busy() -> None:
    dark = image_traits(Image.new("RGB", (100, 100), (10, 10, 40)))
    bright = image_traits(Image.new("RGB", (100, 100), (250, 240, 200)))
    checks = (np.indices((100, 100)) // 10).sum(axis=0) % 2 * 255
    busy = image_traits(Image.fromarray(checks.astype(np.uint8)).convert("RGB"))
    assert dark["brightness"] < 0.1 < 0.9 < bright["brightness"]
    assert dark["warmth"] < 0 < bright["warmth"]
    assert dark["detail"] == 0.0 and busy["detail"] > 0.05
    assert busy["saturation"] == 0.0 and dark["saturation"] > 0.5
