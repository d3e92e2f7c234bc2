"""The cover map and genre separability from embeddings in memory, with no index folder or report.

What ``sleeve analyze`` computes before it draws: for a notebook that holds its own vectors (BERTopic-style,
arrays in, frames out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.covermap import CoverMap
from analysis.separability import DEFAULT_NEIGHBOURS, genre_separability


@dataclasses.dataclass
class GenreMap:
    points: pd.DataFrame
    """One row per cover: x, y (the 2-D picture), cluster (-1: none) and genre."""
    separability: pd.DataFrame | None
    """One row per genre, best separated first (None without at least two labelled genres)."""
    n_clusters: int
    noise_share: float


def map_covers(
    embeddings: np.ndarray,
    genres: Sequence[str | None] | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
    seed: int = 0,
    cover_map: CoverMap | None = None,
) -> GenreMap:
    """Lay out and cluster ``embeddings`` (UMAP + HDBSCAN unless ``cover_map`` injects others) and, given
    ``genres``, rank how well each genre separates (k-NN purity over chance, silhouette)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    layout = (cover_map or CoverMap(seed=seed)).fit(embeddings).layout_
    labels = pd.Series(list(genres) if genres is not None else [None] * len(embeddings), dtype="string")
    points = pd.DataFrame(
        {"x": layout.picture[:, 0], "y": layout.picture[:, 1], "cluster": layout.labels, "genre": labels}
    )
    labelled = labels.notna().to_numpy()
    table = None
    if labels[labelled].nunique() >= 2:
        known = labels[labelled].astype(str).to_numpy(dtype=object)
        table, _ = genre_separability(embeddings[labelled], known, min(neighbours, len(known) - 1), seed)
    return GenreMap(points, table, layout.n_clusters, layout.noise_share)
