"""Genre classifiers on cover embeddings, each with the scikit-learn shape (fit, predict, predict_proba).

The recipes say which hyper-parameters each model tunes on the validation split. Embeddings from an index
are unit vectors, so inner product is cosine similarity for the nearest-neighbour models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import faiss
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler, normalize
from sklearn.svm import SVC

from recsys.errors import SleeveError

ZERO_SHOT_TEMPLATE = "an album cover of {genre} music"


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


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to build one model and which hyper-parameter values the validation split chooses among.

    ``search_params`` are added only while searching, for a cheaper estimator with the same predictions.
    """

    name: str
    title: str
    build: Callable[..., Any]
    grid: tuple[dict[str, Any], ...] = ({},)
    search_params: dict[str, Any] = dataclasses.field(default_factory=dict)


def _grid(**values: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    keys = list(values)
    combos: list[dict[str, Any]] = [{}]
    for key in keys:
        combos = [{**combo, key: value} for combo in combos for value in values[key]]
    return tuple(combos)


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("majority", "majority class", lambda: DummyClassifier(strategy="prior")),
        Recipe("1nn", "FAISS 1-NN", lambda: FaissKNeighbors(n_neighbors=1)),
        Recipe(
            "knn",
            "k-NN",
            FaissKNeighbors,
            _grid(n_neighbors=(3, 5, 10, 20, 40, 80), weights=("uniform", "distance")),
        ),
        Recipe(
            "linear",
            "linear probe (logistic regression)",
            linear_probe,
            _grid(C=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
        ),
        Recipe("svm", "RBF SVM", rbf_svm, _grid(C=(0.5, 1, 2, 4, 8, 16)), {"calibrated": False}),
    )
}
"""The models that learn from embeddings alone; zero-shot and the fine-tuned CNN need more than vectors."""

MODEL_NAMES = (*RECIPES, "zero-shot", "cnn")
TITLES = {
    **{name: recipe.title for name, recipe in RECIPES.items()},
    "zero-shot": "zero-shot (text prompts)",
    "cnn": "fine-tuned EfficientNet-Lite0",
}
IMAGE_MODELS = frozenset({"cnn"})
"""Models that read the cover files themselves instead of the index's vectors (see recsys.classify.finetune)."""
