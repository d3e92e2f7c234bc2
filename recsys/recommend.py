"""Answer "which covers look like this one?" (or "like this text") from an index folder.

The query is always encoded by the index's own model. A query cover that is itself in the index (same
content hash) is left out of its own results. A genre filter searches that genre's covers exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from index.faiss_index import search
from index.store import CoverIndex, load_index, shown_name, user_columns
from recsys.cache import default_cache_dir
from recsys.encoders import Encoder, ModelSpec, encoder_for_spec
from recsys.errors import SleeveError
from recsys.images import DEFAULT_MAX_PIXELS, BadImageError, load_cover
from recsys.ingest import content_hash


class QueryError(SleeveError):
    """The query cannot be answered as asked (unreadable cover, unknown genre)."""


class Recommender:
    """An index and its encoder, loaded once and queried many times."""

    def __init__(
        self,
        index_dir: str | Path,
        runtime: str = "auto",
        cache_dir: str | Path | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        weights: str | None = None,
    ) -> None:
        self.index: CoverIndex = load_index(index_dir)
        self.spec = ModelSpec.from_dict(self.index.info.model)
        self.encoder: Encoder = encoder_for_spec(self.spec, runtime, cache_dir or default_cache_dir(), weights)
        self.max_pixels = max_pixels

    def embed_cover(self, cover: str | Path) -> np.ndarray:
        """The query cover's unit vector, or a :class:`QueryError` saying why it cannot be read."""
        try:
            image = load_cover(cover, self.max_pixels, reduce_to=self.encoder.input_size)
        except BadImageError as error:
            raise QueryError(f"cannot use {cover} as a query: {error}") from None
        return self.encoder.encode_images(self.encoder.preprocess(image)[None])[0]

    def similar_to_cover(self, cover: str | Path, k: int = 10, genre: str | None = None) -> pd.DataFrame:
        vector = self.embed_cover(cover)
        return self.similar_to_vector(vector, k, genre, exclude_hash=content_hash(cover))

    def similar_to_text(self, text: str, k: int = 10, genre: str | None = None) -> pd.DataFrame:
        return self.similar_to_vector(self.encoder.encode_text([text])[0], k, genre)

    def similar_to_vector(
        self, vector: np.ndarray, k: int = 10, genre: str | None = None, exclude_hash: str | None = None
    ) -> pd.DataFrame:
        """Top ``k`` covers by cosine similarity: columns rank, score, genre, path, then the manifest's columns
        (one whose name sleeve uses itself, such as ``score``, is shown as ``user:score``)."""
        if k < 1:
            raise QueryError("k must be at least 1")
        metadata = self.index.metadata
        k = min(k, len(metadata))  # FAISS would allocate k results however few covers there are
        excluded = (metadata["content_hash"] == exclude_hash).to_numpy()
        if genre is not None:
            rows, scores = self._exact_within_genre(vector, k, genre, excluded)
        else:
            compressed = self.index.info.index_type == "ivfpq"
            found_scores, found_rows = search(
                self.index.faiss_index, vector, k + int(excluded.sum()),
                exact_vectors=self.index.embeddings if compressed else None,
            )
            keep = (found_rows >= 0) & ~excluded[np.maximum(found_rows, 0)]
            rows, scores = found_rows[keep][:k], found_scores[keep][:k]
        found = metadata.iloc[rows].reset_index(drop=True)
        result = pd.DataFrame({"rank": range(1, len(found) + 1), "score": np.round(scores.astype(float), 4)})
        extra = found[user_columns(found)].rename(columns=shown_name)
        return pd.concat([result, found[["genre", "path"]], extra], axis=1)

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
