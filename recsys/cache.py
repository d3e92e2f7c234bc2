"""The embedding cache: one vector per (model, content hash), kept across runs and collections.

SQLite gives what a cache that must survive Ctrl-C needs: each batch is one transaction, so an
interrupted run keeps every finished batch and never a half-written one. A re-run, or a bigger collection
that shares covers with an old one, only computes what is new.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Self

import numpy as np
from filelock import FileLock

from index.errors import SleeveError

_QUERY_CHUNK = 900  # stays under SQLite's limit on bound parameters
_VECTOR_DTYPE = np.dtype(np.float32)

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$SLEEVE_CACHE_DIR``, else ``$XDG_CACHE_HOME/sleeve``, else ``~/.cache/sleeve``."""
    if os.environ.get("SLEEVE_CACHE_DIR"):
        return Path(os.environ["SLEEVE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "sleeve"


class CacheError(SleeveError):
    """A cache file sleeve cannot use; the message says what to do."""


class CacheNotWritableError(CacheError):
    """The cache folder refuses writes (permissions, a read-only disk)."""


def not_writable(folder: Path, why: object) -> CacheNotWritableError:
    return CacheNotWritableError(
        f"the cache folder {folder} is not writable ({why}); make it writable, or give another with --cache DIR "
        "or $SLEEVE_CACHE_DIR"
    )


@contextlib.contextmanager
def writing_in(folder: Path) -> Iterator[None]:
    """Turn the OS refusing a write in the cache ``folder`` into one line that says what to do."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise not_writable(folder, error.strerror) from None
        raise


_DAMAGED = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
_REFUSED = (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM)


def _primary_code(error: sqlite3.Error) -> int:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF


class SqliteCache:
    """One SQLite file in a cache folder whose table ``table`` keys results by (``key_column``, hash).

    The shared plumbing of the embedding cache and the cover-text cache (recsys.ocr): connection, WAL
    journal, context manager, and look-ups of many hashes in chunks.
    """

    table: str
    key_column: str

    def __init__(self, folder: str | Path, file_name: str, schema: str) -> None:
        self.folder = Path(folder)
        self.path = self.folder / file_name
        self._schema = schema
        with writing_in(self.folder):
            self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as error:
            self._db = self._recover(error)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"CREATE TABLE IF NOT EXISTS {self.table} ({self._schema}) WITHOUT ROWID")
            db.commit()
        except BaseException:
            db.close()
            raise
        return db

    def _recover(self, error: sqlite3.DatabaseError) -> sqlite3.Connection:
        """A cache that cannot be written is one line that says so; a damaged one (not a database, malformed) is
        only a cache: it is moved aside, with its journal, and an empty one takes its place."""
        code = _primary_code(error)
        if code in _REFUSED:
            writable = os.access(self.folder, os.W_OK) and (not self.path.exists() or os.access(self.path, os.W_OK))
            if not writable:
                raise not_writable(self.folder, error) from None
            raise CacheError(f"cannot open the cache file {self.path} ({error}); move it away, or give another "
                             "cache folder with --cache DIR or $SLEEVE_CACHE_DIR") from None
        if code not in _DAMAGED:
            raise error
        with writing_in(self.folder), FileLock(self.folder / f".{self.path.name}.lock"):
            try:
                return self._connect()  # another process set it aside while this one waited for the lock
            except sqlite3.DatabaseError as again:
                if _primary_code(again) not in _DAMAGED:
                    raise
            aside = self.path.with_name(f"{self.path.name}.damaged")
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
            log.warning(
                "%s is damaged (%s); moved it aside to %s and started an empty one: its entries are computed again",
                self.path, error, aside.name,
            )
            return self._connect()

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

    def read_into(self, model: str, hashes: Sequence[str], out: np.ndarray, rows_per_read: int = 8_192) -> None:
        """Fill ``out`` (one row per hash, e.g. a memory-mapped file) with the vectors of ``hashes`` in order,
        ``rows_per_read`` at a time, so that only that many are in memory at once; raises KeyError as :meth:`get`."""
        if len(out) != len(hashes):
            raise ValueError(f"{len(hashes)} hashes for {len(out)} rows")
        for start in range(0, len(hashes), rows_per_read):
            chunk = hashes[start : start + rows_per_read]
            out[start : start + len(chunk)] = self.get(model, chunk, out.shape[1])

    def _drop(self, model: str, unfit: list[str], dim: int) -> None:
        with self._db:
            self._db.executemany("DELETE FROM embeddings WHERE model = ? AND hash = ?", ((model, h) for h in unfit))
        if not self._warned_unfit:
            log.warning(
                "%d cached vector(s) in %s are not %d float32 values for %s (damaged or foreign), e.g. %s; "
                "computing them again", len(unfit), self.path, dim, model, unfit[0],
            )
            self._warned_unfit = True
