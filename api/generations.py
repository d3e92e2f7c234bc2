"""The index generation a request is answered from, reloaded when build-index writes a new one.

build-index switches generations by replacing ``index.json`` atomically (index.store), so reading its
``created`` field on each request (one small file) tells whether the loaded index is still the current one.
A request takes the :class:`Generation` that is current when it starts and keeps it to the end: an older
generation's files stay readable while it holds them (they are open or memory-mapped), so a rebuild never
fails a request in flight. One request loads a new generation while the others go on with the old one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import logging
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

from index.errors import SleeveError
from index.store import IndexInfo, read_info
from recsys.answer import QueryAnswerer
from recsys.errors import describe_error

log = logging.getLogger(__name__)


class NotReadyError(SleeveError):
    """No generation of the index is loaded (yet, or it cannot be); the message says why."""


@dataclasses.dataclass(frozen=True)
class Generation:
    """One loaded generation: its answerer, the ids of its covers by path, and the lock its queries take
    turns on (PyTorch modules and the OCR reader do not promise to be thread-safe)."""

    answerer: QueryAnswerer
    ids: dict[str, int]
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def created(self) -> str:
        return self.answerer.recommender.index.info.created

    @property
    def key(self) -> str:
        return generation_key(self.answerer.recommender.index.info)

    @classmethod
    def of(cls, answerer: QueryAnswerer) -> Generation:
        metadata = answerer.recommender.index.metadata
        return cls(answerer, dict(zip(metadata["path"], metadata["id"].astype(int), strict=True)))


def generation_key(info: IndexInfo) -> str:
    """What tells generations apart: the data files index.json names (each generation's carry a random id;
    ``created`` alone is the same for two builds within one second)."""
    return " ".join(sorted(info.files.values()))


class Generations:
    """The current generation of the index in ``folder``, opened with ``open_answerer``."""

    def __init__(self, folder: str | Path, open_answerer: Callable[[Path], QueryAnswerer]) -> None:
        self.folder = Path(folder)
        self._open = open_answerer
        self._current: Generation | None = None
        self._failed: tuple[str, str] | None = None
        """(created, why) of the last generation that could not be loaded: not tried again until it changes."""
        self._loading = threading.Lock()

    def current(self) -> Generation:
        """The generation to answer a request from; :class:`NotReadyError` when none is loaded."""
        try:
            key: str | None = generation_key(read_info(self.folder))
        except SleeveError as error:  # gone or damaged: keep serving what is loaded
            key, problem = None, str(error)
        else:
            problem = "the index is loading"
        loaded = self._current
        if loaded is not None and key in (None, loaded.key):
            return loaded
        failed = self._failed
        if key is not None and (failed is None or failed[0] != key):
            if self._loading.acquire(blocking=False):  # the others go on with the loaded generation
                try:
                    self._load(key)
                finally:
                    self._loading.release()
        elif failed is not None:
            problem = failed[1]
        if self._current is None:
            raise NotReadyError(problem)
        return self._current

    def _load(self, key: str) -> None:
        try:
            generation = Generation.of(self._open(self.folder))
        except Exception as error:  # noqa: BLE001 - any failure leaves the loaded generation serving
            self._failed = (key, f"cannot load the index: {describe_error(error)}")
            serving = self._current.created if self._current else "nothing"
            log.warning("%s; still serving %s", self._failed[1], serving)
            return
        for message in generation.answerer.warnings:
            log.warning(message)
        log.info("serving index generation %s (%d covers)", generation.created, len(generation.ids))
        previous, self._current, self._failed = self._current, generation, None
        if previous is not None:  # once the last request holding it has finished
            weakref.finalize(previous, _released, previous.created)


def _released(created: str) -> None:
    log.debug("index generation %s released", created)
    release_freed_memory()


def release_freed_memory() -> None:
    """Give the memory freed with a replaced generation (its FAISS index, model session, tables) back to the
    system: glibc's malloc keeps freed memory for reuse instead, and without this the server's RSS grew by
    about 30% over a few switches with no old generation left alive (measured in docs/serve.md).
    Not glibc (macOS, musl): nothing to do."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is not None:
        trim(0)
