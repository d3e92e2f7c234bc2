"""The embedding cache: one vector per (model, content hash), kept across runs and collections.

SQLite gives what a cache that must survive Ctrl-C needs: each batch is one transaction, so an
interrupted run keeps every finished batch and never a half-written one. A re-run, or a bigger collection
that shares covers with an old one, only computes what is new.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

import numpy as np

_QUERY_CHUNK = 900  # stays under SQLite's limit on bound parameters
_VECTOR_DTYPE = np.dtype(np.float32)

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$SLEEVE_CACHE_DIR``, else ``$XDG_CACHE_HOME/sleeve``, else ``~/.cache/sleeve``."""
    if os.environ.get("SLEEVE_CACHE_DIR"):
        return Path(os.environ["SLEEVE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "sleeve"


class SqliteCache:
    """One SQLite file in a cache folder whose table ``table`` keys results by (``key_column``, hash).

    The shared plumbing of the embedding cache and the cover-text cache (recsys.ocr): connection, WAL
    journal, context manager, and look-ups of many hashes in chunks.
    """

    table: str
    key_column: str

    def __init__(self, folder: str | Path, file_name: str, schema: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / file_name
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({schema}) WITHOUT ROWID")
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(self, columns: str, key: str, hashes: list[str]) -> Iterable[tuple]:
        for start in range(0, len(hashes), _QUERY_CHUNK):
            chunk = hashes[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from self._db.execute(
                f"SELECT {columns} FROM {self.table} WHERE {self.key_column} = ? AND hash IN ({marks})",
                (key, *chunk),
            )


class EmbeddingCache(SqliteCache):
    """Vectors keyed by (model key, content hash) in ``<folder>/embeddings.sqlite``."""

    table, key_column = "embeddings", "model"

    def __init__(self, folder: str | Path) -> None:
        schema = "model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, hash)"
        super().__init__(folder, "embeddings.sqlite", schema)
        self._warned_unfit = False

    def missing(self, model: str, hashes: Iterable[str], dim: int) -> list[str]:
        """The hashes (unique, in first-seen order) that have no usable ``dim``-long vector for ``model`` yet.

        A stored vector that does not fit (another length, not a float32 blob) is deleted, so that it is computed
        again, with one warning per cache opened: a damaged or foreign entry must never be returned.
        """
        wanted = list(dict.fromkeys(hashes))
        fits = f"typeof(vector) = 'blob' AND length(vector) = {int(dim) * _VECTOR_DTYPE.itemsize}"
        stored = dict(self._select(f"hash, {fits}", model, wanted))
        unfit = [h for h, fitting in stored.items() if not fitting]
        if unfit:
            self._drop(model, unfit, dim)
        return [h for h in wanted if not stored.get(h)]

    def put(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store one batch atomically."""
        vectors = np.ascontiguousarray(vectors, dtype=_VECTOR_DTYPE)
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (model, hash, vector) VALUES (?, ?, ?)",
                ((model, h, v.tobytes()) for h, v in zip(hashes, vectors)),
            )

    def get(self, model: str, hashes: Sequence[str], dim: int) -> np.ndarray:
        """Vectors for ``hashes`` in order, as an (N, dim) array; raises KeyError if any is missing or does not fit
        (call :meth:`missing` first to have those computed again)."""
        unique = list(dict.fromkeys(hashes))
        size = dim * _VECTOR_DTYPE.itemsize
        found = {
            h: np.frombuffer(blob, dtype=_VECTOR_DTYPE)
            for h, blob in self._select("hash, vector", model, unique)
            if isinstance(blob, bytes) and len(blob) == size
        }
        absent = [h for h in unique if h not in found]
        if absent:
            raise KeyError(f"{len(absent)} vectors missing from the cache for {model}, e.g. {absent[0]}")
        out = np.empty((len(hashes), dim), dtype=_VECTOR_DTYPE)
        for row, h in enumerate(hashes):
            out[row] = found[h]
        return out

    def _drop(self, model: str, unfit: list[str], dim: int) -> None:
        with self._db:
            self._db.executemany("DELETE FROM embeddings WHERE model = ? AND hash = ?", ((model, h) for h in unfit))
        if not self._warned_unfit:
            log.warning(
                "%d cached vector(s) in %s are not %d float32 values for %s (damaged or foreign), e.g. %s; "
                "computing them again", len(unfit), self.path, dim, model, unfit[0],
            )
            self._warned_unfit = True
