"""Turn cover files into cached vectors: decoding in worker processes overlaps the batched forward pass.

Only content hashes the cache does not have are computed; each finished batch is committed at once, so
an interrupted run loses at most the batch in flight. Files that cannot be decoded are reported with
their reason and the batch goes on.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import sys
from collections.abc import Callable
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
from recsys.images import DEFAULT_MAX_PIXELS, BadImageError, load_cover

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


@dataclasses.dataclass
class EmbedReport:
    """What one embedding run did: vectors computed now, and content hashes that failed with reasons."""

    computed: int
    failed: pd.DataFrame  # columns: content_hash, reason


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
    model = encoder.spec.key
    todo = missing_files(files, cache, model, encoder.spec.dim)
    if todo.empty:
        return EmbedReport(0, pd.DataFrame(columns=["content_hash", "reason"]))
    todo_hashes = list(todo["content_hash"])

    tune_allocator()
    workers = default_workers() if workers is None else workers
    dataset = _CoverFiles(list(todo["path"]), encoder.transform, max_pixels, encoder.input_size)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        prefetch_factor=4 if workers else None,
    )
    failures: list[tuple[str, str]] = []
    computed = 0
    with tqdm(total=len(todo), unit="img", desc="embedding", file=sys.stderr, disable=not progress) as bar:
        for rows, pixels, bad in loader:
            failures.extend((todo_hashes[row], reason) for row, reason in bad)
            if rows:
                vectors = encoder.encode_images(pixels)
                cache.put(model, [todo_hashes[row] for row in rows], vectors)
                computed += len(rows)
            bar.update(len(rows) + len(bad))
    return EmbedReport(computed, pd.DataFrame(failures, columns=["content_hash", "reason"]))


def missing_files(files: pd.DataFrame, cache: EmbeddingCache, model: str, dim: int) -> pd.DataFrame:
    """One row (content_hash, path) per distinct hash of ``files`` that has no usable vector for ``model`` yet."""
    todo_hashes = cache.missing(model, files["content_hash"], dim)
    first_path = files.drop_duplicates("content_hash").set_index("content_hash")["path"]
    return pd.DataFrame({"content_hash": todo_hashes, "path": first_path.loc[todo_hashes].to_numpy()})


def embed_files(
    paths: list[str], encoder: Encoder, batch_size: int = 32, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[list[int], np.ndarray, list[tuple[int, str]]]:
    """Embed ``paths`` in this process: (rows read, their vectors, (row, reason) for files that failed).

    For a cluster worker, whose processes may not start decoding processes of their own: a thread decodes the
    next batch while this one runs the forward pass (decoding and the encoders release the GIL).
    """
    tune_allocator()
    dataset = _CoverFiles(paths, encoder.transform, max_pixels, encoder.input_size)
    batches = [range(start, min(start + batch_size, len(paths))) for start in range(0, len(paths), batch_size)]
    rows: list[int] = []
    vectors: list[np.ndarray] = []
    failures: list[tuple[int, str]] = []
    with ThreadPoolExecutor(1) as decoder:
        for good, pixels, bad in decoder.map(lambda batch: _collate([dataset[row] for row in batch]), batches):
            failures.extend(bad)
            if good:
                rows.extend(good)
                vectors.append(encoder.encode_images(pixels))
    dim = encoder.spec.dim
    return rows, np.concatenate(vectors) if vectors else np.empty((0, dim), dtype=np.float32), failures


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


class _CoverFiles(Dataset):
    """Decodes and preprocesses one file per item; failures are returned, not raised."""

    def __init__(
        self, paths: list[str], preprocess: Callable[[Image.Image], Any], max_pixels: int, size: int
    ) -> None:
        self.paths = paths
        self.preprocess = preprocess
        self.max_pixels = max_pixels
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, row: int) -> tuple[int, Any | None, str | None]:
        try:
            image = load_cover(self.paths[row], self.max_pixels, reduce_to=self.size)
            return row, self.preprocess(image), None
        except BadImageError as error:
            return row, None, str(error)
        except Exception as error:  # one strange file must never stop the batch
            return row, None, f"cannot preprocess: {type(error).__name__}: {error}"


def _collate(
    items: list[tuple[int, Any | None, str | None]],
) -> tuple[list[int], Any | None, list[tuple[int, str]]]:
    good = [(row, pixels) for row, pixels, _ in items if pixels is not None]
    bad = [(row, reason) for row, pixels, reason in items if pixels is None]
    pixels = stack_preprocessed([p for _, p in good]) if good else None
    return [row for row, _ in good], pixels, bad
