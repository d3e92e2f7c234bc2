"""Leak-free splits: near-duplicate covers (reissues, other pressings) never straddle train and test.

Two covers are near-duplicates when the Hamming distance of their 64-bit dHashes is at most 4. Near-duplicate
pairs are joined transitively into groups (connected components), and scikit-learn's StratifiedGroupKFold
assigns whole groups to folds while keeping genre proportions, so a model is never tested on a copy of a
cover it learned from.

A text model can still recognise an artist it has seen on other covers. The artist-aware grouping also joins
covers whose printed name line reads alike (``printed_name_groups``): a rough stand-in for the artist, which
most collections do not label, so that a text model is tested on names it has not learned.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path

import faiss
import imagehash
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedGroupKFold
from tqdm import tqdm

from index.errors import SleeveError
from recsys.images import BadImageError, load_cover

log = logging.getLogger(__name__)

HASH_BITS = 64
NEAR_DUPLICATE_DISTANCE = 4
SPLIT_NAMES = ("train", "validation", "test")
NAME_LETTERS = 8
"""A name line is the cover's first OCR lines, joined until they hold this many letters: OCR often splits a name
("DAVID" / "BOWIE") or runs it together ("LOUISARMSTRONG"), and letters alone compare both alike."""
NAME_SIMILARITY = 0.5
"""Cosine of character 3-5-gram TF-IDF vectors from which two name lines count as the same name (robust to OCR
slips such as "ALANIACKSON"); chosen on ../shared/artist-covers with bench/artist_grouping.py."""


class SplitError(SleeveError):
    """The collection cannot be split as asked (too few covers or genres)."""


def dhashes(paths: Iterable[str | Path], progress: bool = False) -> np.ndarray:
    """64-bit difference hashes as (N, 8) uint8 rows (the layout FAISS binary indexes take).

    An unreadable file gets a hash of its own that matches nothing, so it only ever groups with itself.
    """
    paths = list(paths)
    rows = np.zeros((len(paths), HASH_BITS // 8), dtype=np.uint8)
    for row, path in enumerate(tqdm(paths, desc="hashing", unit="img", file=sys.stderr, disable=not progress)):
        try:
            bits = imagehash.dhash(load_cover(path, reduce_to=64)).hash.flatten()
        except BadImageError as error:
            log.warning("cannot hash %s (%s); it forms a group of its own", path, error)
            bits = np.random.default_rng(row).integers(0, 2, HASH_BITS).astype(bool)
        rows[row] = np.packbits(bits)
    return rows


def near_duplicate_pairs(hashes: np.ndarray, max_distance: int = NEAR_DUPLICATE_DISTANCE) -> np.ndarray:
    """(P, 2) row pairs i < j whose hashes differ in at most ``max_distance`` bits."""
    index = faiss.IndexBinaryFlat(HASH_BITS)
    index.add(np.ascontiguousarray(hashes))
    limits, _, found = index.range_search(np.ascontiguousarray(hashes), max_distance + 1)  # radius is exclusive
    query = np.repeat(np.arange(len(hashes)), np.diff(limits).astype(np.int64))
    pairs = np.stack([query, found.astype(np.int64)], axis=1)
    return pairs[pairs[:, 0] < pairs[:, 1]]


def near_duplicate_groups(hashes: np.ndarray, max_distance: int = NEAR_DUPLICATE_DISTANCE) -> np.ndarray:
    """A group id per row: rows linked by any chain of near-duplicate pairs share one id."""
    pairs = near_duplicate_pairs(hashes, max_distance)
    n = len(hashes)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def group_folds(labels: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """A fold number (0..n_folds-1) per row from StratifiedGroupKFold: groups whole, genres balanced."""
    labels = np.asarray(labels)
    counts = pd.Series(labels).value_counts()
    if len(counts) < 2:
        raise SplitError("a genre classifier needs covers of at least two genres")
    if counts.min() < n_folds:
        raise SplitError(
            f"genre {counts.idxmin()!r} has only {counts.min()} covers; each of the {n_folds} folds needs one"
        )
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = np.empty(len(labels), dtype=np.int64)
    for fold, (_, rows) in enumerate(splitter.split(np.zeros(len(labels)), labels, groups)):
        folds[rows] = fold
    return folds


def train_validation_test(labels: np.ndarray, groups: np.ndarray, seed: int = 42) -> np.ndarray:
    """The 60/20/20 split as a name per row: five group folds, fold 0 is test, fold 1 validation."""
    folds = group_folds(labels, groups, n_folds=5, seed=seed)
    names = np.full(len(folds), "train", dtype=object)
    names[folds == 1] = "validation"
    names[folds == 0] = "test"
    return names


def train_validation(labels: np.ndarray, groups: np.ndarray, seed: int = 42) -> np.ndarray:
    """An 80/20 train/validation split (no test): for fitting on a whole collection while still tuning."""
    folds = group_folds(labels, groups, n_folds=5, seed=seed)
    return np.where(folds == 0, "validation", "train").astype(object)


def name_line(text: str, letters: int = NAME_LETTERS) -> str:
    """The cover's printed name as letters only, casefolded: its first lines joined until ``letters`` letters
    ("" when the whole text has fewer than 4)."""
    name = ""
    for line in (text or "").splitlines():
        name += "".join(character for character in line.casefold() if character.isalpha())
        if len(name) >= letters:
            break
    return name if len(name) >= 4 else ""


def printed_name_groups(
    texts: Iterable[str], groups: np.ndarray, similarity: float = NAME_SIMILARITY
) -> np.ndarray:
    """``groups`` (e.g. near-duplicate groups) joined wherever two covers' name lines read alike; a group id per row.

    Covers without a name line keep their group. Joins are transitive, like near-duplicate groups.
    """
    groups = np.asarray(groups)
    names = [name_line(text) for text in texts]
    named = np.flatnonzero([bool(name) for name in names])
    rows = [np.arange(len(groups))]
    columns = [np.unique(groups, return_index=True)[1][np.unique(groups, return_inverse=True)[1]]]
    if len(named) > 1:
        vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit_transform(
            [names[row] for row in named]
        )
        close = (vectors @ vectors.T).tocoo()
        alike = close.data >= similarity
        rows.append(named[close.row[alike]])
        columns.append(named[close.col[alike]])
    row, column = np.concatenate(rows), np.concatenate(columns)
    graph = coo_matrix((np.ones(len(row)), (row, column)), shape=(len(groups), len(groups)))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)
