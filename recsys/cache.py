"""The embedding cache: one vector per (model, content hash), kept across runs and collections.

SQLite gives what a cache that must survive Ctrl-C needs: each batch is one transaction, so an
interrupted run keeps every finished batch and never a half-written one. A re-run, or a bigger collection
that shares covers with an old one, only computes what is new.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

import numpy as np

_QUERY_CHUNK = 900  # stays under SQLite's limit on bound parameters


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

    def missing(self, model: str, hashes: Iterable[str]) -> list[str]:
        """The hashes (unique, in first-seen order) that have no vector for ``model`` yet."""
        wanted = list(dict.fromkeys(hashes))
        present = {row[0] for row in self._select("hash", model, wanted)}
        return [h for h in wanted if h not in present]

    def put(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store one batch atomically."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (model, hash, vector) VALUES (?, ?, ?)",
                ((model, h, v.tobytes()) for h, v in zip(hashes, vectors)),
            )

    def get(self, model: str, hashes: Sequence[str], dim: int) -> np.ndarray:
        """Vectors for ``hashes`` in order, as an (N, dim) array; raises KeyError if any is missing."""
        unique = list(dict.fromkeys(hashes))
        found = {h: np.frombuffer(blob, dtype=np.float32) for h, blob in self._select("hash, vector", model, unique)}
        absent = [h for h in unique if h not in found]
        if absent:
            raise KeyError(f"{len(absent)} vectors missing from the cache for {model}, e.g. {absent[0]}")
        out = np.empty((len(hashes), dim), dtype=np.float32)
        for row, h in enumerate(hashes):
            out[row] = found[h]
        return out
