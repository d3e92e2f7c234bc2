"""Labelled covers as the classifiers see them: file paths, genres and the index model's embeddings.

Covers of an index come with their stored vectors. Another labelled collection (for a transfer test) is
embedded with the same model through the shared embedding cache, so its vectors are comparable.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from index.store import CoverIndex
from recsys.cache import EmbeddingCache, default_cache_dir
from recsys.embed import embed_missing
from recsys.encoders import Encoder
from recsys.errors import SleeveError
from recsys.ingest import fingerprint, read_manifest, scan_folder


class LabelledDataError(SleeveError):
    """The covers cannot be used to train or test a genre classifier as given."""


@dataclasses.dataclass(frozen=True)
class LabelledCovers:
    """One row per labelled cover, in the same order in all three arrays."""

    paths: np.ndarray  # object array of absolute paths
    genres: np.ndarray  # object array of genre names
    embeddings: np.ndarray  # (N, d) float32 unit vectors of the index's model

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, rows: np.ndarray) -> LabelledCovers:
        """The covers at ``rows`` (a boolean mask or row numbers)."""
        return LabelledCovers(self.paths[rows], self.genres[rows], self.embeddings[rows])

    def genre_counts(self) -> dict[str, int]:
        return {str(genre): int(count) for genre, count in pd.Series(self.genres).value_counts().sort_index().items()}


def from_index(index: CoverIndex) -> LabelledCovers:
    """The index's covers that have a genre (unlabelled ones cannot teach or test a classifier)."""
    labelled = index.metadata["genre"].notna().to_numpy()
    if not labelled.any():
        raise LabelledDataError(
            f"no cover in {index.folder} has a genre; build it from <genre>/ folders or a manifest with a genre column"
        )
    return LabelledCovers(
        paths=index.metadata["path"].to_numpy(dtype=object)[labelled],
        genres=index.metadata["genre"].str.strip().str.lower().to_numpy(dtype=object)[labelled],
        embeddings=np.asarray(index.embeddings, dtype=np.float32)[labelled],
    )


def embed_collection(
    encoder: Encoder,
    covers: str | Path | None = None,
    manifest: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> LabelledCovers:
    """Embed a labelled folder (``<genre>/`` sub-folders) or manifest with ``encoder``; unreadable and
    unlabelled files are left out."""
    table = scan_folder(covers) if covers is not None else read_manifest(manifest)
    if "genre" not in table or table["genre"].isna().all():
        raise LabelledDataError(f"the test covers {covers or manifest} carry no genres")
    table = table[table["genre"].notna()]
    readable, _ = fingerprint(list(table["path"]))
    table = table.merge(readable[["path", "content_hash"]], on="path")
    model = encoder.spec.key
    with EmbeddingCache(cache_dir or default_cache_dir()) as cache:
        embed_missing(table, encoder, cache, progress=progress)
        undecodable = set(cache.missing(model, table["content_hash"]))
        table = table[~table["content_hash"].isin(undecodable)].reset_index(drop=True)
        if table.empty:
            raise LabelledDataError(f"none of the test covers in {covers or manifest} could be read")
        vectors = cache.get(model, list(table["content_hash"]), encoder.spec.dim)
    return LabelledCovers(
        paths=table["path"].to_numpy(dtype=object),
        genres=table["genre"].str.strip().str.lower().to_numpy(dtype=object),
        embeddings=vectors,
    )
