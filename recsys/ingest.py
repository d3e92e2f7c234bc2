"""Find the covers of a collection (a folder tree or a CSV manifest) and fingerprint their content.

The result is a plain table: one row per file with ``path`` (absolute), ``genre`` (may be missing) and any
metadata columns a manifest carries. Content hashes make identical files cost one embedding and let a
re-run recognise what it has already seen, whatever the file is called.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from index.errors import SleeveError
from recsys.images import IMAGE_SUFFIXES, UNSUPPORTED_SUFFIXES, special_file_kind, special_file_reason

log = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 20


class CollectionError(SleeveError):
    """The collection itself (not one file in it) cannot be read: missing folder, bad manifest."""


def read_collection(
    covers: str | Path | None, manifest: str | Path | None, genre_from_folder: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The covers of a folder or a manifest, and what was left out with why (columns path, reason)."""
    if (covers is None) == (manifest is None):
        raise CollectionError("give exactly one of a covers folder or a manifest CSV")
    table, skipped = _scan(covers, genre_from_folder) if covers is not None else _read_manifest(manifest)
    if table.empty and skipped.empty:
        raise CollectionError(f"{covers or manifest} lists no covers")
    return table, skipped


def scan_folder(root: str | Path, genre_from_folder: bool = True) -> pd.DataFrame:
    """List image files under ``root`` recursively; a file's parent folder name is its genre.

    Files directly in ``root`` get no genre. Hidden files and folders (".DS_Store", ".git") are ignored;
    files that cannot be covers are left out (:func:`read_collection` says which and why).
    """
    return _scan(root, genre_from_folder)[0]


def read_manifest(csv_path: str | Path) -> pd.DataFrame:
    """Read a manifest CSV: ``path`` is required (relative paths are relative to the CSV's folder),
    ``genre`` is optional, every other column is kept as metadata. Empty and repeated paths are left out."""
    return _read_manifest(csv_path)[0]


def printable_path(path: str) -> str:
    """``path`` as text that can be printed and stored: bytes that are not UTF-8 become ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _scan(root: str | Path, genre_from_folder: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise CollectionError(f"covers folder not found: {root}")
    rows, skipped = [], []
    ignored = 0

    def unreadable_folder(error: OSError) -> None:
        skipped.append((printable_path(str(error.filename)), f"folder unreadable: {error.strerror or error}"))

    for folder, subfolders, files in os.walk(root, onerror=unreadable_folder):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            suffix = path.suffix.lower()
            if suffix in UNSUPPORTED_SUFFIXES:
                reason = f"unsupported image format {suffix}; convert it to JPEG or PNG"
                skipped.append((printable_path(str(path)), reason))
                continue
            if suffix not in IMAGE_SUFFIXES:
                ignored += 1
                continue
            if printable_path(str(path)) != str(path):
                skipped.append((printable_path(str(path)), "file name is not valid UTF-8; rename the file"))
                continue
            genre = path.parent.name if genre_from_folder and path.parent != root else None
            rows.append((str(path), genre))
    if ignored:
        log.info("ignored %d files without an image suffix under %s", ignored, root)
    table = pd.DataFrame(rows, columns=["path", "genre"]).astype({"genre": "string"})
    return table, pd.DataFrame(skipped, columns=["path", "reason"])


def _read_manifest(csv_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    csv_path = Path(csv_path).expanduser().resolve()
    if csv_path.is_dir():
        raise CollectionError(f"manifest {csv_path} is a folder; give the CSV file, or the folder with --covers")
    if csv_path.exists() and special_file_kind(csv_path):
        raise CollectionError(f"manifest {csv_path} is a {special_file_kind(csv_path)}, not a CSV file")
    try:
        table = pd.read_csv(csv_path, dtype="string", keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        raise CollectionError(f"manifest not found: {csv_path}") from None
    except PermissionError:
        raise CollectionError(f"manifest {csv_path} cannot be read: permission denied") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CollectionError(f"manifest {csv_path} is not a readable CSV: {error}") from None
    if "path" not in table.columns:
        raise CollectionError(f"manifest {csv_path} has no 'path' column (columns: {list(table.columns)})")
    line = pd.Series(range(2, len(table) + 2))  # line numbers in the CSV, after the header
    empty = table["path"].isna() | (table["path"].str.strip() == "")
    skipped = [("", f"line {n} of {csv_path.name}: empty path cell") for n in line[empty]]
    table, line = table[~empty].reset_index(drop=True), line[~empty].reset_index(drop=True)
    base = csv_path.parent
    # One file, one spelling: "a.jpg", "./a.jpg", "x/../a.jpg" and "/abs//a.jpg" are the repeats reported below.
    table["path"] = [str((base / p).resolve()) if not os.path.isabs(p) else os.path.normpath(p) for p in table["path"]]
    repeated = table["path"].duplicated()
    skipped += [
        (path, f"listed again on line {n} of {csv_path.name} (the first listing is kept)")
        for path, n in zip(table["path"][repeated], line[repeated])
    ]
    table = table[~repeated].reset_index(drop=True)
    if "genre" not in table.columns:
        table["genre"] = pd.array([None] * len(table), dtype="string")
    return table, pd.DataFrame(skipped, columns=["path", "reason"])


def bytes_hash(data: bytes) -> str:
    """The content hash of a file's bytes already read: the same value as :func:`content_hash` of the file."""
    return hashlib.sha256(data).hexdigest()


def content_hash(path: str | Path) -> str:
    """SHA-256 of the file's bytes: the identity of a cover for caching and de-duplication."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


KnownFile = tuple[int, int, str]
"""What an earlier build saw of a file: size, mtime_ns, content hash."""
FileRow = tuple[str, int, int, str | None, str | None]
"""One fingerprinted file: path, size, mtime_ns, content hash (None when unreadable), reason (None when read)."""


def known_files(known: pd.DataFrame | None) -> dict[str, KnownFile]:
    """``known`` (columns path, size, mtime_ns, content_hash) by path, as :func:`fingerprint_file` reuses it."""
    if known is None or not len(known):
        return {}
    return {
        row.path: (row.size, row.mtime_ns, row.content_hash)
        for row in known[["path", "size", "mtime_ns", "content_hash"]].itertuples(index=False)
    }


def fingerprint_file(path: str, old: KnownFile | None) -> FileRow:
    """Stat and hash one file, reusing ``old``'s hash while size and mtime are unchanged; the one per-file rule
    of both the local and the distributed fingerprint, so that they report the same hashes and reasons."""
    try:
        found = os.stat(path)  # follows links; never opens, so a FIFO or device cannot hang the run
        if not stat.S_ISREG(found.st_mode):
            return path, -1, -1, None, special_file_reason(path) or "not a regular file"
        if old is not None and old[0] == found.st_size and old[1] == found.st_mtime_ns:
            return path, found.st_size, found.st_mtime_ns, old[2], None
        return path, found.st_size, found.st_mtime_ns, content_hash(path), None
    except FileNotFoundError:
        return path, -1, -1, None, "file not found"
    except IsADirectoryError:
        return path, -1, -1, None, "is a directory"
    except PermissionError:
        return path, -1, -1, None, "permission denied"
    except OSError as error:
        return path, -1, -1, None, f"unreadable: {error.strerror or error}"
    except ValueError as error:  # e.g. a NUL byte in a manifest's path cell
        return path, -1, -1, None, f"not a usable path: {error}"


def fingerprint_rows(paths: list[str], olds: list[KnownFile | None], workers: int = 4) -> list[FileRow]:
    """:func:`fingerprint_file` of each path with its known row, on ``workers`` threads (reading overlaps), in order."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        return list(pool.map(fingerprint_file, paths, olds))
    finally:  # on Ctrl-C, do not wait for thousands of queued files
        pool.shutdown(wait=False, cancel_futures=True)


def fingerprint_frames(rows: list[FileRow]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(found, unreadable)`` of fingerprinted rows: found has path, size, mtime_ns, content_hash;
    unreadable has path, reason."""
    table = pd.DataFrame(rows, columns=["path", "size", "mtime_ns", "content_hash", "reason"])
    failed = table["reason"].notna()
    found = table.loc[~failed, ["path", "size", "mtime_ns", "content_hash"]].reset_index(drop=True)
    unreadable = table.loc[failed, ["path", "reason"]].reset_index(drop=True)
    return found.astype({"size": "int64", "mtime_ns": "int64"}), unreadable


def fingerprint(
    paths: list[str], known: pd.DataFrame | None = None, workers: int = 4
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hash files, reusing ``known`` hashes (columns path, size, mtime_ns, content_hash) when the file's
    size and modification time are unchanged. recsys.distribute.fingerprint_distributed does the same on workers.

    Returns ``(found, unreadable)``: found has path, size, mtime_ns, content_hash; unreadable has path, reason.
    """
    previous = known_files(known)
    return fingerprint_frames(fingerprint_rows(paths, [previous.get(path) for path in paths], workers))
