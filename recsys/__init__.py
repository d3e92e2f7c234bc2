"""sleeve: embed album covers, find look-alikes, classify genres and analyse clusters.

The front door, in three lines::

    from recsys import open_index
    recommender = open_index("sleeve-index")
    recommender.similar_to_cover("cover.jpg", k=10)

or with no folder at all: ``embed_images`` -> ``index_vectors`` -> ``Recommender`` / ``fit_genre_classifier``
/ ``map_covers``. Names are imported on first use, so ``import recsys`` stays instant and a query never
pays for what it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # configuration and errors
    "Settings": "recsys.settings",
    "SleeveError": "index.errors",
    # encoders
    "create_encoder": "recsys.encoders.factory",
    "ENCODERS": "recsys.encoders.registry",
    "embed_images": "recsys.vectors",
    # indexes and look-alikes
    "build_index": "recsys.build",
    "BuildSummary": "recsys.build",
    "index_vectors": "recsys.memory_index",
    "INDEX_TYPES": "index.registry",
    "open_index": "recsys.recommend",
    "QueryAnswerer": "recsys.answer",
    "Recommender": "recsys.recommend",
    # genres
    "fit_genre_classifier": "recsys.classify.arrays",
    "predict_genres": "recsys.classify.arrays",
    "train_classifier": "recsys.classify.train",
    "predict_cover": "recsys.classify.predict",
    "evaluate": "recsys.classify.evaluate",
    # the map of a collection
    "map_covers": "analysis.arrays",
    "analyze": "analysis.run",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'recsys' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and editors only; at run time __getattr__ imports on first use
    from analysis.arrays import map_covers
    from analysis.run import analyze
    from index.errors import SleeveError
    from index.registry import INDEX_TYPES
    from recsys.answer import QueryAnswerer
    from recsys.build import BuildSummary, build_index
    from recsys.classify.arrays import fit_genre_classifier, predict_genres
    from recsys.classify.evaluate import evaluate
    from recsys.classify.predict import predict_cover
    from recsys.classify.train import train_classifier
    from recsys.encoders.factory import create_encoder
    from recsys.encoders.registry import ENCODERS
    from recsys.memory_index import index_vectors
    from recsys.recommend import Recommender, open_index
    from recsys.settings import Settings
    from recsys.vectors import embed_images
