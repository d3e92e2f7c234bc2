"""The index types ``build-index --index-type`` offers, by name: the one place a new type is registered.

Entries are light (no FAISS import), so the command line can list them cheaply; ``builder`` names the
function that builds one, imported on use. ``auto`` is a policy over these types, in
:func:`index.faiss_index.choose_index_type`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from index.errors import SleeveError


class IndexConfigError(SleeveError):
    """An index type that does not exist or cannot be built for this collection."""


@dataclasses.dataclass(frozen=True)
class IndexType:
    name: str
    builder: str
    """``"module:function"``: (N, d) float32 unit vectors -> (trained, filled FAISS index, search params)."""
    summary: str
    """One line for ``--help``."""
    rescore: bool = False
    """Scores are approximate (compressed codes): candidates are re-scored with the exact vectors."""

    def build_function(self) -> Callable[..., Any]:
        module, _, name = self.builder.partition(":")
        return getattr(importlib.import_module(module), name)


_TYPES: dict[str, IndexType] = {}


def register_index_type(index_type: IndexType) -> None:
    if index_type.name in _TYPES or index_type.name == "auto":
        raise ValueError(f"index type {index_type.name!r} is already registered")
    _TYPES[index_type.name] = index_type


def list_index_types() -> list[str]:
    return list(_TYPES)


def get_index_type(name: str) -> IndexType:
    try:
        return _TYPES[name]
    except KeyError:
        raise IndexConfigError(f"unknown index type {name!r}; choose one of {', '.join(_TYPES)}") from None


register_index_type(IndexType("flat", "index.faiss_index:build_flat", "exact inner product (cosine)"))
register_index_type(IndexType("hnsw", "index.faiss_index:build_hnsw", "HNSW graph: sub-millisecond at 1M covers"))
register_index_type(IndexType(
    "ivfpq", "index.faiss_index:build_ivfpq", "IVF-PQ codes, ~80 bytes a cover, re-scored exactly", rescore=True
))
