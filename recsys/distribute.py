"""Hashing, embedding and OCR spread over other processes or machines: shards of files, results committed here.

A distributor runs a per-shard function next to a resident object that each worker builds once (the encoder,
or for cover text the OCR reader) and hands back each shard's result as soon as it is done, in any order. The
driver commits every result to the cache at once, so an interrupted run keeps every finished shard and a re-run
only submits the content hashes the cache still lacks, exactly as the in-process pipeline (recsys.embed) does.
This module knows no engine: recsys.dask_cluster implements ``Distributor`` with Dask, and is imported only when a
user asks for a cluster.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import pandas as pd
from tqdm import tqdm

from recsys.cache import EmbeddingCache
from recsys.embed import Embedded, EmbedReport, embed_files, embed_rounds
from recsys.encoders import Encoder, ModelSpec
from recsys.images import DEFAULT_MAX_PIXELS, BadImageError
from recsys.ingest import FileRow, KnownFile, fingerprint_frames, fingerprint_rows, known_files
from recsys.ocr import (
    MIN_SCORE,
    OPENVINO,
    CoverTextReader,
    ReaderSettings,
    TextCache,
    TextLine,
    read_hashed,
    reader_key,
    unread_files,
)
from recsys.settings import Settings

MAX_SHARD = 256
"""Files per shard at most: ~2 s of EfficientNet-Lite0 work for a 2-core worker (145 covers/s, docs/scale.md),
long enough to hide the scheduler's per-task cost, short enough that a lost worker costs little and results
stream in."""
SHARDS_PER_WORKER = 4
"""Small collections are cut finer so that every worker gets some shards."""


@dataclasses.dataclass(frozen=True)
class Shard:
    """Files to process together: content hashes and one readable path for each."""

    hashes: tuple[str, ...]
    paths: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class FileShard:
    """Files to fingerprint together: where they start in the input, their paths, and what an earlier build
    knew of each (size, mtime_ns, content hash, or None), so that a worker re-reads only new or changed files."""

    start: int
    paths: tuple[str, ...]
    known: tuple[KnownFile | None, ...]


ShardT = TypeVar("ShardT", Shard, FileShard)


class Resident(Protocol):
    """A picklable recipe for the object a worker keeps for all its shards; ``key`` names what it builds."""

    @property
    def key(self) -> str: ...

    def build(self) -> Any: ...


class Distributor(Protocol):
    """Runs ``task(resident object, shard)`` for every shard somewhere; yields (shard, result) as each finishes."""

    def worker_count(self) -> int: ...

    def map_shards(
        self, task: Callable[[Any, ShardT], Any], resident: Resident, shards: Sequence[ShardT]
    ) -> Iterator[tuple[ShardT, Any]]: ...


Hasher = Callable[[list[str], list[KnownFile | None]], list[FileRow]]


@dataclasses.dataclass(frozen=True)
class HasherRecipe:
    """What a worker keeps for fingerprinting: recsys.ingest's per-file rule on ``threads`` threads, so that the
    reads of a shard overlap on the worker as they do in one process (recsys.ingest.fingerprint)."""

    threads: int = 4

    @property
    def key(self) -> str:
        return f"hasher:{self.threads}"

    def build(self) -> Hasher:
        return functools.partial(fingerprint_rows, workers=self.threads)


def hash_shard(hasher: Hasher, shard: FileShard) -> list[FileRow]:
    """Runs on a worker: stat and hash the shard's files, reusing the known hashes of unchanged ones."""
    return hasher(list(shard.paths), list(shard.known))


def fingerprint_distributed(
    paths: list[str],
    distributor: Distributor,
    known: pd.DataFrame | None = None,
    files_per_shard: int | None = None,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """recsys.ingest.fingerprint on workers: each reads and hashes its shard's files, so the driver reads none;
    the rows come back in the order of ``paths``, as the same ``(found, unreadable)`` frames."""
    previous = known_files(known)
    size = files_per_shard or shard_size(len(paths), distributor.worker_count())
    shards = []
    for start in range(0, len(paths), size):
        part = tuple(paths[start : start + size])
        shards.append(FileShard(start, part, tuple(previous.get(path) for path in part)))
    done: dict[int, list[FileRow]] = {}
    if shards:
        bar = tqdm(total=len(paths), unit="file", desc="hashing on workers", file=sys.stderr, disable=not progress)
        with bar:
            for shard, rows in distributor.map_shards(hash_shard, HasherRecipe(), shards):
                done[shard.start] = rows
                bar.update(len(shard.paths))
    return fingerprint_frames([row for start in sorted(done) for row in done[start]])


@dataclasses.dataclass(frozen=True)
class EncoderRecipe:
    """Rebuilds on a worker exactly the encoder of an index: same weights (checksum checked), same runtime."""

    spec: ModelSpec
    settings: Settings

    @property
    def key(self) -> str:
        return f"encoder:{self.spec.key}:{self.settings.runtime}"

    def build(self) -> Encoder:
        return self.settings.encoder_for(self.spec)


def embed_shard(encoder: Encoder, shard: Shard, batch_size: int, max_pixels: int) -> Embedded:
    """Runs on a worker: read and embed the shard's files, each under the hash of the bytes it read there;
    unreadable ones come back with their reason."""
    return embed_files(list(shard.paths), encoder, batch_size, max_pixels)


def shard_size(todo: int, workers: int, limit: int = MAX_SHARD) -> int:
    """Files per shard: at most ``limit``, fewer when that would leave workers idle."""
    return max(1, min(limit, math.ceil(todo / (SHARDS_PER_WORKER * max(1, workers)))))


def make_shards(todo: pd.DataFrame, size: int) -> list[Shard]:
    """Cut ``todo`` (columns content_hash, path) into shards of ``size`` rows, in order."""
    hashes, paths = list(todo["content_hash"]), list(todo["path"])
    return [
        Shard(tuple(hashes[start : start + size]), tuple(paths[start : start + size]))
        for start in range(0, len(hashes), size)
    ]


def embed_distributed(
    files: pd.DataFrame,
    recipe: EncoderRecipe,
    cache: EmbeddingCache,
    distributor: Distributor,
    batch_size: int = 32,
    files_per_shard: int | None = None,
) -> EmbedReport:
    """Embed every distinct ``content_hash`` of ``files`` (columns path, content_hash) not yet cached, on workers."""
    task = functools.partial(embed_shard, batch_size=batch_size, max_pixels=recipe.settings.max_pixels)

    def embed_round(todo: pd.DataFrame) -> Iterator[Embedded]:
        size = files_per_shard or shard_size(len(todo), distributor.worker_count())
        for _, result in distributor.map_shards(task, recipe, make_shards(todo, size)):
            yield result

    return embed_rounds(files, cache, recipe.spec.key, recipe.spec.dim, embed_round, recipe.settings.progress)


@dataclasses.dataclass(frozen=True)
class ReaderRecipe:
    """Builds on a worker the OCR reader with sleeve's settings (recsys.ocr), once for all its shards."""

    min_score: float = MIN_SCORE
    settings: ReaderSettings = OPENVINO

    @property
    def key(self) -> str:
        return f"reader:{reader_key(self.min_score, self.settings)}"

    def build(self) -> CoverTextReader:
        return CoverTextReader(self.min_score, self.settings)


@dataclasses.dataclass(frozen=True)
class TextShardResult:
    """What a worker returns for a shard: the text lines of the covers it could read, reasons for the rest."""

    readings: list[tuple[str, list[TextLine]]]  # (content hash, lines)
    failures: list[tuple[str, str]]  # (content hash, reason)


def read_shard(reader: CoverTextReader, shard: Shard, max_pixels: int) -> TextShardResult:
    """Runs on a worker: OCR the shard's files; unreadable ones come back with their reason."""
    readings, failures = [], []
    for content_hash, path in zip(shard.hashes, shard.paths, strict=True):
        try:
            readings.append((content_hash, read_hashed(reader, content_hash, path, max_pixels)))
        except BadImageError as error:
            failures.append((content_hash, str(error)))
    return TextShardResult(readings, failures)


def read_text_distributed(
    files: pd.DataFrame,
    cache: TextCache,
    distributor: Distributor,
    recipe: ReaderRecipe = ReaderRecipe(),
    max_pixels: int = DEFAULT_MAX_PIXELS,
    files_per_shard: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """OCR on workers every distinct ``content_hash`` of ``files`` (columns path, content_hash) whose text is not
    cached, committing each shard's readings as it arrives; returns the failures (content_hash, reason), as
    recsys.ocr.read_missing does in one process."""
    key = reader_key(recipe.min_score, recipe.settings)
    todo = unread_files(files, cache, key)
    failures: list[tuple[str, str]] = []
    if not todo.empty:
        size = files_per_shard or shard_size(len(todo), distributor.worker_count())
        task = functools.partial(read_shard, max_pixels=max_pixels)
        with tqdm(total=len(todo), unit="img", desc="reading cover text", file=sys.stderr, disable=not progress) as bar:
            for shard, result in distributor.map_shards(task, recipe, make_shards(todo, size)):
                for content_hash, lines in result.readings:
                    cache.put(key, content_hash, lines)
                failures.extend(result.failures)
                bar.update(len(shard.hashes))
    return pd.DataFrame(failures, columns=["content_hash", "reason"])
