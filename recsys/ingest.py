"""Find the covers of a collection (a folder tree or a CSV manifest) and fingerprint their content.

The result is a plain table: one row per file with ``path`` (absolute), ``genre`` (may be missing) and any
metadata columns a manifest carries. Content hashes make identical files cost one embedding and let a
re-run recognise what it has already seen, whatever the file is called.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from recsys.errors import SleeveError
from recsys.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 20


class CollectionError(SleeveError):
    """The collection itself (not one file in it) cannot be read: missing folder, bad manifest."""


def scan_folder(root: str | Path, genre_from_folder: bool = True) -> pd.DataFrame:
    """List image files under ``root`` recursively; a file's parent folder name is its genre.

    Files directly in ``root`` get no genre. Hidden files and folders (".DS_Store", ".git") are ignored.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise CollectionError(f"covers folder not found: {root}")
    rows = []
    ignored = 0
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                ignored += 1
                continue
            genre = path.parent.name if genre_from_folder and path.parent != root else None
            rows.append((str(path), genre))
    if ignored:
        log.info("ignored %d files without an image suffix under %s", ignored, root)
    return pd.DataFrame(rows, columns=["path", "genre"]).astype({"genre": "string"})


def read_manifest(csv_path: str | Path) -> pd.DataFrame:
    """Read a manifest CSV: ``path`` is required (relative paths are relative to the CSV's folder),
    ``genre`` is optional, every other column is kept as metadata."""
    csv_path = Path(csv_path).expanduser().resolve()
    try:
        table = pd.read_csv(csv_path, dtype="string", keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise CollectionError(f"manifest not found: {csv_path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CollectionError(f"manifest {csv_path} is not a readable CSV: {error}") from None
    if "path" not in table.columns:
        raise CollectionError(f"manifest {csv_path} has no 'path' column (columns: {list(table.columns)})")
    table = table.dropna(subset=["path"]).reset_index(drop=True)
    base = csv_path.parent
    table["path"] = [str((base / p).resolve()) if not os.path.isabs(p) else p for p in table["path"]]
    if "genre" not in table.columns:
        table["genre"] = pd.array([None] * len(table), dtype="string")
    return table


def content_hash(path: str | Path) -> str:
    """SHA-256 of the file's bytes: the identity of a cover for caching and de-duplication."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(
    paths: list[str], known: pd.DataFrame | None = None, workers: int = 4
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hash files, reusing ``known`` hashes (columns path, size, mtime_ns, content_hash) when the file's
    size and modification time are unchanged.

    Returns ``(found, unreadable)``: found has path, size, mtime_ns, content_hash; unreadable has path, reason.
    """
    previous = {}
    if known is not None and len(known):
        previous = {
            row.path: (row.size, row.mtime_ns, row.content_hash)
            for row in known[["path", "size", "mtime_ns", "content_hash"]].itertuples(index=False)
        }

    def one(path: str) -> tuple[str, int, int, str | None, str | None]:
        try:
            stat = os.stat(path)
            old = previous.get(path)
            if old is not None and old[0] == stat.st_size and old[1] == stat.st_mtime_ns:
                return path, stat.st_size, stat.st_mtime_ns, old[2], None
            return path, stat.st_size, stat.st_mtime_ns, content_hash(path), None
        except FileNotFoundError:
            return path, -1, -1, None, "file not found"
        except IsADirectoryError:
            return path, -1, -1, None, "is a directory"
        except PermissionError:
            return path, -1, -1, None, "permission denied"
        except OSError as error:
            return path, -1, -1, None, f"unreadable: {error.strerror or error}"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, paths))
    table = pd.DataFrame(results, columns=["path", "size", "mtime_ns", "content_hash", "reason"])
    failed = table["reason"].notna()
    found = table.loc[~failed, ["path", "size", "mtime_ns", "content_hash"]].reset_index(drop=True)
    unreadable = table.loc[failed, ["path", "reason"]].reset_index(drop=True)
    return found.astype({"size": "int64", "mtime_ns": "int64"}), unreadable
