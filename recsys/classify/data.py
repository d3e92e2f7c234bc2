"""Labelled covers as the classifiers see them: file paths, genres, the index model's embeddings and,
for the models that read it, the text printed on each cover.

Covers of an index come with their stored vectors. Another labelled collection (for a transfer test) is
embedded with the same model through the shared embedding cache, so its vectors are comparable. Cover text
is read by OCR only when a model asks for it, through its own cache (recsys.ocr).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from index.errors import SleeveError
from index.store import CoverIndex
from recsys.cache import EmbeddingCache, default_cache_dir
from recsys.classify.models import image_text_frame
from recsys.embed import embed_missing
from recsys.encoders import Encoder
from recsys.ingest import fingerprint, read_manifest, scan_folder
from recsys.ocr import TextCache, cover_text, read_missing, reader_key


class LabelledDataError(SleeveError):
    """The covers cannot be used to train or test a genre classifier as given."""


@dataclasses.dataclass(frozen=True)
class LabelledCovers:
    """One row per labelled cover, in the same order in all three arrays."""

    paths: np.ndarray  # object array of absolute paths
    genres: np.ndarray  # object array of genre names
    embeddings: np.ndarray  # (N, d) float32 unit vectors of the index's model
    content_hashes: np.ndarray | None = None  # object array; the key of the OCR text cache
    texts: np.ndarray | None = None  # object array of OCR text, once read (see with_cover_text)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, rows: np.ndarray) -> LabelledCovers:
        """The covers at ``rows`` (a boolean mask or row numbers)."""
        return LabelledCovers(
            self.paths[rows],
            self.genres[rows],
            self.embeddings[rows],
            None if self.content_hashes is None else self.content_hashes[rows],
            None if self.texts is None else self.texts[rows],
        )

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
        content_hashes=index.metadata["content_hash"].to_numpy(dtype=object)[labelled],
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
        table = embed_missing(table, encoder, cache, progress=progress).files
        if table.empty:
            raise LabelledDataError(f"none of the test covers in {covers or manifest} could be read")
        vectors = cache.get(model, list(table["content_hash"]), encoder.spec.dim)
    return LabelledCovers(
        paths=table["path"].to_numpy(dtype=object),
        genres=table["genre"].str.strip().str.lower().to_numpy(dtype=object),
        embeddings=vectors,
        content_hashes=table["content_hash"].to_numpy(dtype=object),
    )


def with_cover_text(
    covers: LabelledCovers, cache_dir: str | Path | None = None, progress: bool = True
) -> LabelledCovers:
    """The covers with their OCR text, read now where the text cache lacks it; unreadable covers get ""."""
    if covers.content_hashes is None:
        raise LabelledDataError("these covers carry no content hashes, so their text cannot be cached")
    hashes = list(covers.content_hashes)
    with TextCache(cache_dir or default_cache_dir()) as cache:
        read_missing(pd.DataFrame({"path": covers.paths, "content_hash": hashes}), None, cache, progress)
        found = cache.get(reader_key(), hashes)
    texts = np.array([cover_text(found.get(content_hash, [])) for content_hash in hashes], dtype=object)
    return dataclasses.replace(covers, texts=texts)


def model_inputs(covers: LabelledCovers, inputs: str) -> Any:
    """What a model of ``inputs`` kind (recsys.classify.catalog.Classifier.inputs) reads: vectors, files, texts or both."""
    if inputs == "embeddings":
        return covers.embeddings
    if inputs == "images":
        return covers.paths
    if covers.texts is None:
        raise LabelledDataError("these covers have no OCR text yet; read it with with_cover_text")
    if inputs == "text":
        return covers.texts
    if inputs == "embeddings+text":
        return image_text_frame(covers.embeddings, covers.texts)
    raise ValueError(f"unknown model inputs {inputs!r}")
