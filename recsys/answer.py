"""One call answers a look-alike query as the CLI, the app and scripts show it.

An :class:`Answer` carries a query cover's results, its predicted genre when the index has a classifier, and
what went wrong for that cover alone, so a batch of queries reports a bad cover and goes on with the others.
The genre guess is optional: a classifier asked for by name must load and predict, while a broken one stored
beside the index costs only the guess (a warning), never the look-alikes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.errors import QueryError, describe_error
from recsys.ingest import printable_path
from recsys.recommend import Cover, Recommender
from recsys.settings import Settings


@dataclasses.dataclass
class Answer:
    """The answer to one query cover: ``results`` and ``prediction``, or the ``error`` that stopped it."""

    cover: str
    results: pd.DataFrame | None = None
    prediction: dict[str, Any] | None = None
    """predicted_genre, probability, classifier, genres (see GenrePredictor.query_genre); None: no classifier."""
    error: str | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def query(self) -> dict[str, Any]:
        """The query as ``--json`` names it: the cover and its predicted genre."""
        return {"cover": self.cover, **(self.prediction or {})}

    def to_dict(self) -> dict[str, Any]:
        results = [] if self.results is None else self.results.to_dict(orient="records")
        return {"query": self.query, "results": results, **({"error": self.error} if self.error else {})}


class QueryAnswerer:
    """A ready :class:`Recommender` and, optionally, the genre predictor of its index."""

    def __init__(self, recommender: Recommender, predictor: Any = None, predictor_required: bool = False) -> None:
        """``predictor_required``: a failed genre guess is an error, not a warning (a classifier asked for by
        name)."""
        self.recommender = recommender
        self.predictor = predictor
        self.predictor_required = predictor_required
        self.warnings: list[str] = []
        """What the caller should tell the user once, before the answers (e.g. an unusable classifier)."""

    @classmethod
    def open(
        cls,
        index_dir: str | Path,
        settings: Settings | None = None,
        registered: str | None = None,
        tracking_uri: str | None = None,
    ) -> QueryAnswerer:
        """The index in ``index_dir`` with its encoder and the classifier stored beside it, or the one
        ``registered`` in the MLflow registry at ``tracking_uri``."""
        from recsys.classify.predict import GenrePredictor

        recommender = Recommender.open(index_dir, settings)
        if registered:
            return cls(recommender, GenrePredictor.for_index(recommender, registered, tracking_uri), True)
        try:
            return cls(recommender, GenrePredictor.for_index(recommender))
        except Exception as error:  # noqa: BLE001 - a broken stored classifier costs only the genre guess
            answerer = cls(recommender)
            answerer.warnings.append(f"no genre guess, the stored classifier cannot be used: {describe_error(error)}")
            return answerer

    def answer(
        self,
        cover: Cover,
        k: int = 10,
        genre: str | None = None,
        by: str | None = None,
        where: dict[str, str] | None = None,
    ) -> Answer:
        """Look-alikes of ``cover`` (see :meth:`Recommender.similar_to_cover`) and its predicted genre, from
        one read of the cover; a :class:`QueryError` says why the cover cannot be used."""
        query = self.recommender.read_query(cover)
        name = str(cover) if query.path is None else printable_path(query.path)
        answer = Answer(name, self.recommender.similar_to_cover(query, k=k, genre=genre, by=by, where=where))
        if self.predictor is not None:
            try:
                answer.prediction = self.predictor.query_genre(query)
            except Exception as error:  # noqa: BLE001 - see the module docstring
                if self.predictor_required:
                    raise
                answer.warnings.append(f"no genre guess for {name}: {describe_error(error)}")
        return answer

    def answer_each(self, covers: Iterable[Cover], **query: Any) -> Iterator[Answer]:
        """:meth:`answer` for each cover in turn; a cover that cannot be used is an Answer with its error."""
        for cover in covers:
            try:
                yield self.answer(cover, **query)
            except QueryError as error:
                yield Answer(printable_path(str(cover)), error=str(error))


def cover_files(names: Iterable[str | Path]) -> tuple[list[str], list[str]]:
    """The query files that ``names`` stand for (a folder stands for the covers in it, recursively), and an
    error line for each folder that holds none."""
    from recsys.ingest import scan_folder

    paths: list[str] = []
    errors: list[str] = []
    for name in names:
        if not Path(name).is_dir():
            paths.append(str(name))
            continue
        found = list(scan_folder(name, genre_from_folder=False)["path"])
        if not found:
            errors.append(f"no covers in the folder {name}")
        paths.extend(found)
    return paths, errors
