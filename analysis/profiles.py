"""What each cluster holds: its size, genre mix, how its covers look compared to all covers, and examples."""

from __future__ import annotations

import dataclasses
import enum

import numpy as np
import pandas as pd

from analysis.covermap import NOISE

GENRE_MAJORITY = 0.5
"""A cluster follows genre when more than half of its covers share one genre."""
LEAN_LIFT = 1.5
"""Short of a majority, a cluster leans to a genre that is 1.5x as common in it as in the whole collection."""
EXAMPLES_PER_CLUSTER = 8


class GenreFit(enum.Enum):
    FOLLOWS = "follows"
    LEANS = "leans"
    MIXED = "mixed"


@dataclasses.dataclass
class ClusterProfile:
    cluster: int
    size: int
    genre_shares: pd.Series  # share of the cluster's covers per genre, largest first (labelled covers only)
    trait_scores: pd.Series  # per trait: (cluster mean - collection mean) / collection spread, in spreads
    examples: list[int]  # row numbers of its most typical covers

    @property
    def top_genre(self) -> str | None:
        return str(self.genre_shares.index[0]) if len(self.genre_shares) else None

    @property
    def top_share(self) -> float:
        return float(self.genre_shares.iloc[0]) if len(self.genre_shares) else 0.0

    def genre_fit(self, overall_shares: pd.Series) -> GenreFit:
        """How far the cluster follows genre, against each genre's share of the whole collection."""
        if self.top_share > GENRE_MAJORITY:
            return GenreFit.FOLLOWS
        overall = float(overall_shares.get(self.top_genre, 0.0)) if self.top_genre is not None else 0.0
        if overall > 0 and self.top_share >= LEAN_LIFT * overall:
            return GenreFit.LEANS
        return GenreFit.MIXED


def cluster_profiles(
    labels: np.ndarray,
    probabilities: np.ndarray,
    reduced: np.ndarray,
    genres: pd.Series,
    traits: pd.DataFrame,
    examples: int = EXAMPLES_PER_CLUSTER,
) -> list[ClusterProfile]:
    """One profile per cluster, largest cluster first.

    ``genres`` may hold <NA> for unlabelled covers; ``traits`` may hold NaN for covers that could not be read.
    Examples are the members HDBSCAN is surest of, nearest the cluster's centre first.
    """
    labels = np.asarray(labels)
    spread = traits.std().replace(0.0, np.nan)
    profiles = []
    for cluster in sorted(set(labels.tolist()) - {NOISE}):
        members = np.flatnonzero(labels == cluster)
        centre = reduced[members].mean(axis=0)
        distance = np.linalg.norm(reduced[members] - centre, axis=1)
        typical = members[np.lexsort((distance, -probabilities[members]))][:examples]
        shares = genres.iloc[members].dropna().value_counts(normalize=True)
        scores = ((traits.iloc[members].mean() - traits.mean()) / spread).fillna(0.0)
        profiles.append(ClusterProfile(int(cluster), len(members), shares, scores, typical.tolist()))
    return sorted(profiles, key=lambda profile: (-profile.size, profile.cluster))
