"""UMAP reducers: a 2-D layout for the picture and a ~10-D one for clustering.

Clustering in 2-D would cluster the drawing, not the covers: squeezing 1280 dimensions into two tears
neighbourhoods apart and glues others together. A ~10-D reduction keeps most of the neighbourhood
structure while giving HDBSCAN a space where density is meaningful. Both are cosine (embeddings are
compared by angle everywhere else in sleeve) and seeded, so the same index gives the same report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import umap

PICTURE_DIMENSIONS = 2
CLUSTER_DIMENSIONS = 10
N_NEIGHBOURS = 15
"""UMAP's own default: local enough to keep small look-alike groups, large enough to stay connected."""
PICTURE_MIN_DIST = 0.1
"""Leaves room between points so the scatter can be read and hovered."""
CLUSTER_MIN_DIST = 0.0
"""Packs dense regions tightly, which is what a density clusterer wants."""


def picture_reducer(n_covers: int, seed: int) -> umap.UMAP:
    """The reducer behind the scatter plots."""
    return _umap(n_covers, PICTURE_DIMENSIONS, PICTURE_MIN_DIST, seed)


def cluster_reducer(n_covers: int, seed: int) -> umap.UMAP:
    """The reducer whose output HDBSCAN clusters."""
    return _umap(n_covers, CLUSTER_DIMENSIONS, CLUSTER_MIN_DIST, seed)


def _umap(n_covers: int, dimensions: int, min_dist: float, seed: int) -> umap.UMAP:
    import umap  # seconds of numba start-up: only when a map is really fitted, not for errors or --help

    # Spectral initialisation needs more points than dimensions; tiny collections get fewer of both.
    return umap.UMAP(
        n_neighbors=max(2, min(N_NEIGHBOURS, n_covers - 1)),
        n_components=max(1, min(dimensions, n_covers - 2)),
        metric="cosine",
        min_dist=min_dist,
        random_state=seed,
        n_jobs=1,  # a seed makes UMAP single-threaded anyway; saying so silences its warning
    )
