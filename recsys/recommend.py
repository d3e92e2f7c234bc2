"""Answer "which covers look like this one?" (or "like this text") from an index.

Like rclip's search object, a :class:`Recommender` receives a ready index (from a folder or built in memory)
and the encoder that made its vectors; :meth:`Recommender.open` makes both from a folder. The query is always
encoded by the index's own model. A query cover that is itself in the index (same
content hash) is left out of its own results. A genre or metadata filter searches the matching covers
exactly. An index that holds cover text (build-index --read-text) also ranks by the printed words, alone
or fused with the look (recsys.hybrid), and is searchable by words (recsys.textsearch).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from index.faiss_index import search
from index.registry import get_index_type
from index.store import CoverIndex, ModelMismatchError, load_index
from recsys.encoders import Encoder, ModelSpec
from recsys.encoders.base import stack_preprocessed
from recsys import hybrid, textsearch
from recsys.errors import QueryError
from recsys.filters import row_mask
from recsys.images import DEFAULT_MAX_PIXELS, BadImageError, load_cover, to_rgb
from recsys.ingest import content_hash
from recsys.settings import Settings
from recsys.textstore import NoTextError, no_text_message, read_cover_texts, texts_by_row

Cover = str | Path | Image.Image
"""A query cover: a file, or an image already in memory."""

_INTERNAL_COLUMNS = ["id", "content_hash", "size", "mtime_ns"]
__all__ = ["QueryError", "Recommender"]


class Recommender:
    """An index and the encoder of its model, loaded once and queried many times."""

    def __init__(
        self,
        index: CoverIndex,
        encoder: Encoder | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        cache_dir: str | Path | None = None,
    ) -> None:
        """``encoder`` must be the index's own model; without one only vector queries work."""
        if encoder is not None and encoder.spec.key != index.info.model_key:
            raise ModelMismatchError(
                f"the encoder makes {encoder.spec.key} vectors but the index holds {index.info.model_key} vectors"
            )
        self.index = index
        self.encoder = encoder
        self.max_pixels = max_pixels
        self.cache_dir = cache_dir

    @property
    def has_text(self) -> bool:
        """The index holds the text printed on its covers (built with --read-text)."""
        return "text" in self.index.info.files

    @cached_property
    def texts(self) -> np.ndarray:
        """Each index row's cover text ("" where none was found)."""
        texts = texts_by_row(self.index)
        if texts is None:
            raise NoTextError(no_text_message(self.index.folder))
        return texts

    @cached_property
    def _text_model(self) -> textsearch.TextModel:
        return textsearch.fit_text_vectors(list(self.texts))

    def text_of(self, path: str | Path) -> str:
        """The text printed on a cover: the stored reading for an indexed cover (same content), else OCR."""
        try:
            digest = content_hash(path)
        except OSError as error:
            raise QueryError(f"cannot read {path}: {error}") from None
        rows = np.flatnonzero((self.index.metadata["content_hash"] == digest).to_numpy())
        if rows.size and self.has_text:
            return str(self.texts[rows[0]])
        texts, failures = read_cover_texts(
            pd.DataFrame({"path": [str(path)], "content_hash": [digest]}), self.cache_dir, progress=False
        )
        if not failures.empty:
            raise QueryError(f"cannot read the text of {path}: {failures['reason'].iloc[0]}")
        return str(texts["text"].iloc[0])

    def search_text(
        self, query: str, k: int = 10, genre: str | None = None, where: dict[str, str] | None = None
    ) -> pd.DataFrame:
        """Covers whose printed text matches ``query`` (case, accents, spaces and most OCR slips aside), best
        first: rank, score (0-1, see recsys.textsearch.words_similarity), genre, path, text, then metadata."""
        if k < 1:
            raise QueryError("k must be at least 1")
        if not textsearch.normalise(query):
            raise QueryError("the search needs at least one letter or digit")
        scores = textsearch.words_similarity(self._text_model, query)
        candidates = np.flatnonzero(row_mask(self.index.metadata, genre, where) & (scores > 0))
        top = candidates[np.argsort(-scores[candidates], kind="stable")[:k]]
        result = self._frame(top, scores[top])
        result.insert(4, "text", [" / ".join(str(self.texts[row]).splitlines()) for row in top])
        return result

    @classmethod
    def open(cls, index_dir: str | Path, settings: Settings | None = None) -> Recommender:
        """The index in ``index_dir`` with its own encoder, built as ``settings`` say."""
        settings = settings or Settings()
        index = load_index(index_dir)
        encoder = settings.encoder_for(ModelSpec.from_dict(index.info.model))
        return cls(index, encoder, settings.max_pixels, settings.cache_dir)

    def _encoder(self) -> Encoder:
        if self.encoder is None:
            raise QueryError("this index was given no encoder, so it answers vector queries only")
        return self.encoder

    def embed_cover(self, cover: Cover) -> np.ndarray:
        """The query cover's unit vector, or a :class:`QueryError` saying why it cannot be read."""
        encoder = self._encoder()
        if isinstance(cover, Image.Image):
            image = to_rgb(cover)
        else:
            try:
                image = load_cover(cover, self.max_pixels, reduce_to=encoder.input_size)
            except BadImageError as error:
                raise QueryError(f"cannot use {cover} as a query: {error}") from None
        return encoder.encode_images(stack_preprocessed([encoder.preprocess(image)]))[0]

    def similar_to_cover(
        self,
        cover: Cover,
        k: int = 10,
        genre: str | None = None,
        by: str | None = None,
        where: dict[str, str] | None = None,
    ) -> pd.DataFrame:
        """Covers like ``cover`` by look, by the words printed on it, or both (None: both when the index
        holds text); ``match`` says which part each result owes its rank to. A cover file that is itself in
        the index is left out of its own results."""
        by = by or ("both" if self.has_text else "look")
        if by not in hybrid.MODES:
            raise QueryError(f"by must be one of {', '.join(hybrid.MODES)}, not {by!r}")
        if by != "look" and not self.has_text:
            raise NoTextError(no_text_message(self.index.folder))
        in_memory = isinstance(cover, Image.Image)
        if by != "look" and in_memory:
            raise QueryError("matching by words needs a cover file")
        exclude = content_hash(cover) if not in_memory and Path(cover).is_file() else None
        if by == "look":
            vector = self.embed_cover(cover)
            if where:
                return self._exact(vector, k, row_mask(self.index.metadata, genre, where), exclude).assign(match="look")
            path = None if in_memory else str(cover)
            return self.similar_to_vector(vector, k, genre, exclude_hash=exclude, exclude_path=path).assign(match="look")
        return self._by_words(cover, k, genre, where, by, exclude)

    def similar_to_text(self, text: str, k: int = 10, genre: str | None = None) -> pd.DataFrame:
        return self.similar_to_vector(self._encoder().encode_text([text])[0], k, genre)

    def similar_to_vector(
        self,
        vector: np.ndarray,
        k: int = 10,
        genre: str | None = None,
        exclude_hash: str | None = None,
        exclude_path: str | None = None,
    ) -> pd.DataFrame:
        """Top ``k`` covers by cosine similarity: columns rank, score, genre, path, then metadata."""
        if k < 1:
            raise QueryError("k must be at least 1")
        metadata = self.index.metadata
        if genre is not None:
            return self._exact(vector, k, row_mask(metadata, genre), exclude_hash)
        # An index built in memory may know its covers by path only, without content hashes.
        excluded = ((metadata["content_hash"] == exclude_hash) | (metadata["path"] == exclude_path)).to_numpy()
        compressed = get_index_type(self.index.info.index_type).rescore
        found_scores, found_rows = search(
            self.index.faiss_index, vector, k + int(excluded.sum()),
            exact_vectors=self.index.embeddings if compressed else None,
        )
        keep = (found_rows >= 0) & ~excluded[np.maximum(found_rows, 0)]
        return self._frame(found_rows[keep][:k], found_scores[keep][:k])

    def _frame(self, rows: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        """Result rows: rank, score, genre, path, then the manifest's own columns."""
        found = self.index.metadata.iloc[rows].reset_index(drop=True)
        result = pd.DataFrame({"rank": range(1, len(found) + 1), "score": np.round(scores.astype(float), 4)})
        extra = [c for c in found.columns if c not in _INTERNAL_COLUMNS + ["genre", "path"]]
        return pd.concat([result, found[["genre", "path", *extra]]], axis=1)

    def _exact(self, vector: np.ndarray, k: int, allowed: np.ndarray, exclude_hash: str | None) -> pd.DataFrame:
        """Top ``k`` by cosine among the ``allowed`` rows, computed exactly."""
        candidates = np.flatnonzero(allowed & (self.index.metadata["content_hash"] != exclude_hash).to_numpy())
        scores = np.asarray(self.index.embeddings[candidates]) @ vector
        top = np.argsort(-scores, kind="stable")[:k]
        return self._frame(candidates[top], scores[top])

    def _by_words(
        self, cover: str | Path, k: int, genre: str | None, where: dict[str, str] | None, by: str, exclude: str | None
    ) -> pd.DataFrame:
        """Rank the allowed covers by text similarity ("words") or by the fused scores ("both")."""
        if k < 1:
            raise QueryError("k must be at least 1")
        query_text = self.text_of(cover)
        allowed = row_mask(self.index.metadata, genre, where)
        candidates = np.flatnonzero(allowed & (self.index.metadata["content_hash"] != exclude).to_numpy())
        if by == "words":
            words = textsearch.words_similarity(self._text_model, query_text)[candidates]
            matched = np.flatnonzero(words > 0)
            top = matched[np.argsort(-words[matched], kind="stable")[:k]]
            return self._frame(candidates[top], words[top]).assign(match="words")
        fused, look, words = hybrid.both_scores(
            self.index.embeddings, self._text_model, self.texts, candidates, self.embed_cover(cover), query_text
        )
        top = np.argsort(-fused, kind="stable")[:k]
        owed = hybrid.owed_to(look, words, k)[top]
        return self._frame(candidates[top], fused[top]).assign(match=owed)


def open_index(index_dir: str | Path, settings: Settings | None = None) -> Recommender:
    """The index in ``index_dir``, ready for queries with its own encoder."""
    return Recommender.open(index_dir, settings)
