"""Every embedding model fits, predicts and gives probabilities on separable synthetic vectors; tuning
chooses on the validation covers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import normalize

from recsys.classify.data import LabelledCovers
from recsys.classify.models import (
    RECIPES,
    FaissKNeighbors,
    ImageTextFusion,
    ModelUnavailableError,
    ZeroShotClassifier,
    image_text_frame,
)
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


WORDS = {
    "country": ["NASHVILLE", "RODEO", "HONKY", "TONK", "COWBOY"],
    "electronic": ["TECHNO", "REMIX", "TRANCE", "SYNTH", "RAVE"],
    "hip-hop": ["MIXTAPE", "FEAT", "HUSTLE", "STREETS", "RHYMES"],
    "pop": ["LOVE", "HITS", "SUMMER", "DANCE", "HEART"],
    "rock": ["STONES", "ELECTRIC", "LIVE", "THUNDER", "ROLLING"],
}


def worded(n_per_genre: int, seed: int, informative: bool = True, spread: float = 4.0) -> LabelledCovers:
    """Covers whose vectors blur the genres (a wide spread) and whose text names them (or, with
    ``informative=False``, draws words of any genre): what OCR text adds to a hard image problem. A fifth of
    the covers carry no text at all, like covers with only a picture."""
    vectors, genres = blobs(n_per_genre, seed, spread=spread)
    rng = np.random.default_rng(seed + 100)
    everything = [word for words in WORDS.values() for word in words]
    texts = []
    for genre in genres:
        pool = WORDS[genre] if informative else everything
        texts.append("" if rng.random() < 0.2 else " ".join(rng.choice(pool, size=2)) + " " + rng.choice(everything))
    paths = np.array([f"{i}.jpg" for i in range(len(genres))], dtype=object)
    return LabelledCovers(paths, genres, vectors, texts=np.array(texts, dtype=object))


def test_text_model_reads_genre_words_and_gives_the_prior_to_covers_without_text() -> None:
    train, validation, test = worded(30, 1), worded(10, 2), worded(20, 3)
    fitted = fit_model("text", train, validation)
    assert fitted.inputs == "text" and fitted.params in [dict(p) for p in RECIPES["text"].grid]
    has_text = test.texts != ""
    predicted = fitted.estimator.predict(test.texts)
    assert (predicted[has_text] == test.genres[has_text]).mean() > 0.9
    blank = fitted.estimator.predict_proba(np.array([""], dtype=object))[0]
    assert blank.max() - blank.min() < 0.1  # five balanced genres: no word, no preference


def test_fusion_adds_what_the_text_says_to_what_the_image_shows() -> None:
    train, validation, test = worded(30, 1), worded(15, 2), worded(30, 3)
    image = fit_model("svm", train, validation)
    fused = fit_model("svm+text", train, validation)
    assert isinstance(fused.estimator, ImageTextFusion) and fused.estimator.text_weight_ > 0
    assert set(fused.params) == {"svm_C", "text_C", "text_weight"}
    image_f1 = f1_score(test.genres, image.estimator.predict(test.embeddings), average="macro")
    fused_f1 = f1_score(test.genres, GENRES[fused.predict_proba(test).argmax(axis=1)], average="macro")
    assert image_f1 < 0.8 and fused_f1 > image_f1 + 0.1
    assert np.allclose(fused.predict_proba(test).sum(axis=1), 1.0)


def test_fusion_gives_meaningless_text_little_or_no_weight() -> None:
    train, validation = worded(30, 1, informative=False, spread=0.6), worded(15, 2, informative=False, spread=0.6)
    fused = fit_model("svm+text", train, validation)
    assert fused.estimator.text_weight_ <= 0.5


def test_fusion_needs_validation_covers_to_choose_the_text_weight() -> None:
    train = worded(10, 1)
    frame = image_text_frame(train.embeddings, train.texts)
    model = ImageTextFusion(RECIPES["svm"].build(calibrated=False), RECIPES["text"].build())
    with pytest.raises(ValueError, match="eval_set"):
        model.fit(frame, train.genres)
    fixed = model.set_params(text_weight=1.0).fit(frame, train.genres)
    assert fixed.text_weight_ == 1.0 and list(fixed.classes_) == list(GENRES)
