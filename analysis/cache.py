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
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis.covermap import CoverMap, Layout
from recsys.atomic import atomic_path

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def component_description(component: Any) -> dict[str, Any]:
    """Class and parameters of a reducer or clusterer, as JSON-ready text."""
    params = component.get_params(deep=False) if hasattr(component, "get_params") else {}
    return {
        "class": f"{type(component).__module__}.{type(component).__qualname__}",
        "params": {name: repr(value) for name, value in sorted(params.items())},
    }


def layout_key(index_identity: dict[str, Any], cover_map: CoverMap, n_covers: int) -> tuple[str, dict[str, Any]]:
    """(hex key, the description it hashes) for ``cover_map`` fitted on this index."""
    description = {
        "format": CACHE_FORMAT,
        "index": index_identity,
        "components": {name: component_description(part) for name, part in cover_map.components(n_covers).items()},
    }
    return _digest(description), description


def _digest(description: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


def fit_cached(
    cover_map: CoverMap, embeddings: np.ndarray, index_identity: dict[str, Any], folder: str | Path
) -> tuple[Layout, bool]:
    """The layout of ``cover_map`` on ``embeddings``: loaded from ``folder`` if cached, else fitted and saved.

    Returns (layout, True if it came from the cache).
    """
    folder = Path(folder)
    key, description = layout_key(index_identity, cover_map, len(embeddings))
    data_path = folder / f"layout-{key}.npz"
    if data_path.is_file():
        try:
            with np.load(data_path) as stored:
                layout = Layout(**{field: stored[field] for field in ("picture", "reduced", "labels", "probabilities")})
            if len(layout.labels) == len(embeddings):
                log.info("layout loaded from %s", data_path)
                return layout, True
        except (OSError, KeyError, ValueError) as error:
            log.warning("ignoring unreadable cached layout %s (%s); fitting again", data_path, error)
    layout = cover_map.fit(embeddings).layout_
    with atomic_path(data_path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **{field: getattr(layout, field) for field in ("picture", "reduced", "labels", "probabilities")})
    with atomic_path(folder / f"layout-{key}.json") as temporary:
        temporary.write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    return layout, False


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
