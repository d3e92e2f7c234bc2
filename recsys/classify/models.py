"""Genre classifiers on cover embeddings, each with the scikit-learn shape (fit, predict, predict_proba).

The recipes say which hyper-parameters each model tunes on the validation split and which inputs it reads:
the index's embeddings, the text printed on the covers (read by OCR, see recsys.ocr), or both. Embeddings
from an index are unit vectors, so inner product is cosine similarity for the nearest-neighbour models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import faiss
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler, normalize
from sklearn.svm import SVC

from index.errors import SleeveError
from recsys.classify.catalog import CLASSIFIERS

ZERO_SHOT_TEMPLATE = "an album cover of {genre} music"
TEXT_COLUMN = "text"
TEXT_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
"""The weights of the text model's log-probabilities that ImageTextFusion chooses among on validation."""


class ModelUnavailableError(SleeveError):
    """A model cannot run on this index (e.g. zero-shot prompts on a model without a text tower)."""


class FaissKNeighbors(ClassifierMixin, BaseEstimator):
    """k nearest neighbours by cosine similarity with an exact FAISS search.

    ``n_neighbors=1`` is the original study's baseline. ``weights="distance"`` weighs each neighbour's vote
    by 1 / Euclidean distance between unit vectors, as scikit-learn's KNeighborsClassifier does.
    """

    def __init__(self, n_neighbors: int = 1, weights: str = "uniform") -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights

    def fit(self, X: np.ndarray, y: Sequence[str]) -> FaissKNeighbors:
        if self.weights not in ("uniform", "distance"):
            raise ValueError(f"weights must be 'uniform' or 'distance', not {self.weights!r}")
        self.classes_, self.codes_ = np.unique(np.asarray(y, dtype=object), return_inverse=True)
        self.vectors_ = normalize(np.asarray(X, dtype=np.float32))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Share of (weighted) neighbour votes per class. The FAISS index is rebuilt per call (milliseconds
        for a few thousand covers) so that the fitted state is plain arrays, safe to save."""
        index = faiss.IndexFlatIP(self.vectors_.shape[1])
        index.add(self.vectors_)
        k = min(self.n_neighbors, len(self.vectors_))
        similarity, rows = index.search(normalize(np.asarray(X, dtype=np.float32)), k)
        if self.weights == "distance":
            votes = 1.0 / np.maximum(np.sqrt(np.maximum(2.0 - 2.0 * similarity, 0.0)), 1e-6)
        else:
            votes = np.ones_like(similarity)
        proba = np.zeros((len(rows), len(self.classes_)))
        np.add.at(proba, (np.arange(len(rows))[:, None], self.codes_[rows]), votes)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class ZeroShotClassifier(ClassifierMixin, BaseEstimator):
    """Genre from text prompts: the genre whose prompt vector is most similar to the cover's.

    Learns nothing from the covers; ``fit`` only takes the genre names from ``y`` and embeds one prompt per
    genre with ``encode_text`` (texts to unit vectors in the image space, e.g. a CLIP encoder's).
    Probabilities are a softmax of ``scale`` x cosine similarity, CLIP's own logit scale.
    """

    def __init__(
        self,
        encode_text: Callable[[list[str]], np.ndarray] | None = None,
        template: str = ZERO_SHOT_TEMPLATE,
        scale: float = 100.0,
    ) -> None:
        self.encode_text = encode_text
        self.template = template
        self.scale = scale

    def fit(self, X: np.ndarray, y: Sequence[str]) -> ZeroShotClassifier:
        if self.encode_text is None:
            raise ModelUnavailableError("zero-shot needs a text encoder: the index's model has no text tower")
        self.classes_ = np.unique(np.asarray(y, dtype=object))
        prompts = [self.template.format(genre=genre) for genre in self.classes_]
        self.prompt_vectors_ = normalize(np.asarray(self.encode_text(prompts), dtype=np.float32))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = self.scale * normalize(np.asarray(X, dtype=np.float32)) @ self.prompt_vectors_.T
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def linear_probe(C: float = 0.001) -> Any:
    """Logistic regression on standardised embeddings; small C because 1280 dims meet ~3k covers."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000))


def rbf_svm(C: float = 1.0, calibrated: bool = True) -> Any:
    """RBF SVM on standardised embeddings. Probabilities come from temperature scaling fitted on
    cross-validated decision values (scikit-learn's replacement for SVC(probability=True)); the search
    over C skips it (``calibrated=False``): it does not change which C separates best and costs 5 fits."""
    svm = make_pipeline(StandardScaler(), SVC(C=C, kernel="rbf", gamma="scale"))
    if not calibrated:
        return svm
    return CalibratedClassifierCV(svm, method="temperature", cv=5, ensemble=False)


def cover_text_model(C: float = 1.0) -> Any:
    """Logistic regression on TF-IDF character n-grams of a cover's OCR text.

    Character n-grams (1 to 5) inside word boundaries, not words: OCR runs words together ("MarenMorris")
    and misreads letters, and a few right n-grams still match. A cover without text gets the class prior.
    """
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 5), sublinear_tf=True)
    return make_pipeline(vectorizer, LogisticRegression(C=C, max_iter=5000))


def image_text_frame(embeddings: np.ndarray, texts: Sequence[str]) -> pd.DataFrame:
    """The input of :class:`ImageTextFusion`: one row per cover, its embedding columns and its text."""
    frame = pd.DataFrame(np.asarray(embeddings, dtype=np.float32))
    frame.columns = [f"v{column}" for column in frame.columns]
    frame[TEXT_COLUMN] = list(texts)
    return frame


class ImageTextFusion(ClassifierMixin, BaseEstimator):
    """Genre from what a cover shows and what it says: the image model's and the text model's probabilities
    combined as a weighted geometric mean, p ~ p_image * p_text ** text_weight.

    ``X`` is a frame from :func:`image_text_frame`. The two models are injected (any estimators with
    ``predict_proba``) and fitted on the same covers. With ``text_weight=None``, ``fit`` chooses the weight
    among ``TEXT_WEIGHTS`` by macro-F1 on ``eval_set``; 0 means the text did not help there.
    """

    def __init__(self, image: Any = None, text: Any = None, text_weight: float | None = None) -> None:
        self.image = image
        self.text = text
        self.text_weight = text_weight

    def fit(
        self, X: pd.DataFrame, y: Sequence[str], eval_set: tuple[pd.DataFrame, Sequence[str]] | None = None
    ) -> ImageTextFusion:
        if self.image is None or self.text is None:
            raise ValueError("ImageTextFusion needs an image and a text estimator")
        if self.text_weight is None and eval_set is None:
            raise ValueError("text_weight=None is chosen on validation covers: pass eval_set=(X_val, y_val)")
        self.image_ = clone(self.image).fit(_vectors(X), y)
        self.text_ = clone(self.text).fit(X[TEXT_COLUMN], y)
        self.classes_ = self.image_.classes_
        if list(self.text_.classes_) != list(self.classes_):
            raise ValueError("the image and text models learned different genres")
        self.text_weight_ = self.text_weight
        if self.text_weight is None:
            X_val, y_val = eval_set
            image_log, text_log = self._log_proba(X_val)
            scores = [
                f1_score(y_val, self.classes_[(image_log + weight * text_log).argmax(axis=1)], average="macro")
                for weight in TEXT_WEIGHTS
            ]
            self.text_weight_ = TEXT_WEIGHTS[int(np.argmax(scores))]  # first of equals: the lighter weight
        return self

    def _log_proba(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        image = self.image_.predict_proba(_vectors(X))
        text = self.text_.predict_proba(X[TEXT_COLUMN])
        return np.log(np.maximum(image, 1e-12)), np.log(np.maximum(text, 1e-12))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        image_log, text_log = self._log_proba(X)
        logits = image_log + self.text_weight_ * text_log
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _vectors(frame: pd.DataFrame) -> np.ndarray:
    return frame.drop(columns=TEXT_COLUMN).to_numpy(dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to build one model and which hyper-parameter values the validation split chooses among.

    ``search_params`` are added only while searching, for a cheaper estimator with the same predictions.
    Its title and what it reads of a cover are its entry in recsys.classify.catalog.CLASSIFIERS.
    """

    name: str
    build: Callable[..., Any]
    grid: tuple[dict[str, Any], ...] = ({},)
    search_params: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def inputs(self) -> str:
        return CLASSIFIERS[self.name].inputs


def _grid(**values: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    keys = list(values)
    combos: list[dict[str, Any]] = [{}]
    for key in keys:
        combos = [{**combo, key: value} for combo in combos for value in values[key]]
    return tuple(combos)


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("majority", lambda: DummyClassifier(strategy="prior")),
        Recipe("1nn", lambda: FaissKNeighbors(n_neighbors=1)),
        Recipe(
            "knn",
            FaissKNeighbors,
            _grid(n_neighbors=(3, 5, 10, 20, 40, 80), weights=("uniform", "distance")),
        ),
        Recipe(
            "linear",
            linear_probe,
            _grid(C=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
        ),
        Recipe("svm", rbf_svm, _grid(C=(0.5, 1, 2, 4, 8, 16)), {"calibrated": False}),
        Recipe("text", cover_text_model, _grid(C=(1, 3, 10, 30, 100))),
    )
}
"""The models tuned by a plain grid search; the others need more than one estimator or more than features."""
