"""A static PNG of the two maps (by genre, by cluster), for a README or a slide.

Drawn with matplotlib's object API rather than Bokeh's own PNG export, which needs a browser driver: this works
offline, headless and in CI. Colours match the interactive report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.covermap import NOISE
from analysis.report import (
    DRAW_ORDER_SEED,
    GENRE_ALPHA,
    NOISE_ALPHA,
    UNLABELLED,
    cluster_colours,
    genre_colours,
)
from index.atomic import atomic_path

DPI = 110


def write_scatter_png(path: str | Path, points: pd.DataFrame, title: str) -> Path:
    """Write the genre map and the cluster map side by side; ``points`` has x, y, genre, cluster."""
    path = Path(path)
    genres = points["genre"].fillna(UNLABELLED).astype(str)
    colours = genre_colours(sorted(set(genres) - {UNLABELLED}))
    clusters = points["cluster"].to_numpy()
    figure = Figure(figsize=(13, 6.4), dpi=DPI)  # no pyplot: no display backend, no global state
    by_genre, by_cluster = figure.subplots(1, 2)
    # Seeded random draw order, as in the report: index order groups genres, painting the last over the rest.
    order = np.random.default_rng(DRAW_ORDER_SEED).permutation(len(points))
    by_genre.scatter(points["x"].to_numpy()[order], points["y"].to_numpy()[order], s=5, alpha=GENRE_ALPHA,
                     c=[colours[genre] for genre in genres.to_numpy()[order]], linewidths=0)
    counts = genres.value_counts()
    handles = [
        Line2D([], [], marker="o", linestyle="", color=colours[genre], label=f"{genre} ({counts[genre]:,})")
        for genre in sorted(counts.index, key=lambda g: (g == UNLABELLED, g))
    ]
    by_genre.legend(handles=handles, loc="upper left", fontsize=9, framealpha=0.8)
    by_genre.set_title("by genre")
    noise = clusters == NOISE
    by_cluster.scatter(points["x"][noise], points["y"][noise], s=4, c="#bbbbbb", alpha=NOISE_ALPHA * 2,
                       linewidths=0, label=f"noise ({noise.sum():,})")
    n_clusters = int(clusters.max()) + 1 if len(clusters) else 0
    palette = np.array(cluster_colours(n_clusters) or ["#000000"])
    by_cluster.scatter(points["x"][~noise], points["y"][~noise], s=5, c=palette[clusters[~noise]], alpha=0.85,
                       linewidths=0, label=f"in {n_clusters} clusters ({(~noise).sum():,})")
    for cluster, centre in points[~noise].groupby("cluster")[["x", "y"]].median().iterrows():
        by_cluster.annotate(str(cluster), (centre["x"], centre["y"]), ha="center", va="center", fontsize=9,
                            fontweight="bold", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7,
                                                     "lw": 0})
    by_cluster.legend(loc="upper left", markerscale=3, fontsize=9, framealpha=0.8)
    by_cluster.set_title("by HDBSCAN cluster (noise faint)")
    for axes in (by_genre, by_cluster):
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_aspect("equal", adjustable="datalim")
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    return path
