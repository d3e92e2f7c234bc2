"""The index folder on disk: FAISS file, metadata table, raw embeddings and ``index.json``.

``index.json`` is the commit point. Data files carry a generation id in their names and are written
first; only when all of them are complete is ``index.json`` atomically replaced to point at them, and then
the previous generation is deleted. A failure at any step leaves the previous index whole and readable.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd

from index.faiss_index import apply_search_params
from recsys import __version__
from recsys.atomic import atomic_path, write_json
from recsys.errors import SleeveError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_JSON = "index.json"
SKIPPED_CSV = "skipped.csv"
_DATA_PATTERNS = ("vectors-*.faiss", "metadata-*.parquet", "embeddings-*.npy", "text-*.parquet")


class IndexStoreError(SleeveError):
    """Base of index problems a user can act on; the message says how."""


class IndexNotFoundError(IndexStoreError):
    pass


class IndexFormatError(IndexStoreError):
    pass


class ModelMismatchError(IndexStoreError):
    pass


@dataclasses.dataclass(frozen=True)
class IndexInfo:
    """The contents of ``index.json``."""

    format_version: int
    model: dict[str, Any]
    model_key: str
    dim: int
    count: int
    index_type: str
    search_params: dict[str, Any]
    created: str
    sleeve_version: str
    files: dict[str, str]


@dataclasses.dataclass
class CoverIndex:
    """A loaded or in-memory index. ``embeddings`` of a loaded one are memory-mapped and its FAISS index loads
    on first use; an in-memory one (``folder`` None, see index.memory) is written with :meth:`save`."""

    folder: Path | None
    info: IndexInfo
    metadata: pd.DataFrame
    embeddings: np.ndarray
    built: faiss.Index | None = dataclasses.field(default=None, repr=False)

    @property
    def faiss_index(self) -> faiss.Index:
        if self.built is None:
            assert self.folder is not None, "an in-memory index is created with its FAISS index"
            self.built = faiss.read_index(str(self.folder / self.info.files["faiss"]))
            apply_search_params(self.built, self.info.search_params)
        return self.built

    def save(self, folder: str | Path) -> CoverIndex:
        """Write this index as an index folder (atomically, as build-index does) and return it loaded from there."""
        info = self.info
        write_index(
            folder, self.faiss_index, self.metadata, np.asarray(self.embeddings), info.model, info.model_key,
            info.index_type, info.search_params,
        )
        return load_index(folder)


def index_exists(folder: str | Path) -> bool:
    return (Path(folder) / INDEX_JSON).is_file()


def write_index(
    folder: str | Path,
    faiss_index: faiss.Index,
    metadata: pd.DataFrame,
    embeddings: np.ndarray,
    model: dict[str, Any],
    model_key: str,
    index_type: str,
    search_params: dict[str, Any],
    texts: pd.DataFrame | None = None,
) -> IndexInfo:
    """Write a new generation of the index in ``folder`` and switch ``index.json`` to it.

    ``texts`` (columns content_hash, text, reader: the printed text of each cover, see recsys.textstore)
    is stored beside the vectors as ``files["text"]`` when given.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if len(metadata) != len(embeddings) or faiss_index.ntotal != len(embeddings):
        raise ValueError("metadata, embeddings and FAISS index must have one row per cover")
    generation = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    files = {
        "faiss": f"vectors-{generation}.faiss",
        "metadata": f"metadata-{generation}.parquet",
        "embeddings": f"embeddings-{generation}.npy",
    }
    if texts is not None:
        files["text"] = f"text-{generation}.parquet"
    try:
        with atomic_path(folder / files["faiss"]) as temporary:
            faiss.write_index(faiss_index, str(temporary))
        with atomic_path(folder / files["metadata"]) as temporary:
            metadata.to_parquet(temporary, index=False)
        with atomic_path(folder / files["embeddings"]) as temporary, open(temporary, "wb") as handle:
            np.save(handle, np.ascontiguousarray(embeddings, dtype=np.float32))
        if texts is not None:
            with atomic_path(folder / files["text"]) as temporary:
                texts.to_parquet(temporary, index=False)
        info = IndexInfo(
            format_version=FORMAT_VERSION,
            model=model,
            model_key=model_key,
            dim=int(embeddings.shape[1]),
            count=len(metadata),
            index_type=index_type,
            search_params=search_params,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            sleeve_version=__version__,
            files=files,
        )
        write_json(folder / INDEX_JSON, dataclasses.asdict(info))
    except BaseException:
        _remove(folder, files.values())
        raise
    _remove_other_generations(folder, keep=set(files.values()))
    return info


def write_skipped(folder: str | Path, skipped: pd.DataFrame) -> Path:
    """The files that could not be indexed and why, for the user to read or fix."""
    target = Path(folder) / SKIPPED_CSV
    with atomic_path(target) as temporary:
        skipped.to_csv(temporary, index=False)
    return target


def read_info(folder: str | Path) -> IndexInfo:
    """Read and check ``index.json`` without loading any data."""
    folder = Path(folder)
    path = folder / INDEX_JSON
    if not path.is_file():
        raise IndexNotFoundError(
            f"no sleeve index in {folder} (missing {INDEX_JSON}); build one with: sleeve build-index --index {folder}"
        )
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IndexFormatError(f"{path} is not valid JSON ({error}); rebuild the index") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise IndexFormatError(
            f"{folder} holds index format {version!r}; this sleeve {__version__} reads format {FORMAT_VERSION}. "
            "Rebuild it with sleeve build-index."
        )
    try:
        return IndexInfo(**{field.name: raw[field.name] for field in dataclasses.fields(IndexInfo)})
    except KeyError as error:
        raise IndexFormatError(f"{path} lacks the field {error}; rebuild the index") from None


def load_index(folder: str | Path, expected_model_key: str | None = None) -> CoverIndex:
    """Open an index; if ``expected_model_key`` is given, refuse an index made by any other model."""
    folder = Path(folder)
    info = read_info(folder)
    if expected_model_key is not None and expected_model_key != info.model_key:
        raise ModelMismatchError(
            f"{folder} was built with model {info.model_key}, not {expected_model_key}; "
            "vectors of different models cannot be compared. Use that model, or another --index folder."
        )
    missing = [name for name in info.files.values() if not (folder / name).is_file()]
    if missing:
        raise IndexFormatError(f"index in {folder} is incomplete (missing {', '.join(missing)}); rebuild it")
    metadata = pd.read_parquet(folder / info.files["metadata"])
    embeddings = np.load(folder / info.files["embeddings"], mmap_mode="r")
    if len(metadata) != info.count or embeddings.shape != (info.count, info.dim):
        raise IndexFormatError(f"index in {folder} is inconsistent (row counts differ); rebuild it")
    return CoverIndex(folder=folder, info=info, metadata=metadata, embeddings=embeddings)


def load_texts(index: CoverIndex) -> pd.DataFrame | None:
    """The stored cover texts (content_hash, text, reader), or None for an index built without them."""
    name = index.info.files.get("text")
    return pd.read_parquet(index.folder / name) if name else None


def _remove(folder: Path, names: Any) -> None:
    for name in names:
        (folder / name).unlink(missing_ok=True)


def _remove_other_generations(folder: Path, keep: set[str]) -> None:
    stale = [p.name for pattern in _DATA_PATTERNS for p in folder.glob(pattern) if p.name not in keep]
    if stale:
        log.debug("removing previous index generation: %s", stale)
        _remove(folder, stale)
