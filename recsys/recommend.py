"""Answer "which covers look like this one?" (or "like this text") from an index.

Like rclip's search object, a :class:`Recommender` receives a ready index (from a folder or built in memory)
and the encoder that made its vectors; :meth:`Recommender.open` makes both from a folder. The query is always
encoded by the index's own model. A query cover that is itself in the index (same
content hash) is left out of its own results. A genre filter searches that genre's covers exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from index.faiss_index import search
from index.registry import get_index_type
from index.store import CoverIndex, ModelMismatchError, load_index
from recsys.encoders import Encoder, ModelSpec
from recsys.encoders.base import stack_preprocessed
from recsys.errors import SleeveError
from recsys.images import DEFAULT_MAX_PIXELS, BadImageError, load_cover, to_rgb
from recsys.ingest import content_hash
from recsys.settings import Settings

Cover = str | Path | Image.Image
"""A query cover: a file, or an image already in memory."""

_INTERNAL_COLUMNS = ["id", "content_hash", "size", "mtime_ns"]


class QueryError(SleeveError):
    """The query cannot be answered as asked (unreadable cover, unknown genre)."""


class Recommender:
    """An index and the encoder of its model, loaded once and queried many times."""

    def __init__(self, index: CoverIndex, encoder: Encoder | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        """``encoder`` must be the index's own model; without one only vector queries work."""
        if encoder is not None and encoder.spec.key != index.info.model_key:
            raise ModelMismatchError(
                f"the encoder makes {encoder.spec.key} vectors but the index holds {index.info.model_key} vectors"
            )
        self.index = index
        self.encoder = encoder
        self.max_pixels = max_pixels

    @classmethod
    def open(cls, index_dir: str | Path, settings: Settings | None = None) -> Recommender:
        """The index in ``index_dir`` with its own encoder, built as ``settings`` say."""
        settings = settings or Settings()
        index = load_index(index_dir)
        return cls(index, settings.encoder_for(ModelSpec.from_dict(index.info.model)), settings.max_pixels)

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

    def similar_to_cover(self, cover: Cover, k: int = 10, genre: str | None = None) -> pd.DataFrame:
        """A cover file that is itself in the index is left out of its own results."""
        vector = self.embed_cover(cover)
        if isinstance(cover, Image.Image):
            return self.similar_to_vector(vector, k, genre)
        return self.similar_to_vector(vector, k, genre, exclude_hash=content_hash(cover), exclude_path=str(cover))

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
        # An index built in memory may know its covers by path only, without content hashes.
        excluded = ((metadata["content_hash"] == exclude_hash) | (metadata["path"] == exclude_path)).to_numpy()
        if genre is not None:
            rows, scores = self._exact_within_genre(vector, k, genre, excluded)
        else:
            compressed = get_index_type(self.index.info.index_type).rescore
            found_scores, found_rows = search(
                self.index.faiss_index, vector, k + int(excluded.sum()),
                exact_vectors=self.index.embeddings if compressed else None,
            )
            keep = (found_rows >= 0) & ~excluded[np.maximum(found_rows, 0)]
            rows, scores = found_rows[keep][:k], found_scores[keep][:k]
        found = metadata.iloc[rows].reset_index(drop=True)
        result = pd.DataFrame({"rank": range(1, len(found) + 1), "score": np.round(scores.astype(float), 4)})
        extra = [c for c in found.columns if c not in _INTERNAL_COLUMNS + ["genre", "path"]]
        return pd.concat([result, found[["genre", "path", *extra]]], axis=1)

    def _exact_within_genre(
        self, vector: np.ndarray, k: int, genre: str, excluded: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        genres = self.index.metadata["genre"].str.lower()
        in_genre = (genres == genre.lower()).fillna(False).to_numpy()
        if not in_genre.any():
            known = ", ".join(sorted(genres.dropna().unique())) or "none"
            raise QueryError(f"no covers of genre {genre!r} in this index (genres: {known})")
        candidates = np.flatnonzero(in_genre & ~excluded)
        scores = np.asarray(self.index.embeddings[candidates]) @ vector
        top = np.argsort(-scores, kind="stable")[:k]
        return candidates[top], scores[top]



def open_index(index_dir: str | Path, settings: Settings | None = None) -> Recommender:
    """The index in ``index_dir``, ready for queries with its own encoder."""
    return Recommender.open(index_dir, settings)
