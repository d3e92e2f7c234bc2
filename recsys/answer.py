"""One call answers a look-alike query as the CLI, the app and scripts show it.

An :class:`Answer` carries a query cover's results, its predicted genre when the index has a classifier, and
what went wrong for that cover alone, so a batch of queries reports a bad cover and goes on with the others.
The genre guess is optional: a classifier asked for by name must load and predict, while a broken one stored
beside the index costs only the guess (a warning), never the look-alikes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.errors import QueryError, describe_error
from recsys.ingest import printable_path
from recsys.recommend import Cover, Recommender
from recsys.textsearch import normalise
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
        explain: bool = False,
        collapse_editions: bool = False,
    ) -> Answer:
        """Look-alikes of ``cover`` (see :meth:`Recommender.similar_to_cover`, which also says what
        ``collapse_editions`` does) and its predicted genre, from one read of the cover; a :class:`QueryError`
        says why the cover cannot be used. ``explain`` adds what a person reads a result by (see
        :func:`explain_results`)."""
        query = self.recommender.read_query(cover)
        name = str(cover) if query.path is None else printable_path(query.path)
        results = self.recommender.similar_to_cover(
            query, k=k, genre=genre, by=by, where=where, collapse_editions=collapse_editions
        )
        answer = Answer(name, results)
        if explain:
            worded = "match" in answer.results and answer.results["match"].isin(["words", "both"]).any()
            query_text = self.recommender.text_of(query) if worded else ""
            answer.results = explain_results(answer.results, query_text, self._texts_of(answer.results))
        if self.predictor is not None:
            try:
                answer.prediction = self.predictor.query_genre(query)
            except Exception as error:  # noqa: BLE001 - see the module docstring
                if self.predictor_required:
                    raise
                answer.warnings.append(f"no genre guess for {name}: {describe_error(error)}")
        return answer

    def _texts_of(self, results: pd.DataFrame) -> list[str]:
        """The printed text of each result ("" for an index without text)."""
        if not self.recommender.has_text:
            return [""] * len(results)
        rows = pd.Index(self.recommender.index.metadata["path"]).get_indexer(results["path"])
        return [str(text) for text in self.recommender.texts[rows]]

    def answer_each(self, covers: Iterable[Cover], **query: Any) -> Iterator[Answer]:
        """:meth:`answer` for each cover in turn; a cover that cannot be used is an Answer with its error."""
        for cover in covers:
            try:
                yield self.answer(cover, **query)
            except QueryError as error:
                yield Answer(printable_path(str(cover)), error=str(error))


def explain_results(results: pd.DataFrame, query_text: str, texts: list[str]) -> pd.DataFrame:
    """``results`` with what a person reads them by: ``relative`` (the score as a share of the best result's,
    0 to 1: fused look-and-words scores have no scale of their own), and for results that the words ranked
    (``match`` words or both) their ``text`` and the ``matched`` words it shares with the query's text."""
    best = float(results["score"].max()) if len(results) else 0.0
    relative = (results["score"] / best).clip(0, 1) if best > 0 else results["score"] * 0.0
    worded = results["match"].isin(["words", "both"]) if "match" in results else pd.Series(False, results.index)
    shown = [text if by_words else "" for text, by_words in zip(texts, worded, strict=True)]
    return results.assign(
        relative=relative.round(3), text=shown, matched=[shared_words(query_text, text) for text in shown]
    )


def shared_words(query_text: str, text: str) -> list[str]:
    """The words of ``text`` (three letters or more) that the query's text also carries, found in its
    normalised form so that OCR's lost spaces ("ALANJACKSON") still match "Jackson"."""
    carried = normalise(query_text)
    words = [word for word in re.findall(r"\w{3,}", text) if len(normalise(word)) >= 3]
    return list(dict.fromkeys(word for word in words if normalise(word) in carried))


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
