"""Predict the genre of a cover with the classifier stored beside an index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recsys.classify.models import image_text_frame
from recsys.classify.persist import ClassifierInfo, has_classifier, load_classifier
from recsys.images import BadImageError
from recsys.ocr import CoverTextReader, cover_text
from recsys.recommend import QueryError, Recommender


def top_genres(
    estimator: Any, info: ClassifierInfo, recommender: Recommender, cover: str | Path, k: int = 3
) -> list[dict[str, Any]]:
    """The ``k`` most probable genres of ``cover``, most probable first, as {"genre", "probability"}.

    Embedding classifiers get the cover's vector from the index's own encoder; the fine-tuned CNN reads the file;
    text classifiers read the cover's text by OCR.
    """
    try:
        proba = estimator.predict_proba(_query_inputs(info.inputs, recommender, cover))[0]
    except BadImageError as error:
        raise QueryError(f"cannot use {cover} as a query: {error}") from None
    order = np.argsort(-proba, kind="stable")[:k]
    return [{"genre": str(estimator.classes_[i]), "probability": round(float(proba[i]), 4)} for i in order]


def _query_inputs(inputs: str, recommender: Recommender, cover: str | Path) -> Any:
    """One query cover as the classifier reads it (see recsys.classify.data.model_inputs)."""
    if inputs == "embeddings":
        return recommender.embed_cover(cover)[None]
    if inputs == "images":
        return [str(cover)]
    text = cover_text(CoverTextReader().read(cover))
    if inputs == "text":
        return np.array([text], dtype=object)
    return image_text_frame(recommender.embed_cover(cover)[None], [text])


def predict_cover(
    index_dir: str | Path,
    cover: str | Path,
    k: int = 3,
    runtime: str = "auto",
    cache_dir: str | Path | None = None,
    weights: str | None = None,
    registered: str | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Top-``k`` genres of ``cover`` and which classifier said so; errors say how to train one.

    ``registered`` (NAME, NAME:VERSION or NAME@ALIAS) takes the classifier from an MLflow registry instead of
    the one stored beside the index.
    """
    recommender = Recommender(index_dir, runtime=runtime, cache_dir=cache_dir, weights=weights)
    estimator, info = _classifier(recommender, registered, tracking_uri)
    return {"cover": str(cover), "classifier": info.model, "genres": top_genres(estimator, info, recommender, cover, k)}


def query_genre(
    recommender: Recommender, cover: str | Path, registered: str | None = None, tracking_uri: str | None = None
) -> dict[str, Any] | None:
    """For ``recommend``: the query cover's predicted genres, or None when the index has no classifier (and
    none was asked for from a registry).

    The cover itself is not repeated here: ``recommend``'s query object already names it.
    """
    if registered is None and not has_classifier(recommender.index.folder):
        return None
    estimator, info = _classifier(recommender, registered, tracking_uri)
    genres = top_genres(estimator, info, recommender, cover)
    return {
        "predicted_genre": genres[0]["genre"],
        "probability": genres[0]["probability"],
        "classifier": info.model,
        "genres": genres,
    }


def _classifier(
    recommender: Recommender, registered: str | None, tracking_uri: str | None
) -> tuple[Any, ClassifierInfo]:
    """The registered classifier asked for, else the one beside the index; either only for this index's model."""
    model_key = recommender.index.info.model_key
    if registered is None:
        return load_classifier(recommender.index.folder, model_key)
    from recsys.classify.registry import load_registered

    return load_registered(registered, model_key, tracking_uri)


def query_line(query: dict[str, Any]) -> str:
    """One line for the table output of ``recommend`` (printed on stderr, the results stay alone on stdout)."""
    return f"query: predicted genre {query['predicted_genre']} ({query['probability']:.2f}, {query['classifier']})"
