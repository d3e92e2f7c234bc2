"""The map of a collection: a 2-D layout to draw and a clustering to colour it, fitted together.

Follows scikit-learn (parameters in ``__init__``, learning in ``fit``, fitted state with a trailing
underscore) and, like BERTopic, takes its reducers and clusterer through the constructor: anything with
``fit_transform`` reduces and anything with ``fit`` that sets ``labels_`` clusters. Left as None they are
the defaults of :mod:`analysis.reduce` and :mod:`analysis.cluster`, sized to the collection at fit time.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from analysis.cluster import MIN_SAMPLES, make_clusterer
from analysis.reduce import cluster_reducer, picture_reducer

NOISE = -1
"""The cluster label of a cover that belongs to no cluster (HDBSCAN's convention)."""


@dataclasses.dataclass
class Layout:
    """What a fitted map produces, as plain arrays (one row per cover, in index order)."""

    picture: np.ndarray  # (n, 2) float: where each cover is drawn
    reduced: np.ndarray  # (n, d) float: the space that was clustered
    labels: np.ndarray  # (n,) int: cluster id, NOISE for none
    probabilities: np.ndarray  # (n,) float: strength of membership, 0 for noise

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    @property
    def noise_share(self) -> float:
        return float(np.mean(self.labels == NOISE)) if len(self.labels) else 0.0


class CoverMap:
    """Reduce embeddings twice (picture, clustering space) and cluster the second reduction."""

    def __init__(
        self,
        picture_reducer: Any = None,
        cluster_reducer: Any = None,
        clusterer: Any = None,
        min_cluster_size: int | None = None,
        min_samples: int = MIN_SAMPLES,
        seed: int = 0,
    ) -> None:
        self.picture_reducer = picture_reducer
        self.cluster_reducer = cluster_reducer
        self.clusterer = clusterer
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.seed = seed

    def components(self, n_covers: int) -> dict[str, Any]:
        """The reducers and clusterer that ``fit`` will use for ``n_covers`` (injected ones as given)."""
        return {
            "picture_reducer": self.picture_reducer or picture_reducer(n_covers, self.seed),
            "cluster_reducer": self.cluster_reducer or cluster_reducer(n_covers, self.seed),
            "clusterer": self.clusterer or make_clusterer(n_covers, self.min_cluster_size, self.min_samples),
        }

    def fit(self, embeddings: np.ndarray) -> CoverMap:
        picture, reduced = self.reduce(embeddings)
        labels, probabilities = self.cluster(reduced)
        self.layout_ = Layout(picture, reduced, labels, probabilities)
        return self

    def reduce(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(picture, clustering space): the slow half of ``fit``, which a cache can skip on its own."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        parts = self.components(len(embeddings))
        self.picture_reducer_ = parts["picture_reducer"]
        self.cluster_reducer_ = parts["cluster_reducer"]
        picture = np.asarray(self.picture_reducer_.fit_transform(embeddings), dtype=np.float32)
        return picture, np.asarray(self.cluster_reducer_.fit_transform(embeddings), dtype=np.float32)

    def cluster(self, reduced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels, membership probabilities) of the reduced covers, clusters numbered largest first."""
        self.clusterer_ = self.components(len(reduced))["clusterer"].fit(reduced)
        labels = _largest_first(np.asarray(self.clusterer_.labels_, dtype=np.int64))
        probabilities = getattr(self.clusterer_, "probabilities_", None)
        if probabilities is None:
            probabilities = (labels != NOISE).astype(np.float32)
        return labels, np.asarray(probabilities, dtype=np.float32)


def _largest_first(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters by size, so cluster 0 is the largest in every report (ties keep their order)."""
    clustered = labels[labels != NOISE]
    if not len(clustered):
        return labels
    sizes = np.bincount(clustered)
    order = np.argsort(-sizes, kind="stable")
    new_id = np.full(len(sizes), NOISE, dtype=np.int64)
    new_id[order] = np.arange(len(sizes))
    return np.where(labels == NOISE, NOISE, new_id[np.maximum(labels, 0)])
