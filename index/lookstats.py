"""The look statistics of an index (``lookstats-<generation>.npz``): the mean vector and covariance of its
embeddings, against which ``recommend --by both`` z-scores the look of a few thousand candidates as if it had
scored every cover (recsys.hybrid.Statistics).

build-index computes them once, from the vectors it has just written, so that a query process loads this small
file (d + d * d float32 values, 6.5 MB at 1280-d) instead of reading a sample of up to 50,000 rows of the
vectors (256 MB of heap and about twice that of mapped pages at 1280-d, spread over the whole file). The file is
an aligned ``.npz`` (index.arrays), mapped in place; the covariance is stored flat, row by row.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import IO

import numpy as np

from index.arrays import ArrayFileError, map_member, member_names, write_arrays

LOOK_ARRAYS = ("mean_vector", "covariance")


class LookStatsError(ArrayFileError):
    """A look-statistics file that cannot be read or does not fit its index; the message says what is wrong."""


@dataclasses.dataclass(frozen=True)
class LookMoments:
    """The collection's mean vector (d,) and covariance (d, d) of its embeddings, both float32."""

    mean_vector: np.ndarray
    covariance: np.ndarray


def write_look_stats(path: str | Path, moments: LookMoments) -> None:
    """Write ``moments`` to ``path`` as an uncompressed .npz with aligned data."""
    dim = len(moments.mean_vector)
    if moments.covariance.shape != (dim, dim):
        raise ValueError(f"a covariance of shape {moments.covariance.shape} for a {dim}-d mean vector")
    write_arrays(path, {"mean_vector": np.asarray(moments.mean_vector, dtype=np.float32),
                        "covariance": np.asarray(moments.covariance, dtype=np.float32).ravel()})


def read_look_stats(handle: IO[bytes], dim: int) -> LookMoments:
    """The moments of an open look-statistics file, memory-mapped, checked against the index's ``dim``: a
    damaged file would otherwise make every ``--by both`` score NaN or raise deep inside a query."""
    try:
        members = member_names(handle)
        arrays = {name: map_member(handle, info) for name, info in members.items()}
    except ArrayFileError as error:
        raise LookStatsError(str(error)) from None
    if set(arrays) != set(LOOK_ARRAYS):
        raise LookStatsError(f"holds {', '.join(sorted(arrays))[:80]}, not {', '.join(LOOK_ARRAYS)}")
    mean_vector, covariance = arrays["mean_vector"], arrays["covariance"]
    for name, values, size in (("mean_vector", mean_vector, dim), ("covariance", covariance, dim * dim)):
        if values.dtype != np.float32 or len(values) != size:
            raise LookStatsError(f"{name} is {len(values)} values of {values.dtype}, not {size} float32 "
                                 f"(a {dim}-d index)")
        if not np.isfinite(values).all():
            raise LookStatsError(f"{name} holds values that are not finite")
    return LookMoments(mean_vector, covariance.reshape(dim, dim))
