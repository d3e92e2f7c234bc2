"""Synthetic collections with a known answer for the analysis tests: genre blobs and small indexes of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from analysis.cluster import make_clusterer
from analysis.covermap import CoverMap
from index.faiss_index import build_faiss_index
from index.store import write_index
from tests.conftest import make_cover


def blobs(sizes: dict[str, int], dim: int = 32, spread: float = 0.05, seed: int = 0,
          shared_centre: tuple[str, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around one random centre per genre; genres in ``shared_centre`` share one centre (mixed).

    ``spread`` is the noise per dimension: 0.05 in 32-d gives tight, well separated blobs.
    """
    rng = np.random.default_rng(seed)
    centres = {genre: rng.normal(size=dim) for genre in sizes}
    for genre in shared_centre:
        centres[genre] = centres[shared_centre[0]]
    vectors, genres = [], []
    for genre, count in sizes.items():
        centre = centres[genre] / np.linalg.norm(centres[genre])
        vectors.append(centre + rng.normal(scale=spread, size=(count, dim)))
        genres += [genre] * count
    vectors = np.vstack(vectors).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.array(genres, dtype=object)


def fast_cover_map(seed: int = 0) -> CoverMap:
    """PCA instead of UMAP (no numba warm-up): for tests of everything around the map, not of UMAP."""
    return CoverMap(
        picture_reducer=PCA(n_components=2, random_state=seed),
        cluster_reducer=PCA(n_components=5, random_state=seed),
        clusterer=make_clusterer(0, min_cluster_size=5),
    )


def write_blob_index(folder: Path, covers: Path, sizes: dict[str, int], **blob_options: object) -> Path:
    """An index folder whose embeddings are genre blobs and whose covers are real (synthetic) image files."""
    embeddings, genres = blobs(sizes, **blob_options)
    paths = [make_cover(covers / genre / f"{row}.png", seed=row) for row, genre in enumerate(genres)]
    metadata = pd.DataFrame(
        {
            "id": np.arange(len(paths)),
            "path": [str(p) for p in paths],
            "content_hash": [f"{row:064x}" for row in range(len(paths))],
            "size": [p.stat().st_size for p in paths],
            "mtime_ns": [p.stat().st_mtime_ns for p in paths],
            "genre": pd.array(genres, dtype="string"),
        }
    )
    index, search_params = build_faiss_index(embeddings, "flat")
    write_index(folder, index, metadata, embeddings, {"family": "blobs"}, "blobs:test", "flat", search_params)
    return folder
