"""Genre models on arrays in memory: embeddings (and cover text) with genres in, a fitted model out.

The same models and tuning as ``train-classifier``, for a notebook that holds its own vectors. With no file
paths there are no dHashes, so the validation split cannot keep near-duplicate covers together: give
``groups`` (e.g. release or artist ids) when the data has near-duplicates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from recsys.classify.data import LabelledCovers, model_inputs
from recsys.classify.split import train_validation
from recsys.classify.train import FittedModel, fit_model, refit_on_all


def fit_genre_classifier(
    embeddings: np.ndarray,
    genres: Sequence[str],
    classifier: str = "linear",
    texts: Sequence[str] | None = None,
    groups: Sequence[object] | None = None,
    seed: int = 42,
) -> FittedModel:
    """Tune the ``classifier`` (see recsys.classify.models: linear, svm, knn, text, svm+text, ...) on an 80/20 split
    of the covers, then refit it on all of them. ``texts`` is each cover's printed text, for text models."""
    covers = _covers(embeddings, genres, texts)
    group_ids = np.arange(len(covers)) if groups is None else pd.factorize(pd.Series(list(groups)))[0]
    split = train_validation(covers.genres, group_ids, seed=seed)
    fitted = fit_model(classifier, covers.subset(split == "train"), covers.subset(split == "validation"))
    return dataclasses.replace(fitted, estimator=refit_on_all(fitted, covers))


def predict_genres(
    classifier: FittedModel, embeddings: np.ndarray, texts: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per cover: ``genre`` (the most probable) and one probability column per genre."""
    covers = _covers(embeddings, ["?"] * len(embeddings), texts)
    proba = classifier.estimator.predict_proba(model_inputs(covers, classifier.inputs))
    table = pd.DataFrame(proba, columns=classifier.classes).round(4)
    table.insert(0, "genre", np.asarray(classifier.classes, dtype=object)[proba.argmax(axis=1)])
    return table


def _covers(embeddings: np.ndarray, genres: Sequence[str], texts: Sequence[str] | None) -> LabelledCovers:
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if len(genres) != len(embeddings) or (texts is not None and len(texts) != len(embeddings)):
        raise ValueError("give one genre (and one text, if any) per embedding row")
    return LabelledCovers(
        paths=np.array([""] * len(embeddings), dtype=object),
        genres=np.asarray([str(g).strip().lower() for g in genres], dtype=object),
        embeddings=embeddings,
        texts=None if texts is None else np.asarray(list(texts), dtype=object),
    )
