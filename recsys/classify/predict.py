"""Predict the genre of a cover with the classifier stored beside an index.

The classifier is loaded once per process and the OCR reader that text classifiers need is built once, on
first use; a query cover already read for ``recommend`` (:class:`recsys.recommend.QueryCover`) is not read
or encoded again. Without a stored classifier nothing of this (skops, scikit-learn, RapidOCR) is imported.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from recsys.classify.persist import ClassifierError, classifier_folder, load_classifier, retrain_hint
from recsys.images import BadImageError
from recsys.recommend import Cover, QueryCover, QueryError, Recommender
from recsys.settings import Settings


class GenrePredictor:
    """The classifier stored beside ``recommender``'s index, or a registered one (``registered``: NAME,
    NAME:VERSION or NAME@ALIAS in the MLflow registry at ``tracking_uri``), ready for any number of query covers.
    Either is refused unless it was trained on the index's model."""

    def __init__(
        self, recommender: Recommender, registered: str | None = None, tracking_uri: str | None = None
    ) -> None:
        self.recommender = recommender
        folder = recommender.index.folder
        model_key = recommender.index.info.model_key
        self.source = f"registered as {registered}" if registered else f"in {classifier_folder(folder)}"
        self.fix = retrain_hint(folder) + (" --register NAME" if registered else "")
        if registered is None:
            self.estimator, self.info = load_classifier(folder, model_key)
        else:
            from recsys.classify.model_registry import load_registered

            self.estimator, self.info = load_registered(registered, model_key, tracking_uri)

    @classmethod
    def for_index(
        cls, recommender: Recommender, registered: str | None = None, tracking_uri: str | None = None
    ) -> GenrePredictor | None:
        """The predictor, or None when the index has no stored classifier and none was asked for by name."""
        from recsys.classify.persist import has_classifier

        if registered is None and not has_classifier(recommender.index.folder):
            return None
        return cls(recommender, registered, tracking_uri)

    @functools.cached_property
    def reader(self) -> Any:
        """The OCR reader for query covers: they come one at a time, so the one that starts first."""
        from recsys.ocr import CoverTextReader, settings_for

        return CoverTextReader(settings=settings_for(1))

    def top_genres(self, cover: Cover | QueryCover, k: int = 3) -> list[dict[str, Any]]:
        """The ``k`` most probable genres of ``cover``, most probable first, as {"genre", "probability"}.

        Embedding classifiers take the query's vector from the index's own encoder; the fine-tuned CNN reads
        the file; text classifiers read the cover's text by OCR, at full resolution, from the bytes read once.
        """
        query = cover if isinstance(cover, QueryCover) else self.recommender.read_query(cover)
        try:
            inputs = self._inputs(query)
            try:
                proba = self.estimator.predict_proba(inputs)[0]
            except (ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
                # sleeve made the inputs as this classifier reads them: a failure is the stored state's
                raise ClassifierError(
                    f"the classifier {self.source} fails on a query, so it is damaged or of another version; "
                    f"{self.fix} ({type(error).__name__}: {_first_line(error)})"
                ) from None
        except BadImageError as error:
            raise QueryError(f"cannot use {query.path or 'the image'} as a query: {error}") from None
        order = np.argsort(-proba, kind="stable")[:k]
        classes = self.estimator.classes_
        return [{"genre": str(classes[i]), "probability": round(float(proba[i]), 4)} for i in order]

    def _inputs(self, query: QueryCover) -> Any:
        """One query cover as the classifier reads it (see recsys.classify.data.model_inputs)."""
        inputs = self.info.inputs
        if inputs == "embeddings":
            return query.vector[None]
        if inputs == "images":
            if query.path is None:
                raise QueryError("the fine-tuned CNN reads cover files: give the cover as a path")
            return [query.path]
        from recsys.ocr import cover_text

        text = cover_text(self.reader.read(query.source))
        if inputs == "text":
            return np.array([text], dtype=object)
        from recsys.classify.models import image_text_frame

        return image_text_frame(query.vector[None], [text])

    def query_genre(self, cover: Cover | QueryCover) -> dict[str, Any]:
        """For ``recommend``: the query cover's predicted genres (the query object already names the cover)."""
        genres = self.top_genres(cover)
        return {
            "predicted_genre": genres[0]["genre"],
            "probability": genres[0]["probability"],
            "classifier": self.info.model,
            "genres": genres,
        }


def predict_cover(
    index_dir: str | Path,
    cover: str | Path,
    k: int = 3,
    settings: Settings | None = None,
    registered: str | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Top-``k`` genres of ``cover`` and which classifier said so; errors say how to train one.

    ``registered`` takes the classifier from an MLflow registry instead of the one stored beside the index.
    """
    predictor = GenrePredictor(Recommender.open(index_dir, settings), registered, tracking_uri)
    return {"cover": str(cover), "classifier": predictor.info.model, "genres": predictor.top_genres(cover, k)}


def query_line(query: dict[str, Any]) -> str:
    """One line for the table output of ``recommend`` (printed on stderr, the results stay alone on stdout)."""
    return f"query: predicted genre {query['predicted_genre']} ({query['probability']:.2f}, {query['classifier']})"


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
