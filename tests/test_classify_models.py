"""Every embedding model fits, predicts and gives probabilities on separable synthetic vectors; tuning
chooses on the validation covers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize

from recsys.classify.data import LabelledCovers
from recsys.classify.models import RECIPES, FaissKNeighbors, ModelUnavailableError, ZeroShotClassifier
from recsys.classify.train import fit_model

GENRES = np.array(["country", "electronic", "hip-hop", "pop", "rock"], dtype=object)


def blobs(n_per_genre: int, seed: int, spread: float = 0.6, dim: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around one random centre per genre: separable, but not trivially (spread ~ centre distance)."""
    centres = normalize(np.random.default_rng(0).normal(size=(len(GENRES), dim)))
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(len(GENRES)), n_per_genre)
    vectors = centres[codes] + rng.normal(scale=spread / np.sqrt(dim), size=(len(codes), dim))
    return normalize(vectors).astype(np.float32), GENRES[codes]


def covers(n_per_genre: int, seed: int) -> LabelledCovers:
    vectors, genres = blobs(n_per_genre, seed)
    return LabelledCovers(np.array([f"{i}.jpg" for i in range(len(genres))], dtype=object), genres, vectors)


@pytest.mark.parametrize("name", ["1nn", "knn", "linear", "svm"])
def test_each_model_learns_separable_genres(name: str) -> None:
    train, validation, test = covers(30, 1), covers(10, 2), covers(20, 3)
    fitted = fit_model(name, train, validation)
    proba = fitted.predict_proba(test)
    assert proba.shape == (len(test), len(GENRES)) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(fitted.estimator.classes_) == list(GENRES)
    predicted = fitted.estimator.predict(test.embeddings)
    assert (predicted == test.genres).mean() > 0.9  # chance is 0.2
    assert (GENRES[proba.argmax(axis=1)] == predicted).mean() > 0.95  # probabilities agree with predictions
    assert fitted.params in [dict(p) for p in RECIPES[name].grid]


def test_majority_predicts_the_most_common_genre_with_its_share() -> None:
    train = covers(10, 1).subset(np.r_[0:10, 10:13, 20:23, 30:33, 40:43])  # 10 country, 3 of each other genre
    fitted = fit_model("majority", train, covers(4, 2))
    test = covers(4, 3)
    assert set(fitted.estimator.predict(test.embeddings)) == {"country"}
    assert fitted.predict_proba(test)[0] == pytest.approx([10 / 22] + [3 / 22] * 4)


def test_tuning_scores_on_the_validation_covers() -> None:
    train, validation = covers(30, 1), covers(10, 2)
    fitted = fit_model("knn", train, validation)
    predicted = fitted.estimator.predict(validation.embeddings)
    assert fitted.validation_macro_f1 == pytest.approx(f1_score(validation.genres, predicted, average="macro"))


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_faiss_knn_agrees_with_scikit_learn(weights: str) -> None:
    train_x, train_y = blobs(30, 1, spread=1.5)
    test_x, _ = blobs(20, 4, spread=1.5)
    ours = FaissKNeighbors(n_neighbors=7, weights=weights).fit(train_x, train_y)
    reference = KNeighborsClassifier(n_neighbors=7, weights=weights, algorithm="brute").fit(train_x, train_y)
    assert np.allclose(ours.predict_proba(test_x), reference.predict_proba(test_x), atol=1e-4)


def test_zero_shot_picks_the_genre_whose_prompt_is_closest() -> None:
    train_x, train_y = blobs(5, 1)
    centres = normalize(np.random.default_rng(0).normal(size=(len(GENRES), 32)))
    seen_prompts: list[str] = []

    def encode_text(texts: list[str]) -> np.ndarray:  # a fake text tower: each genre's prompt is its centre
        seen_prompts.extend(texts)
        return np.stack([centres[list(GENRES).index(t.split(" of ")[1].removesuffix(" music"))] for t in texts])

    model = ZeroShotClassifier(encode_text=encode_text).fit(train_x, train_y)
    assert seen_prompts[0] == "an album cover of country music"
    test_x, test_y = blobs(20, 3)
    assert (model.predict(test_x) == test_y).mean() > 0.9
    assert np.allclose(model.predict_proba(test_x).sum(axis=1), 1.0)
    with pytest.raises(ModelUnavailableError, match="no text tower"):
        fit_model("zero-shot", covers(5, 1), covers(2, 2))
