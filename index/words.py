"""The stored words model of an index (``words-<generation>.npz``): named arrays, memory-mapped when read.

The file is an aligned ``.npz`` (index.arrays) whose members a reader maps in place, so a query process pays for
the pages it touches, not for the whole model. What the arrays mean (the vocabulary, IDF and sparse rows of
recsys.textsearch) is checked here only as far as a damaged file could break a query: sizes that agree with each
other and with the index, and indices inside their arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np

from index.arrays import ArrayFileError, map_member, member_names, write_arrays

WORDS_ARRAYS = (
    "terms", "idf", "covers_data", "covers_indices", "covers_indptr",
    "lines_data", "lines_indices", "lines_indptr", "line_owner",
)
"""The members of a words file: sorted vocabulary, its IDF, the covers' and the printed lines' TF-IDF rows as CSR
arrays, and each line's cover."""
FIT_STATE = "fit_state"
"""An optional member: [covers at the model's last full fit, covers added or removed since], what
recsys.textstore's refit rule reads; a file without it was fitted on exactly its index's covers."""


class WordsFileError(ArrayFileError):
    """A words file that cannot be read or does not fit its index; the message says what is wrong."""


def write_words(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (:data:`WORDS_ARRAYS`, and :data:`FIT_STATE` when given) to ``path`` as an uncompressed
    .npz with aligned data."""
    if not _members_fit(set(arrays)):
        raise ValueError(f"a words file holds {', '.join(WORDS_ARRAYS)} (and {FIT_STATE}), not {', '.join(arrays)}")
    write_arrays(path, {name: arrays[name] for name in [*WORDS_ARRAYS, *[FIT_STATE][: FIT_STATE in arrays]]})


def read_words(handle: IO[bytes], count: int) -> dict[str, np.ndarray]:
    """The arrays of an open words file, memory-mapped, checked against the index's ``count`` covers."""
    try:
        members = member_names(handle)
        arrays = {name: map_member(handle, info) for name, info in members.items()}
    except ArrayFileError as error:
        raise WordsFileError(str(error)) from None
    if not _members_fit(set(members)):
        raise WordsFileError(f"holds {', '.join(sorted(members))[:80]}, not the words model's arrays")
    problem = _words_problem(arrays, count)
    if problem:
        raise WordsFileError(problem)
    return arrays


def _members_fit(names: set[str]) -> bool:
    """Whether ``names`` are a words file's members: all of WORDS_ARRAYS, FIT_STATE optionally."""
    return names - {FIT_STATE} == set(WORDS_ARRAYS)


def _words_problem(arrays: dict[str, np.ndarray], count: int) -> str | None:
    """What in ``arrays`` would make a query read out of bounds or answer for other covers, or None."""
    terms, idf, owner = arrays["terms"], arrays["idf"], arrays["line_owner"]
    if terms.dtype.kind != "U" or len(idf) != len(terms) or idf.dtype.kind != "f":
        return f"{len(terms)} terms of {terms.dtype} but {len(idf)} IDF values of {idf.dtype}"
    for part, rows in (("covers", count), ("lines", len(owner))):
        data, indices, indptr = (arrays[f"{part}_{field}"] for field in ("data", "indices", "indptr"))
        if indptr.dtype.kind != "i" or indices.dtype.kind != "i" or data.dtype.kind != "f":
            return f"{part} rows of types {data.dtype}, {indices.dtype}, {indptr.dtype}"
        if len(indptr) != rows + 1:
            return f"{part}: {len(indptr) - 1} rows, expected {rows}"
        if indptr[0] != 0 or indptr[-1] != len(indices) or len(data) != len(indices) or np.any(np.diff(indptr) < 0):
            return f"{part}: row offsets do not fit their {len(indices)} values"
        if len(indices) and (indices.min() < 0 or indices.max() >= len(terms)):
            return f"{part} rows point outside their {len(terms)} terms"
    if owner.dtype.kind != "i" or (len(owner) and (owner.min() < 0 or owner.max() >= count)):
        return f"printed lines belong to covers outside 0-{count - 1}"
    if np.any(np.diff(owner) < 0):
        return "a cover's printed lines are not together"
    state = arrays.get(FIT_STATE)
    if state is not None and (state.dtype.kind != "i" or len(state) != 2 or state.min() < 0):
        return f"{FIT_STATE} is {len(state)} values of {state.dtype}, not two counts"
    return None
