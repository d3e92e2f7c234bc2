"""Named choices, one shape for all: encoder families, runtimes, index types, OCR readers, classifiers.

A :class:`Registry` maps names to light :class:`Entry` objects (a name, a one-line summary, and where the heavy
part lives, imported on use), so the command line lists its choices and help without importing torch, FAISS or
RapidOCR. ``auto`` is never an entry: it is the kind's own rule, named in one line for ``--help`` and applied
by :meth:`Registry.resolve`. This module also registers the index types ``build-index --index-type`` offers.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from index.errors import SleeveError


def load(target: str) -> Any:
    """The object that ``"module:name"`` names, imported now."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One named choice: ``summary`` is its line in ``--help``; ``loader`` (``"module:name"``) is what it stands
    for, imported by :meth:`load` only when it is used."""

    name: str
    loader: str
    summary: str

    def load(self) -> Any:
        return load(self.loader)


E = TypeVar("E", bound=Entry)


class Registry(Mapping[str, E], Generic[E]):
    """The entries of one kind by name, in registration order (which ``auto`` rules may rely on)."""

    def __init__(
        self, kind: str, error: type[Exception], auto_rule: str | None = None, auto: str | None = None
    ) -> None:
        """``kind`` names an entry in messages; ``error`` is raised for an unknown name; ``auto_rule`` says in
        one line what ``auto`` picks (None: the kind has no ``auto``); ``auto`` is ``"module:function"`` that
        picks it, given the context that :meth:`resolve` receives."""
        self.kind = kind
        self.error = error
        self.auto_rule = auto_rule
        self.auto = auto
        self._entries: dict[str, E] = {}

    def register(self, entry: E) -> E:
        if entry.name in self._entries or entry.name == "auto":
            raise ValueError(f"{self.kind} {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def __getitem__(self, name: str) -> E:
        try:
            return self._entries[name]
        except KeyError:
            raise self._unknown(name) from None

    def _unknown(self, name: str) -> Exception:
        return self.error(f"unknown {self.kind} {name!r}; choose one of {', '.join(self.choices())}")

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def choices(self) -> list[str]:
        """What the command line offers: ``auto`` first where the kind has a rule, then every entry."""
        return (["auto"] if self.auto_rule is not None else []) + self.names()

    def help(self) -> str:
        """The choices for ``--help``: the ``auto`` rule, then each entry's summary."""
        rule = [f"auto: {self.auto_rule}"] if self.auto_rule is not None else []
        return "; ".join(rule + [f"{entry.name}: {entry.summary}" for entry in self._entries.values()]) + "."

    def check(self, name: str) -> None:
        """Raise the kind's error unless ``name`` is one of :meth:`choices`."""
        if name not in self.choices():
            raise self._unknown(name)

    def resolve(self, name: str, **context: Any) -> str:
        """``name`` itself, or for ``auto`` the name the kind's rule picks from ``context``."""
        if name == "auto" and self.auto is not None:
            return str(load(self.auto)(**context))
        return self[name].name


class IndexConfigError(SleeveError):
    """An index type that does not exist or cannot be built for this collection."""


@dataclasses.dataclass(frozen=True)
class IndexType(Entry):
    """``loader``: the builder, ``(N, d) float32 unit vectors -> (trained, filled FAISS index, search params)``."""

    rescore: bool = False
    """Scores are approximate (compressed codes): candidates are re-scored with the exact vectors."""


INDEX_TYPES: Registry[IndexType] = Registry(
    "index type", IndexConfigError,
    auto_rule="exact (flat) up to 50k covers, HNSW above (IVF-PQ when HNSW would not fit in memory)",
    auto="index.faiss_index:auto_index_type",
)
INDEX_TYPES.register(IndexType("flat", "index.faiss_index:build_flat", "exact inner product (cosine)"))
INDEX_TYPES.register(IndexType("hnsw", "index.faiss_index:build_hnsw", "HNSW graph: sub-millisecond at 1M covers"))
INDEX_TYPES.register(IndexType(
    "ivfpq", "index.faiss_index:build_ivfpq", "IVF-PQ codes, ~80 bytes a cover, re-scored exactly", rescore=True
))
