"""HDBSCAN with defaults that give a readable partition of a cover collection.

Cover embeddings often form one continuous cloud with denser pockets rather than separate islands.
HDBSCAN's default "excess of mass" selection then keeps the whole cloud as one cluster (on the 4,450 shared
covers: one cluster of 4,324 and two tiny ones), which says nothing. "Leaf" selection instead returns the
densest pockets of the cluster tree, the look-alike groups worth showing; covers between pockets stay noise
rather than being forced in. Where the data does have separate islands, excess of mass finds exactly
those, and leaf would split each island into crumbs. So: excess of mass first, leaf when it collapses.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import HDBSCAN

MIN_CLUSTER_FRACTION = 0.01
"""Smallest cluster as a share of the collection: about a dozen to twenty pockets, few enough to read."""
SMALLEST_MIN_CLUSTER_SIZE = 5
MIN_SAMPLES = 5
"""Density is judged over 5 neighbours: smooths away pairs of near-duplicates posing as clusters."""
MAX_CLUSTER_SHARE = 0.8
"""Excess of mass has collapsed when one cluster holds more than 80% of the clustered covers."""


class ReadableHDBSCAN(ClusterMixin, BaseEstimator):
    """HDBSCAN that falls back from excess-of-mass to leaf selection when one cluster swallows the rest.

    Fitted state: ``labels_`` (-1 for noise), ``probabilities_`` and ``selection_`` ("eom" or "leaf").
    """

    def __init__(self, min_cluster_size: int = SMALLEST_MIN_CLUSTER_SIZE, min_samples: int = MIN_SAMPLES,
                 max_cluster_share: float = MAX_CLUSTER_SHARE) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.max_cluster_share = max_cluster_share

    def fit(self, X: np.ndarray, y: None = None) -> ReadableHDBSCAN:  # noqa: N803 (scikit-learn's signature)
        for selection in ("eom", "leaf"):
            fitted = HDBSCAN(
                min_cluster_size=self.min_cluster_size,
                min_samples=min(self.min_samples, self.min_cluster_size),
                cluster_selection_method=selection,
                copy=True,
            ).fit(X)
            if not self._collapsed(fitted.labels_):
                break
        self.labels_ = fitted.labels_
        self.probabilities_ = fitted.probabilities_
        self.selection_ = selection
        return self

    def _collapsed(self, labels: np.ndarray) -> bool:
        clustered = labels[labels >= 0]
        if len(np.unique(clustered)) < 2:
            return True
        return np.bincount(clustered).max() > self.max_cluster_share * len(clustered)


def default_min_cluster_size(n_covers: int) -> int:
    """1% of the collection, never fewer than a handful of covers."""
    return max(SMALLEST_MIN_CLUSTER_SIZE, round(n_covers * MIN_CLUSTER_FRACTION))


def make_clusterer(
    n_covers: int, min_cluster_size: int | None = None, min_samples: int = MIN_SAMPLES
) -> ReadableHDBSCAN:
    """An unfitted clusterer for ``n_covers`` points; ``min_cluster_size`` None means the scaled default."""
    size = default_min_cluster_size(n_covers) if min_cluster_size is None else min_cluster_size
    return ReadableHDBSCAN(min_cluster_size=size, min_samples=min_samples)
