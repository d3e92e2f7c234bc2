"""An index built from vectors in memory, with no folder: for notebooks and other programs.

The same index types and ``auto`` policy as ``build-index``; :meth:`index.store.CoverIndex.save` writes it as
an index folder later if wanted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from index.errors import SleeveError
from index.faiss_index import build_faiss_index
from index.registry import INDEX_TYPES
from index.store import USER_PREFIX, CoverIndex, IndexInfo
from recsys.encoders.base import ModelSpec, l2_normalize

UNKNOWN_MODEL = "vectors:unknown"
"""The model key of vectors given without a model spec: only vector queries can use them."""


def index_vectors(
    vectors: np.ndarray,
    metadata: pd.DataFrame | None = None,
    spec: ModelSpec | None = None,
    index_type: str = "auto",
) -> CoverIndex:
    """Index ``vectors`` (N, d; normalised here) with one ``metadata`` row each (optional columns ``path``,
    ``genre`` and any others, shown with results). ``spec`` is the identity of the encoder that made them, so
    cover and text queries can be encoded alike; without it only vector queries work."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise SleeveError(f"expected a non-empty (N, d) array of vectors, got shape {vectors.shape}")
    vectors = l2_normalize(vectors)
    if spec is not None and spec.dim != vectors.shape[1]:
        raise SleeveError(f"{spec.label} makes {spec.dim}-d vectors, these are {vectors.shape[1]}-d")
    table = index_table(metadata, len(vectors))
    index_type = INDEX_TYPES.resolve(index_type, count=len(vectors), dim=vectors.shape[1])
    built, params = build_faiss_index(vectors, index_type)
    info = IndexInfo.new(
        spec.to_dict() if spec is not None else {}, spec.key if spec is not None else UNKNOWN_MODEL,
        int(vectors.shape[1]), len(vectors), index_type, params, files={},
    )
    return CoverIndex.in_memory(info, table, vectors, built)


def index_table(metadata: pd.DataFrame | None, count: int) -> pd.DataFrame:
    """sleeve's own columns (id, path, content_hash, size, mtime_ns, genre) first, then the caller's other
    columns, stored apart from them under the ``user:`` prefix as build-index stores a manifest's."""
    given = pd.DataFrame(index=range(count)) if metadata is None else metadata.reset_index(drop=True)
    if len(given) != count:
        raise SleeveError(f"metadata has {len(given)} rows for {count} vectors; give one row per vector")
    own: dict[str, Any] = {
        "id": np.arange(count),
        "path": given["path"].astype(str) if "path" in given else pd.Series([None] * count, dtype=object),
        "content_hash": given.get("content_hash", pd.Series([None] * count, dtype=object)),
        "size": pd.array([pd.NA] * count, dtype="Int64"),  # no file behind a vector given in memory
        "mtime_ns": pd.array([pd.NA] * count, dtype="Int64"),
        "genre": given.get("genre", pd.Series([None] * count, dtype=object)),
    }
    rest = given.drop(columns=[c for c in own if c in given])
    rest = rest.rename(columns=lambda column: USER_PREFIX + str(column))
    return pd.concat([pd.DataFrame(own), rest], axis=1)
