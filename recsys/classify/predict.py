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
from recsys.settings import Settings


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
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Top-``k`` genres of ``cover`` and which classifier said so; errors say how to train one."""
    recommender = Recommender.open(index_dir, settings)
    estimator, info = load_classifier(recommender.index.folder, recommender.index.info.model_key)
    return {"cover": str(cover), "classifier": info.model, "genres": top_genres(estimator, info, recommender, cover, k)}


def query_genre(recommender: Recommender, cover: str | Path) -> dict[str, Any] | None:
    """For ``recommend``: the query cover's predicted genres, or None when the index has no classifier.

    The cover itself is not repeated here: ``recommend``'s query object already names it.
    """
    if not has_classifier(recommender.index.folder):
        return None
    estimator, info = load_classifier(recommender.index.folder, recommender.index.info.model_key)
    genres = top_genres(estimator, info, recommender, cover)
    return {
        "predicted_genre": genres[0]["genre"],
        "probability": genres[0]["probability"],
        "classifier": info.model,
        "genres": genres,
    }


def query_line(query: dict[str, Any]) -> str:
    """One line for the table output of ``recommend`` (printed on stderr, the results stay alone on stdout)."""
    return f"query: predicted genre {query['predicted_genre']} ({query['probability']:.2f}, {query['classifier']})"
