"""Caches per (index generation, parameters), so re-opening a report is quick.

UMAP on thousands of covers takes a minute and decoding every cover for thumbnails and traits several
seconds; writing the report around them takes one or two. Keys cover everything a result depends on: the
index's embeddings file (its name carries the generation, so a rebuilt index never reuses a stale result),
the model, the cover count, and every parameter that shaped the result.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.covermap import CoverMap, Layout
from index.atomic import atomic_path

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def component_description(component: Any) -> dict[str, Any]:
    """Class and parameters of a reducer or clusterer, as JSON-ready text."""
    params = component.get_params(deep=False) if hasattr(component, "get_params") else {}
    return {
        "class": f"{type(component).__module__}.{type(component).__qualname__}",
        "params": {name: repr(value) for name, value in sorted(params.items())},
    }


def stage_keys(index_identity: dict[str, Any], cover_map: CoverMap, n_covers: int) -> dict[str, dict[str, Any]]:
    """What each cached stage depends on: the reductions on the reducers, the clusters on those and the clusterer.

    Two stages, so that trying another --min-cluster-size reuses the minute of UMAP and re-clusters in a second.
    """
    parts = {name: component_description(part) for name, part in cover_map.components(n_covers).items()}
    reduced = {"format": CACHE_FORMAT, "index": index_identity, "picture_reducer": parts["picture_reducer"],
               "cluster_reducer": parts["cluster_reducer"]}
    return {"reduced": reduced, "clusters": {**reduced, "clusterer": parts["clusterer"]}}


def _digest(description: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


def fit_cached(
    cover_map: CoverMap, embeddings: np.ndarray, index_identity: dict[str, Any], folder: str | Path
) -> tuple[Layout, bool]:
    """The layout of ``cover_map`` on ``embeddings``, each stage loaded from ``folder`` if cached, else fitted.

    Returns (layout, True if nothing had to be fitted).
    """
    keys = stage_keys(index_identity, cover_map, len(embeddings))
    reduced, reduced_hit = _stage(Path(folder), "reduced", keys["reduced"], ("picture", "reduced"), len(embeddings),
                                  lambda: cover_map.reduce(embeddings))
    clusters, clusters_hit = _stage(Path(folder), "clusters", keys["clusters"], ("labels", "probabilities"),
                                    len(embeddings), lambda: cover_map.cluster(reduced[1]))
    return Layout(*reduced, *clusters), reduced_hit and clusters_hit


def _stage(
    folder: Path,
    stage: str,
    description: dict[str, Any],
    fields: tuple[str, str],
    n_covers: int,
    compute: Callable[[], tuple[np.ndarray, np.ndarray]],
) -> tuple[tuple[np.ndarray, np.ndarray], bool]:
    """Arrays of one stage from ``<folder>/<stage>-<key>.npz``, or computed and saved there (with a JSON of the key)."""
    key = _digest(description)
    path = folder / f"{stage}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as stored:
                arrays = (stored[fields[0]], stored[fields[1]])
            if len(arrays[0]) == n_covers:
                log.info("%s loaded from %s", stage, path)
                return arrays, True
        except (OSError, KeyError, ValueError) as error:
            log.warning("ignoring unreadable cache file %s (%s); computing again", path, error)
    arrays = compute()
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, **dict(zip(fields, arrays)))
    with atomic_path(folder / f"{stage}-{key}.json") as temporary:
        temporary.write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    return arrays, False


def looks_cached(
    description: dict[str, Any],
    folder: str | Path,
    compute: Callable[[], tuple[pd.DataFrame, dict[int, str]]],
) -> tuple[pd.DataFrame, dict[int, str]]:
    """(traits per cover, thumbnails by row) for the covers ``description`` names, from the cache if there.

    ``description`` must hold the index identity, the sampled rows and the picture settings; ``compute``
    decodes the covers when nothing is cached.
    """
    path = Path(folder) / f"looks-{_digest({'format': CACHE_FORMAT, **description})}.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            traits = pd.DataFrame(stored["traits"], columns=stored["columns"], dtype=float)
            return traits, {int(row): uri for row, uri in stored["thumbnails"].items()}
        except (OSError, KeyError, ValueError) as error:
            log.warning("ignoring unreadable cached thumbnails %s (%s); decoding covers again", path, error)
    traits, thumbnails = compute()
    stored = {
        "columns": list(traits.columns),
        "traits": [[None if np.isnan(v) else v for v in row] for row in traits.to_numpy().tolist()],
        "thumbnails": {str(row): uri for row, uri in thumbnails.items()},
    }
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(stored))
    return traits, thumbnails
