"""Turn cover files into cached vectors: decoding in worker processes overlaps the batched forward pass.

Only content hashes the cache does not have are computed; each finished batch is committed at once, so
an interrupted run loses at most the batch in flight. Files that cannot be decoded are reported with
their reason and the batch goes on. Each file is read once and its vector is cached under the hash of those
very bytes, so a cover rewritten during a build can never pair one content's hash with another's vector.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from recsys.cache import EmbeddingCache
from recsys.encoders import Encoder
from recsys.encoders.base import stack_preprocessed
from recsys.images import DEFAULT_MAX_PIXELS, BadImageError, load_cover, max_file_bytes, read_cover_bytes
from recsys.ingest import bytes_hash

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_PR_SET_PDEATHSIG = 1


ROUNDS = 3
"""Embedding rounds at most: a round leaves a hash without a vector only when every file read for it had
changed since it was hashed; the next round reads another file of that hash (a duplicate) or gives up."""


@dataclasses.dataclass
class EmbedReport:
    """What one embedding run did: vectors computed now, the files that have a cached vector now with the hash of
    the bytes it was computed from, and the files that could not be embedded with reasons."""

    computed: int
    files: pd.DataFrame  # the rows given, content_hash updated where the file had changed since it was hashed
    failed: pd.DataFrame  # columns: path, reason


@dataclasses.dataclass
class Embedded:
    """One pass over files, each read once: hash, decode and embed the same bytes."""

    paths: list[str]  # files embedded
    hashes: list[str]  # the hash of the bytes each was embedded from
    vectors: np.ndarray
    failures: list[tuple[str, str | None, str]]  # (path, hash of the bytes read or None when unread, reason)


def default_workers() -> int:
    """Decoding processes: one core is left to the forward pass, at least one decoder, at most four."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def embed_missing(
    files: pd.DataFrame,
    encoder: Encoder,
    cache: EmbeddingCache,
    batch_size: int = 32,
    workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
) -> EmbedReport:
    """Embed every distinct ``content_hash`` of ``files`` (columns path, content_hash) not yet cached."""
    tune_allocator()
    workers = default_workers() if workers is None else workers

    def embed_round(todo: pd.DataFrame) -> Iterator[Embedded]:
        paths = list(todo["path"])
        dataset = _CoverFiles(paths, encoder.transform, max_pixels, encoder.input_size)
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=workers,
            collate_fn=_collate,
            prefetch_factor=4 if workers else None,
            worker_init_fn=functools.partial(start_decoder, os.getpid()),
        )
        for rows, hashes, pixels, bad in loader:
            vectors = encoder.encode_images(pixels) if rows else _no_vectors(encoder)
            yield Embedded(
                [paths[row] for row in rows], hashes, vectors, [(paths[row], read, why) for row, read, why in bad]
            )

    return embed_rounds(files, cache, encoder.spec.key, encoder.spec.dim, embed_round, progress)


def embed_rounds(
    files: pd.DataFrame,
    cache: EmbeddingCache,
    model: str,
    dim: int,
    embed_round: Callable[[pd.DataFrame], Iterator[Embedded]],
    progress: bool,
) -> EmbedReport:
    """Give every row of ``files`` a cached vector of exactly its ``content_hash``, embedding one file per missing
    hash with ``embed_round`` (which yields each finished part; each is committed at once).

    A file that changed since it was hashed is cached and indexed under the hash of the bytes that were embedded,
    never under the old one; its duplicates, still under the old hash, are read in the next round.
    """
    rows = files.reset_index(drop=True)
    failed: list[tuple[str, str]] = []
    computed = 0
    with tqdm(total=0, unit="img", desc="embedding", file=sys.stderr, disable=not progress) as bar:
        for _ in range(ROUNDS):
            todo = missing_files(rows, cache, model, dim)
            if todo.empty:
                break
            bar.total += len(todo)
            read: dict[str, str] = {}
            failures: list[tuple[str, str | None, str]] = []
            for part in embed_round(todo):
                if part.paths:
                    cache.put(model, part.hashes, part.vectors)
                computed += len(part.paths)
                read.update(zip(part.paths, part.hashes))
                failures += part.failures
                bar.update(len(part.paths) + len(part.failures))
            rows, bad = _settle(rows, dict(zip(todo["path"], todo["content_hash"])), read, failures)
            failed += bad
        else:
            changing = rows["content_hash"].isin(missing_files(rows, cache, model, dim)["content_hash"])
            reason = "changed on disk while it was being indexed; build again"
            failed += [(path, reason) for path in rows["path"][changing]]
            rows = rows[~changing]
    return EmbedReport(computed, rows.reset_index(drop=True), pd.DataFrame(failed, columns=["path", "reason"]))


def _settle(
    rows: pd.DataFrame,
    expected: dict[str, str],
    read: dict[str, str],
    failures: list[tuple[str, str | None, str]],
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """``rows`` after one round, and (path, reason) of those left out: a file embedded now takes the hash of the
    bytes it was ``read`` as; a file that failed is left out, with every file of the same bytes (when the bytes it
    failed on are still those of its ``expected`` hash)."""
    bad_paths = {path: reason for path, _, reason in failures}
    bad_bytes = {read_hash: reason for path, read_hash, reason in failures if read_hash == expected[path]}
    reasons = [bad_paths.get(path, bad_bytes.get(h)) for path, h in zip(rows["path"], rows["content_hash"])]
    failed = [(path, reason) for path, reason in zip(rows["path"], reasons) if reason is not None]
    kept = rows[[reason is None for reason in reasons]].copy()
    kept["content_hash"] = [read.get(path, old) for path, old in zip(kept["path"], kept["content_hash"])]
    return kept, failed


def missing_files(files: pd.DataFrame, cache: EmbeddingCache, model: str, dim: int) -> pd.DataFrame:
    """One row (content_hash, path) per distinct hash of ``files`` that has no usable vector for ``model`` yet."""
    todo_hashes = cache.missing(model, files["content_hash"], dim)
    first_path = files.drop_duplicates("content_hash").set_index("content_hash")["path"]
    return pd.DataFrame({"content_hash": todo_hashes, "path": first_path.loc[todo_hashes].to_numpy()})


def embed_files(
    paths: list[str], encoder: Encoder, batch_size: int = 32, max_pixels: int = DEFAULT_MAX_PIXELS
) -> Embedded:
    """Embed ``paths`` in this process, each file read once; files that failed come back with their reason.

    For a cluster worker, whose processes may not start decoding processes of their own: a thread decodes the
    next batch while this one runs the forward pass (decoding and the encoders release the GIL).
    """
    tune_allocator()
    dataset = _CoverFiles(paths, encoder.transform, max_pixels, encoder.input_size)
    batches = [range(start, min(start + batch_size, len(paths))) for start in range(0, len(paths), batch_size)]
    done: list[str] = []
    hashes: list[str] = []
    vectors = [_no_vectors(encoder)]
    failures: list[tuple[str, str | None, str]] = []
    with ThreadPoolExecutor(1) as decoder:
        for rows, read, pixels, bad in decoder.map(lambda batch: _collate([dataset[row] for row in batch]), batches):
            failures.extend((paths[row], content_hash, reason) for row, content_hash, reason in bad)
            if rows:
                done.extend(paths[row] for row in rows)
                hashes.extend(read)
                vectors.append(encoder.encode_images(pixels))
    return Embedded(done, hashes, np.concatenate(vectors), failures)


def _no_vectors(encoder: Encoder) -> np.ndarray:
    return np.empty((0, encoder.spec.dim), dtype=np.float32)


def tune_allocator() -> None:
    """Stop glibc from returning freed memory to the OS after every batch.

    PyTorch's CPU kernels allocate and free large buffers per layer; with glibc's defaults each becomes an
    mmap/munmap pair plus page faults. Measured in bench/embed.py: 3-4x faster for EfficientNet-Lite0.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def start_decoder(parent: int, worker_id: int = 0) -> None:
    """A decoding process's setup: it dies with ``parent``, and it hands its batches over in named shared memory
    ("file_system") rather than by passing file descriptors, whose helper thread printed a traceback when an
    interrupted build stopped the process mid-handover (tests/test_concurrency.py's SIGINT test, once in ten CI
    runs)."""
    import torch.multiprocessing

    torch.multiprocessing.set_sharing_strategy("file_system")
    die_with_parent(parent, worker_id)


def die_with_parent(parent: int, worker_id: int = 0) -> None:
    """Make this decoding process end the moment ``parent`` dies, even by ``kill -9``: the kernel sends it SIGKILL
    (Linux). Without it a worker notices only at its next check of its parent, seconds later, or never while it
    is blocked on a full queue."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # not glibc: DataLoader's own periodic check of the parent remains
        return
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above could arm the signal
        os._exit(1)


class _CoverFiles(Dataset):
    """Reads each file once, then hashes and decodes those bytes; failures are returned, not raised."""

    def __init__(
        self, paths: list[str], preprocess: Callable[[Image.Image], Any], max_pixels: int, size: int
    ) -> None:
        self.paths = paths
        self.preprocess = preprocess
        self.max_pixels = max_pixels
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, row: int) -> tuple[int, str | None, Any | None, str | None]:
        """(row, hash of the bytes read or None when unread, pixels or None, reason when None)."""
        content_hash = None
        try:
            data = read_cover_bytes(self.paths[row], max_bytes=max_file_bytes(self.max_pixels))
            content_hash = bytes_hash(data)
            image = load_cover(data, self.max_pixels, reduce_to=self.size)
            return row, content_hash, self.preprocess(image), None
        except BadImageError as error:
            return row, content_hash, None, str(error)
        except Exception as error:  # one strange file must never stop the batch
            return row, content_hash, None, f"cannot preprocess: {type(error).__name__}: {error}"


def _collate(
    items: list[tuple[int, str | None, Any | None, str | None]],
) -> tuple[list[int], list[str], Any | None, list[tuple[int, str | None, str]]]:
    """(rows decoded, the hash of the bytes each was decoded from, their pixels as one batch, and (row, hash,
    reason) of the rest)."""
    good = [(row, content_hash, pixels) for row, content_hash, pixels, _ in items if pixels is not None]
    bad = [(row, content_hash, reason) for row, content_hash, pixels, reason in items if pixels is None]
    pixels = stack_preprocessed([p for _, _, p in good]) if good else None
    return [row for row, _, _ in good], [h for _, h, _ in good], pixels, bad
