"""The index folder on disk: FAISS file, metadata table, raw embeddings and ``index.json``.

``index.json`` is the commit point. Data files carry a generation id in their names and are written
first; only when all of them are complete is ``index.json`` atomically replaced to point at them, and then
the previous generation is deleted. A failure at any step leaves the previous index whole and readable.

One writer at a time: ``build-index`` holds a lock file in the folder (``filelock``), and a second writer
fails at once with a clear message instead of racing the first. A reader opens every file of the generation
that ``index.json`` names while loading; an open file outlives its deletion, so a rebuild that switches
generations under a reader cannot break it (if the switch happens between reading ``index.json`` and opening
the files, the reader reads ``index.json`` again). Every file is checked against ``index.json`` when loaded.

Manifest columns are stored with the prefix ``user:`` so that no column name of a user can collide with
sleeve's own fields (``id``, ``path``, ``content_hash``...); :func:`shown_name` gives their display name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import secrets
import shlex
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import faiss
import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from index.atomic import atomic_path, write_json
from index.errors import SleeveError
from index.faiss_index import SearchParamsError, apply_search_params
from index.lookstats import LookMoments, LookStatsError, read_look_stats, write_look_stats
from index.mapped_rows import MappedRows
from index.rowtext import RowTexts, RowTextsError, read_row_texts, texts_of_rows, write_row_texts
from index.shown import ShownRowsError, read_shown_rows, write_shown_rows
from index.table import ROW_GROUP_ROWS, TABLE_ERRORS, Table
from index.words import WordsFileError, read_words, write_words
from index.words_engine import WordsEngine, WordsEngineError, write_engine

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""2: manifest columns carry the ``user:`` prefix. Format 1 folders still load (their extra columns are the
manifest's)."""
INDEX_JSON = "index.json"
SKIPPED_CSV = "skipped.csv"
LOCK_FILE = ".sleeve-writer.lock"
USER_PREFIX = "user:"
SLEEVE_COLUMNS = ("id", "path", "content_hash", "size", "mtime_ns", "genre")
RESERVED_NAMES = frozenset({*SLEEVE_COLUMNS, "rank", "score", "match", "text", "metadata"})
"""Names a manifest column is never shown under, as result frames (and JSON) use them for sleeve's fields."""
_DATA_PATTERNS = (
    "vectors-*.faiss", "metadata-*.parquet", "embeddings-*.npy", "text-*.parquet", "neighbours-*.parquet",
    "words-*.npz", "words-*.tantivy", "rowtext-*.npz", "lookstats-*.npz", "shown-*.arrow",
)
_FILE_KINDS = ("faiss", "metadata", "embeddings")
_TABLE_KINDS = ("text", "neighbours")
_OPTIONAL_KINDS = (*_TABLE_KINDS, "words", "rowtext", "lookstats", "shown")
"""Files an index may lack: ``shown`` (index.shown) is written with every index, but one written before sleeve
stored it reads its shown rows from the metadata table."""
_ENGINE = "words_engine"
"""The kind of the words candidate engine: a folder (index.words_engine), written with the words file."""
NEIGHBOUR_COLUMNS = ("row", "neighbour", "weight")
_LOAD_ATTEMPTS = 3
_READ_ON_DEMAND = ("metadata", "text")
"""The tables whose files stay open after loading, decoded as far as a query asks (index.table)."""


class IndexStoreError(SleeveError):
    """Base of index problems a user can act on; the message says how."""


class IndexNotFoundError(IndexStoreError):
    pass


class IndexFormatError(IndexStoreError):
    pass


class IndexDamagedError(IndexFormatError):
    """An index folder of sleeve's that ``build-index --rebuild`` repairs; the message names that command,
    with the collection when the caller knows it (:meth:`with_source`)."""

    def __init__(self, folder: str | Path, problem: str, source: str | None = None) -> None:
        super().__init__(f"{problem}; {repair_hint(folder, source)}")
        self.folder, self.problem, self.source = Path(folder), problem, source

    def with_source(self, source: str) -> IndexDamagedError:
        """The same error, its command naming the collection (``--covers DIR`` or ``--manifest CSV``)."""
        return IndexDamagedError(self.folder, self.problem, source)


class ModelMismatchError(IndexStoreError):
    pass


class IndexBusyError(IndexStoreError):
    """Another process is writing this index folder."""


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

    @classmethod
    def new(
        cls, model: dict[str, Any], model_key: str, dim: int, count: int, index_type: str,
        search_params: dict[str, Any], files: dict[str, str],
    ) -> IndexInfo:
        """The description of an index made now, by this sleeve, in the current format."""
        return cls(
            FORMAT_VERSION, model, model_key, dim, count, index_type, search_params,
            time.strftime("%Y-%m-%dT%H:%M:%S%z"), sleeve_version(), files,
        )


@dataclasses.dataclass
class CoverIndex:
    """A loaded or in-memory index. Every file of a loaded one is opened and checked at load time, but a query
    process pays only for what it reads: ``embeddings``, the words model and the row texts are memory-mapped, as
    are a flat or HNSW index's vectors where the system allows (:func:`_read_faiss`), and the metadata and text
    tables are decoded as far as asked (index.table). An in-memory one (``folder`` None, see
    recsys.memory_index) is written with :meth:`save`."""

    folder: Path | None
    info: IndexInfo
    table: Table
    """The metadata (:attr:`metadata`), read whole, by column or by rows."""
    embeddings: np.ndarray
    faiss_index: faiss.Index
    text_table: Table | None = None
    """The printed text of each cover (:attr:`texts`), when built with --read-text."""
    neighbours: pd.DataFrame | None = None
    """The look-and-words neighbour graph of the rows (row, neighbour, weight; recsys.textstore), with text."""
    words: dict[str, np.ndarray] | None = None
    """The fitted words model's arrays (index.words.WORDS_ARRAYS, memory-mapped; recsys.textsearch), with text."""
    words_engine: WordsEngine | None = None
    """The words model's candidate engine (index.words_engine), with the words model of an index that has one."""
    row_texts: RowTexts | None = None
    """Each row's printed text, decoded per row (index.rowtext); None for an index without text or written
    before sleeve stored it (its :attr:`texts` then give them)."""
    look_moments: LookMoments | None = None
    """The embeddings' mean vector and covariance (index.lookstats, memory-mapped), stored with the words model
    for ``--by both``; None for an index without text or written before sleeve stored them."""

    @property
    def metadata(self) -> pd.DataFrame:
        """One row per cover: sleeve's columns (SLEEVE_COLUMNS) and the manifest's (``user:`` prefixed)."""
        return self.table.frame()

    @property
    def texts(self) -> pd.DataFrame | None:
        """The printed text of each distinct cover (content_hash, text, reader), when built with --read-text."""
        return None if self.text_table is None else self.text_table.frame()

    @classmethod
    def in_memory(
        cls, info: IndexInfo, metadata: pd.DataFrame, embeddings: np.ndarray, faiss_index: faiss.Index
    ) -> CoverIndex:
        """An index held in memory (recsys.memory_index), without text."""
        return cls(None, info, Table(metadata), embeddings, faiss_index)

    def save(self, folder: str | Path) -> CoverIndex:
        """Write this index as an index folder (atomically and under the writer lock, as build-index does) and
        return it loaded from there."""
        with writer_lock(folder):
            write_index(
                folder, self.faiss_index, self.metadata, np.asarray(self.embeddings), self.info.model,
                self.info.model_key, self.info.index_type, self.info.search_params, texts=self.texts,
                neighbours=self.neighbours, words=self.words, look=self.look_moments,
            )
        return load_index(folder)


def sleeve_version() -> str:
    """The version of the installed sleeve, recorded in every ``index.json`` it writes; read from the
    package metadata, which the index store can reach without importing the layers above it (imported here:
    a query never pays for it)."""
    from importlib.metadata import version

    return version("sleeve")


def repair_hint(folder: str | Path, source: str | None = None) -> str:
    """The command that repairs ``folder``; ``source`` is its collection's option, when known."""
    collection = source or "--covers FOLDER (or --manifest CSV)"
    return f"rebuild it in place with: sleeve build-index --rebuild --index {shlex.quote(str(folder))} {collection}"


def shown_name(stored: str) -> str:
    """The name a stored manifest column is shown under: its own, unless sleeve uses that name itself
    (or it starts with the prefix), in which case it keeps the ``user:`` prefix."""
    name = stored.removeprefix(USER_PREFIX)
    return stored if name in RESERVED_NAMES or name.startswith(USER_PREFIX) else name


def user_columns(metadata: pd.DataFrame | Table) -> list[str]:
    """The stored names of the manifest's own columns, in manifest order (of a frame or of a table not yet
    decoded)."""
    return [column for column in metadata.columns if column.startswith(USER_PREFIX)]


SHOWN_FIELDS = ("genre", "path")
"""Sleeve's own fields that every result shows beside the manifest's columns."""


def shown_columns(metadata: pd.DataFrame) -> dict[str, str]:
    """Shown name -> stored name of the columns a result shows: sleeve's genre and path, then the manifest's
    columns under :func:`shown_name`. Filters (``--where``, the app) take exactly these names, so that a name
    means the same column in a result and in a filter."""
    return {**{field: field for field in SHOWN_FIELDS}, **{shown_name(c): c for c in user_columns(metadata)}}


_F = TypeVar("_F", bound=Callable[..., Any])


def one_writer(function: _F) -> _F:
    """Run ``function(index_dir, ...)`` holding the folder's writer lock, after clearing what an earlier
    interrupted writer left behind, and clearing what it leaves itself when it raises (a build's staged
    embeddings are as large as the index). A second writer fails at once with :class:`IndexBusyError`."""

    @functools.wraps(function)
    def locked(index_dir: str | Path, *args: Any, **kwargs: Any) -> Any:
        with writer_lock(index_dir):
            remove_leftovers(index_dir)
            try:
                return function(index_dir, *args, **kwargs)
            except BaseException:
                with contextlib.suppress(OSError):  # the error that stopped the writer is the one to report
                    remove_leftovers(index_dir)
                raise

    return locked  # type: ignore[return-value]


@contextlib.contextmanager
def writer_lock(folder: str | Path) -> Iterator[None]:
    """Hold the folder's writer lock (an OS file lock: a killed writer releases it with its life)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise IndexStoreError(f"index folder {folder} is a file; give another --index") from None
    lock = FileLock(folder / LOCK_FILE, blocking=False)
    try:
        lock.acquire()
    except Timeout:
        raise IndexBusyError(
            f"another sleeve process is writing the index in {folder}; wait until it has finished, then run again"
        ) from None
    try:
        yield
    finally:
        lock.release()


def remove_leftovers(folder: str | Path) -> None:
    """Delete temporary files and unreferenced data files of an interrupted writer (only under the lock).
    The data files beside a damaged ``index.json`` are kept, for ``--rebuild`` to set aside (:func:`set_aside`)."""
    folder = Path(folder)
    keep: set[str] | None = set()
    try:
        keep = set(read_info(folder).files.values())
    except IndexNotFoundError:
        pass  # no index.json: every data file is a leftover
    except IndexStoreError:
        keep = None
    temporary = [p.name for p in folder.glob(".*.tmp") if p.is_file() or p.is_dir()]
    stale = [] if keep is None else [p.name for p in _data_files(folder) if p.name not in keep]
    if temporary or stale:
        log.info("removing %d file(s) left by an interrupted run in %s", len(temporary) + len(stale), folder)
        _remove(folder, temporary + stale)


def set_aside(folder: str | Path, why: str) -> Path | None:
    """Move ``index.json`` and every data file of ``folder`` into a new ``damaged-<time>/`` folder beside
    them (only under the writer lock), with ``why`` in its REASON.txt, so that a rebuild replaces an index it
    cannot reuse without destroying it. None when there was nothing to move."""
    folder = Path(folder)
    names = [p.name for p in _data_files(folder)] + ([INDEX_JSON] if (folder / INDEX_JSON).exists() else [])
    if not names:
        return None
    target = folder / f"damaged-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"
    target.mkdir()
    (target / "REASON.txt").write_text(why + "\n")
    for name in names:  # index.json last: a run killed in between leaves it naming missing files, still damaged
        os.replace(folder / name, target / name)
    log.warning("moved the index files sleeve could not reuse to %s (%s)", target, why)
    return target


@dataclasses.dataclass(frozen=True)
class StagedEmbeddings:
    """The next generation's embeddings, written in place into a temporary ``.npy`` in the index folder (see
    :func:`stage_embeddings`); :func:`write_index` renames the file into the generation instead of copying
    an array, so that a build never holds every vector in memory."""

    path: Path
    rows: np.memmap
    """(count, dim) float32, memory-mapped for writing: fill it batch by batch before :func:`write_index`."""


def stage_embeddings(folder: str | Path, count: int, dim: int) -> StagedEmbeddings:
    """A new (``count``, ``dim``) float32 ``.npy`` file in ``folder`` to fill in place (only under the writer
    lock). Its temporary name is what :func:`remove_leftovers` removes, so a writer that dies leaves nothing."""
    path = Path(folder) / f".embeddings-{secrets.token_hex(3)}.npy.tmp"
    rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dim))
    try:  # a mapped page written on a full disk kills the process (SIGBUS): claim the blocks now, as an OSError
        if hasattr(os, "posix_fallocate"):  # Linux; elsewhere a full disk shows when the pages are written
            with open(path, "r+b") as handle:
                os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
    except OSError:
        del rows
        path.unlink(missing_ok=True)
        raise
    return StagedEmbeddings(path, rows)


def _data_files(folder: Path) -> list[Path]:
    return [p for pattern in _DATA_PATTERNS for p in folder.glob(pattern)]


def write_index(
    folder: str | Path,
    faiss_index: faiss.Index,
    metadata: pd.DataFrame,
    embeddings: np.ndarray | StagedEmbeddings,
    model: dict[str, Any],
    model_key: str,
    index_type: str,
    search_params: dict[str, Any],
    texts: pd.DataFrame | None = None,
    neighbours: pd.DataFrame | None = None,
    words: dict[str, np.ndarray] | None = None,
    look: LookMoments | None = None,
) -> IndexInfo:
    """Write a new generation of the index in ``folder`` and switch ``index.json`` to it.

    ``texts`` (columns content_hash, text, reader: the printed text of each cover, see recsys.textstore)
    and ``neighbours`` (columns row, neighbour, weight: the rows' neighbour graph) are stored beside the
    vectors as ``files["text"]`` and ``files["neighbours"]`` when given, and ``words`` (the fitted words model's
    arrays, index.words) as ``files["words"]``, with its candidate engine (index.words_engine) as
    ``files["words_engine"]``, and ``look`` (the embeddings' mean vector and covariance, index.lookstats) as
    ``files["lookstats"]``. The columns every result shows are stored row-addressable as ``files["shown"]``
    (index.shown). Staged ``embeddings`` (:func:`stage_embeddings`) become the generation's file by
    a rename; an array is written out.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vectors = embeddings.rows if isinstance(embeddings, StagedEmbeddings) else embeddings
    if len(metadata) != len(vectors) or faiss_index.ntotal != len(vectors):
        raise ValueError("metadata, embeddings and FAISS index must have one row per cover")
    generation = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    files = {
        "faiss": f"vectors-{generation}.faiss",
        "metadata": f"metadata-{generation}.parquet",
        "embeddings": f"embeddings-{generation}.npy",
        "shown": f"shown-{generation}.arrow",
    }
    tables = {kind: table for kind, table in (("text", texts), ("neighbours", neighbours)) if table is not None}
    for kind in tables:
        files[kind] = f"{kind}-{generation}.parquet"
    if texts is not None:
        files["rowtext"] = f"rowtext-{generation}.npz"
    if words is not None:
        files["words"] = f"words-{generation}.npz"
        files[_ENGINE] = f"words-{generation}.tantivy"
    if look is not None:
        files["lookstats"] = f"lookstats-{generation}.npz"
    try:
        with atomic_path(folder / files["faiss"]) as temporary:
            _write_faiss(faiss_index, temporary)
        with atomic_path(folder / files["metadata"]) as temporary:
            metadata.to_parquet(temporary, index=False, row_group_size=ROW_GROUP_ROWS)
        with atomic_path(folder / files["shown"]) as temporary:
            write_shown_rows(temporary, folder / files["metadata"], [*SHOWN_FIELDS, *user_columns(metadata)])
        _write_embeddings(embeddings, folder / files["embeddings"])
        for kind, table in tables.items():
            with atomic_path(folder / files[kind]) as temporary:
                table.to_parquet(temporary, index=False, row_group_size=ROW_GROUP_ROWS)
        if texts is not None:
            with atomic_path(folder / files["rowtext"]) as temporary:
                write_row_texts(temporary, texts_of_rows(metadata["content_hash"], texts))
        if words is not None:
            with atomic_path(folder / files["words"]) as temporary:
                write_words(temporary, words)
            _write_engine(folder / files[_ENGINE], words)
        if look is not None:
            with atomic_path(folder / files["lookstats"]) as temporary:
                write_look_stats(temporary, look)
        info = IndexInfo.new(
            model, model_key, int(vectors.shape[1]), len(metadata), index_type, search_params, files
        )
        write_json(folder / INDEX_JSON, dataclasses.asdict(info))
    except BaseException:
        _remove(folder, files.values())
        raise
    _remove_other_generations(folder, keep=set(files.values()))
    return info


def _write_embeddings(embeddings: np.ndarray | StagedEmbeddings, target: Path) -> None:
    if isinstance(embeddings, StagedEmbeddings):
        embeddings.rows.flush()
        os.replace(embeddings.path, target)
        return
    with atomic_path(target) as temporary, open(temporary, "wb") as handle:
        np.save(handle, np.ascontiguousarray(embeddings, dtype=np.float32))


def _write_engine(target: Path, words: dict[str, np.ndarray]) -> None:
    """Write the words model's candidate engine into a temporary folder, then rename it onto ``target``."""
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(3)}.tmp")
    try:
        write_engine(temporary, words["terms"], words["covers_indices"], words["covers_indptr"])
        os.replace(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)


def _write_faiss(faiss_index: faiss.Index, path: Path) -> None:
    """Write through a Python file, so that a full disk is an OSError (ENOSPC) on the write or the close: FAISS's
    own writer raises a RuntimeError of its own text, and only prints a failed close, keeping a truncated file."""
    with open(path, "wb") as handle:
        faiss.write_index(faiss_index, faiss.PyCallbackIOWriter(handle.write))


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
    if path.exists() and not path.is_file():
        raise IndexDamagedError(folder, f"{path} is damaged (not a file)")
    if not path.is_file():
        raise IndexNotFoundError(
            f"no sleeve index in {folder} (missing {INDEX_JSON}); build one with: sleeve build-index --index {folder}"
        )
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IndexDamagedError(folder, f"{path} is not valid JSON ({error})") from None
    except RecursionError:
        raise IndexDamagedError(folder, f"{path} is damaged (nested too deeply to be an index.json)") from None
    except OSError as error:
        raise IndexFormatError(f"cannot read {path}: {error.strerror or error}") from None
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version not in (1, FORMAT_VERSION):
        raise IndexDamagedError(
            folder, f"{folder} holds index format {version!r}; this sleeve {sleeve_version()} reads format "
            f"{FORMAT_VERSION}"
        )
    problem = _field_problem(raw)
    if problem:
        raise IndexDamagedError(folder, f"{path} is damaged ({problem})")
    return IndexInfo(**{field.name: raw[field.name] for field in dataclasses.fields(IndexInfo)})


_FIELD_TYPES = {
    "model": dict, "model_key": str, "dim": int, "count": int, "index_type": str, "search_params": dict,
    "created": str, "sleeve_version": str, "files": dict,
}


def _field_problem(raw: dict[str, Any]) -> str | None:
    """What is wrong with the fields of ``index.json`` (missing, null, wrong type, files outside the folder)."""
    for name, kind in _FIELD_TYPES.items():
        value = raw.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {name!r} is {'missing' if name not in raw else repr(value)[:40]}"
    if raw["dim"] < 1 or raw["count"] < 1:
        return "dim and count must be positive"
    for kind in (*_FILE_KINDS, *(kind for kind in (*_OPTIONAL_KINDS, _ENGINE) if kind in raw["files"])):
        name = raw["files"].get(kind)
        if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
            return f"files.{kind} must name a file inside the index folder, not {name!r}"
    return None


def load_index(folder: str | Path, expected_model_key: str | None = None) -> CoverIndex:
    """Open an index; if ``expected_model_key`` is given, refuse an index made by any other model."""
    folder = Path(folder)
    for _ in range(_LOAD_ATTEMPTS):
        info = read_info(folder)
        if expected_model_key is not None and expected_model_key != info.model_key:
            raise ModelMismatchError(
                f"{folder} was built with model {info.model_key}, not {expected_model_key}; "
                "vectors of different models cannot be compared. Use that model, or another --index folder."
            )
        try:
            kinds = [*_FILE_KINDS, *(kind for kind in _OPTIONAL_KINDS if kind in info.files)]
            handles = {kind: open(folder / info.files[kind], "rb") for kind in kinds}  # noqa: SIM115
            engine = _open_engine(folder, info)
        except FileNotFoundError as error:
            if _current_files(folder) != info.files:
                continue  # a writer switched generations between reading index.json and opening the files
            raise IndexDamagedError(
                folder, f"index in {folder} is incomplete (missing {Path(error.filename).name})"
            ) from None
        except OSError as error:
            raise IndexFormatError(f"cannot open the index in {folder}: {error}") from None
        try:
            loaded = _read_generation(folder, info, handles)
        except BaseException:
            for handle in handles.values():
                handle.close()
            raise
        for kind in set(handles) - set(_READ_ON_DEMAND):
            handles[kind].close()  # mapped or read: what stays open is the tables'
        return dataclasses.replace(loaded, words_engine=engine)
    raise IndexFormatError(f"the index in {folder} changed {_LOAD_ATTEMPTS} times while it was being opened; try again")


def _open_engine(folder: Path, info: IndexInfo) -> WordsEngine | None:
    """The generation's words candidate engine (None for an index without one), opened with its other files."""
    if _ENGINE not in info.files:
        return None
    if "words" not in info.files:
        raise IndexDamagedError(folder, f"{folder / INDEX_JSON} is damaged (a words engine without a words file)")
    try:
        return WordsEngine(folder / info.files[_ENGINE], info.count)
    except WordsEngineError as error:
        raise IndexDamagedError(folder, f"index in {folder} is damaged ({info.files[_ENGINE]}: {error})") from None


def _current_files(folder: Path) -> dict[str, str] | None:
    try:
        return read_info(folder).files
    except IndexStoreError:
        return None


def _read_generation(folder: Path, info: IndexInfo, handles: dict[str, IO[bytes]]) -> CoverIndex:
    """Read the open files of one generation and check each against ``index.json``."""

    def damaged(kind: str, why: str) -> IndexDamagedError:
        return IndexDamagedError(folder, f"index in {folder} is damaged ({info.files[kind]}: {why})")

    def optional(kind: str, read: Callable[[IO[bytes]], Any], error: type[Exception]) -> Any:
        """The generation's ``kind`` file read by ``read``; None when the index has none (an older index)."""
        if kind not in handles:
            return None
        try:
            return read(handles[kind])
        except error as problem:
            raise damaged(kind, str(problem)) from None

    shown = optional("shown", lambda handle: read_shown_rows(handle, info.count), ShownRowsError)
    table = Table(handle=handles["metadata"], damaged=lambda why: damaged("metadata", why), shown=shown,
                  shown_damaged=lambda why: damaged("shown", why))
    if table.count != info.count:
        raise damaged("metadata", f"{table.count} rows, index.json says {info.count}")
    missing = [c for c in SLEEVE_COLUMNS if c not in table.columns]
    if missing:
        raise damaged("metadata", f"lacks the column(s) {', '.join(missing)}")
    if shown is not None and shown.columns != [*SHOWN_FIELDS, *user_columns(table)]:
        raise damaged("shown", f"columns {', '.join(shown.columns)[:80]}, not the metadata's shown columns")
    if info.format_version == 1:  # the manifest's columns were stored beside sleeve's without a prefix
        renamed = {c: USER_PREFIX + c for c in table.columns if c not in SLEEVE_COLUMNS}
        table = Table(handle=handles["metadata"], renamed=renamed, damaged=lambda why: damaged("metadata", why),
                      shown=shown, shown_damaged=lambda why: damaged("shown", why))
    embeddings = _map_embeddings(handles["embeddings"], info, damaged)
    try:
        index = _read_faiss(handles["faiss"])
    except RuntimeError as error:
        raise damaged("faiss", f"truncated or not a FAISS index: {_first_line(error)}") from None
    if index.ntotal != info.count or index.d != info.dim:
        raise damaged("faiss", f"{index.ntotal} vectors of {index.d} dimensions, index.json says "
                               f"{info.count} of {info.dim}")
    try:
        apply_search_params(index, info.search_params)
    except SearchParamsError as error:
        raise IndexDamagedError(folder, f"{folder / INDEX_JSON} is damaged (search_params: {error})") from None
    texts = None
    if "text" in handles:
        texts = Table(handle=handles["text"], damaged=lambda why: damaged("text", why))
    neighbours = None
    if "neighbours" in handles:
        try:
            neighbours = pd.read_parquet(handles["neighbours"])
        except TABLE_ERRORS as error:
            raise damaged("neighbours", f"unreadable table: {_first_line(error)}") from None
    if neighbours is not None:
        if list(neighbours.columns) != list(NEIGHBOUR_COLUMNS):
            raise damaged("neighbours", f"columns {', '.join(map(str, neighbours.columns))[:80]}")
        ends = neighbours[["row", "neighbour"]].to_numpy()
        if ends.size and (ends.min() < 0 or ends.max() >= info.count):
            raise damaged("neighbours", f"links rows outside 0-{info.count - 1}")
    words = optional("words", lambda handle: read_words(handle, info.count), WordsFileError)
    row_texts = optional("rowtext", lambda handle: read_row_texts(handle, info.count), RowTextsError)
    look_moments = optional("lookstats", lambda handle: read_look_stats(handle, info.dim), LookStatsError)
    return CoverIndex(folder, info, table, embeddings, index, texts, neighbours, words, row_texts=row_texts,
                      look_moments=look_moments)


def _read_faiss(handle: IO[bytes]) -> faiss.Index:
    """The FAISS index of an open file, its vectors memory-mapped (IO_FLAG_MMAP_IFC: flat and HNSW) where the
    system names an open file by a path, so that a query process holds the pages a search touches rather than
    every vector; read whole elsewhere. The mapping outlives the file's deletion, as an open handle does."""
    by_descriptor = Path(f"/proc/self/fd/{handle.fileno()}")
    if by_descriptor.exists():
        return faiss.read_index(str(by_descriptor), faiss.IO_FLAG_MMAP_IFC)
    return faiss.read_index(faiss.PyCallbackIOReader(handle.read))


def _map_embeddings(handle: IO[bytes], info: IndexInfo, damaged: Callable[[str, str], Exception]) -> np.ndarray:
    """Memory-map the .npy file through its open handle after checking its header and size."""
    try:
        version = np.lib.format.read_magic(handle)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(handle)
    except (ValueError, OSError, EOFError, SyntaxError) as error:
        raise damaged("embeddings", f"not a .npy array: {_first_line(error)}") from None
    if shape != (info.count, info.dim) or dtype != np.float32 or fortran:
        raise damaged("embeddings", f"array {shape} {dtype}, index.json says ({info.count}, {info.dim}) float32")
    offset = handle.tell()
    size = os.fstat(handle.fileno()).st_size
    if size != offset + info.count * info.dim * 4:
        raise damaged("embeddings", f"{size:,} bytes, {offset + info.count * info.dim * 4:,} expected (truncated?)")
    return MappedRows.open(handle, np.float32, offset, (info.count, info.dim))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__


def _remove(folder: Path, names: Any) -> None:
    for name in names:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _remove_other_generations(folder: Path, keep: set[str]) -> None:
    stale = [p.name for p in _data_files(folder) if p.name not in keep]
    if stale:
        log.debug("removing previous index generation: %s", stale)
        _remove(folder, stale)
