"""How well each genre stands apart in the embedding space, measured several ways.

All measures work in the original embedding space (cosine), not in the UMAP picture: the picture is for
people, and its distances are distorted. Inputs are plain arrays of labelled covers only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn import metrics

from analysis.covermap import NOISE

DEFAULT_NEIGHBOURS = 10
SILHOUETTE_MAX_COVERS = 10_000
"""Silhouette costs n^2 distances; above this many covers it is estimated on a seeded stratified sample."""
_CHUNK_CELLS = 32_000_000
"""Similarities held in memory at once (128 MB of float32) while finding neighbours."""


def nearest_neighbours(embeddings: np.ndarray, k: int) -> np.ndarray:
    """(n, k) row numbers of each cover's k most cosine-similar other covers, most similar first."""
    vectors = _unit_rows(embeddings)
    n = len(vectors)
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and {n - 1} for {n} covers, not {k}")
    result = np.empty((n, k), dtype=np.int64)
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n, chunk):
        similarity = vectors[start : start + chunk] @ vectors.T
        rows = np.arange(similarity.shape[0])
        similarity[rows, start + rows] = -np.inf  # a cover is not its own neighbour
        top = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        order = np.argsort(-similarity[rows[:, None], top], axis=1)
        result[start : start + chunk] = top[rows[:, None], order]
    return result


def confusability(neighbours: np.ndarray, genres: np.ndarray) -> pd.DataFrame:
    """Genre-by-genre share of neighbours: row g, column h = share of g covers' neighbours that are h.

    Rows sum to 1; the diagonal is each genre's k-NN purity.
    """
    genres = np.asarray(genres, dtype=object)
    names = sorted(set(genres))
    neighbour_genres = genres[neighbours]
    table = pd.DataFrame(0.0, index=pd.Index(names, name="genre"), columns=pd.Index(names, name="neighbour genre"))
    for genre in names:
        found = neighbour_genres[genres == genre].ravel()
        counts = pd.Series(found).value_counts(normalize=True)
        table.loc[genre, counts.index] = counts.to_numpy()
    return table


def chance_purity(genres: np.ndarray) -> pd.Series:
    """The purity a genre would have if neighbours were drawn at random: (n_g - 1) / (n - 1)."""
    counts = pd.Series(np.asarray(genres, dtype=object)).value_counts().sort_index()
    return ((counts - 1) / max(len(genres) - 1, 1)).rename("chance")


def genre_silhouette(
    embeddings: np.ndarray, genres: np.ndarray, max_covers: int = SILHOUETTE_MAX_COVERS, seed: int = 0
) -> pd.Series:
    """Mean cosine silhouette of each genre's covers (1: tight and apart, 0: on the border, <0: inside others)."""
    genres = np.asarray(genres, dtype=object)
    rows = np.arange(len(genres))
    if len(rows) > max_covers:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(rows, size=max_covers, replace=False))
    scores = metrics.silhouette_samples(_unit_rows(embeddings[rows]), genres[rows], metric="cosine")
    return pd.Series(scores).groupby(genres[rows]).mean().sort_index().rename("silhouette")


@dataclasses.dataclass
class ClusterAgreement:
    """How far clusters follow genres, on the covers that HDBSCAN put in a cluster (noise left out)."""

    contingency: pd.DataFrame  # cluster x genre cover counts, noise as its own row
    ari: float
    nmi: float
    homogeneity: float  # 1: each cluster holds one genre
    completeness: float  # 1: each genre sits in one cluster
    clustered_share: float


def cluster_agreement(labels: np.ndarray, genres: np.ndarray) -> ClusterAgreement:
    labels = np.asarray(labels)
    genres = np.asarray(genres, dtype=object)
    contingency = pd.crosstab(pd.Series(labels, name="cluster"), pd.Series(genres, name="genre"))
    clustered = labels != NOISE
    if clustered.sum() < 2:
        scores = (0.0, 0.0, 0.0, 0.0)
    else:
        truth, found = genres[clustered], labels[clustered]
        scores = (
            metrics.adjusted_rand_score(truth, found),
            metrics.normalized_mutual_info_score(truth, found),
            metrics.homogeneity_score(truth, found),
            metrics.completeness_score(truth, found),
        )
    return ClusterAgreement(contingency, *map(float, scores), clustered_share=float(clustered.mean()))


def separability_table(
    silhouette: pd.Series,
    confusion: pd.DataFrame,
    chance: pd.Series,
    counts: pd.Series,
    recall: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per genre, best separated first: ranked by k-NN purity over chance (lift).

    Lift rather than raw purity, so that a large genre is not ranked high only for being common.
    """
    purity = pd.Series(np.diag(confusion.to_numpy()), index=confusion.index)
    others = confusion.to_numpy().copy()
    np.fill_diagonal(others, -1.0)
    table = pd.DataFrame(
        {
            "covers": counts.reindex(confusion.index).astype(int),
            "purity": purity,
            "chance": chance.reindex(confusion.index),
            "silhouette": silhouette.reindex(confusion.index),
            "closest": confusion.columns[others.argmax(axis=1)] if len(confusion) > 1 else pd.NA,
            "closest_share": others.max(axis=1) if len(confusion) > 1 else np.nan,
        }
    )
    table["lift"] = table["purity"] / table["chance"].where(table["chance"] > 0)
    if recall is not None:
        table["recall"] = recall.reindex(confusion.index)
    table = table.sort_values(["lift", "silhouette"], ascending=False)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.index.name = "genre"
    return table


def genre_separability(
    embeddings: np.ndarray, genres: np.ndarray, k: int = DEFAULT_NEIGHBOURS, seed: int = 0,
    recall: pd.Series | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(separability table, confusability matrix) of labelled covers: everything measured in one call."""
    confusion = confusability(nearest_neighbours(embeddings, k), genres)
    silhouette = genre_silhouette(embeddings, genres, seed=seed)
    counts = pd.Series(genres).value_counts()
    return separability_table(silhouette, confusion, chance_purity(genres), counts, recall), confusion


def overall_purity(table: pd.DataFrame) -> tuple[float, float]:
    """(purity, chance) over all labelled covers: the per-genre values weighted by genre size."""
    weights = table["covers"] / table["covers"].sum()
    return float((table["purity"] * weights).sum()), float((table["chance"] * weights).sum())


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    vectors = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)
