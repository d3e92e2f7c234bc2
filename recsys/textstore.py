"""The printed text of an index's covers, read once at build time and kept with the index.

``build-index --read-text`` OCRs every distinct cover once (recsys.ocr caches each reading by content hash,
so re-runs and interrupted runs read only what is new) and the index folder stores one row per content hash
(see index.store.write_index), and the covers' look-and-words neighbour graph, which compares each cover with
its candidates and so is built once here rather than per query. Recommendations by words and search then never
run OCR on indexed covers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from index.errors import SleeveError
from index.rowtext import texts_of_rows
from index.store import CoverIndex, load_index
from index.words import FIT_STATE
from recsys import hybrid, textsearch
from recsys.cache import default_cache_dir
from recsys.ocr import (
    OPENVINO,
    ReaderSettings,
    TextCache,
    cover_text,
    read_missing,
    reader_key,
    reader_name,
)
from recsys.ocr_readers import OCR_READERS

if TYPE_CHECKING:
    from scipy import sparse

    from recsys.distribute import Distributor

TEXT_COLUMNS = ["content_hash", "text", "reader"]


class NoTextError(SleeveError):
    """The index was built without cover text, so it cannot answer by words."""


def no_text_message(index_dir: str | Path) -> str:
    """The one line that tells a user how to add text to an index."""
    return (
        f"the index in {index_dir} holds no cover text; add it with: "
        f"python cli.py build-index --read-text --index {index_dir} (and the same --covers or --manifest)"
    )


def read_cover_texts(
    files: pd.DataFrame,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    distributor: Distributor | None = None,
    settings: ReaderSettings = OPENVINO,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """OCR what the cache lacks of ``files`` (columns path, content_hash) and return
    (texts: content_hash, text, reader, one row per distinct hash; failures: content_hash, reason).

    A cover that cannot be read gets an empty text (it is still indexed by its look). The covers are read by a
    reader of ``settings`` (recsys.ocr_readers.OCR_READERS), on the workers of a ``distributor``
    (build-index --cluster) when one is given.
    """
    distinct = files.drop_duplicates("content_hash")[["path", "content_hash"]]
    key = reader_key(settings=settings)
    with TextCache(cache_dir or default_cache_dir()) as cache:
        if distributor is None:
            failures = read_missing(distinct, None, cache, progress, settings)
        else:
            from recsys.distribute import ReaderRecipe, read_text_distributed

            failures = read_text_distributed(
                distinct, cache, distributor, ReaderRecipe(settings=settings), progress=progress
            )
        found = cache.get(key, list(distinct["content_hash"]))
    texts = pd.DataFrame(
        {
            "content_hash": distinct["content_hash"].to_numpy(),
            "text": [cover_text(found.get(h, [])) for h in distinct["content_hash"]],
            "reader": key,
        }
    )
    return texts, failures


def reader_settings_of(index: CoverIndex | None, asked: str | None = None) -> ReaderSettings:
    """The reader for an index's cover text: the one ``asked`` for by name (recsys.ocr_readers.OCR_READERS),
    else the one that read the text it holds (so a later build or a query reads as the first build did), else
    "exact"."""
    if asked is not None:
        return OCR_READERS[asked].load()
    stored = None if index is None else index.texts
    if stored is not None and len(stored):
        name = reader_name(str(stored["reader"].iloc[0]))
        if name is not None:
            return OCR_READERS[name].load()
    return OPENVINO


def row_texts(content_hashes: Iterable[str], texts: pd.DataFrame) -> np.ndarray:
    """The cover text of each of ``content_hashes`` ("" where none was found) from ``texts``, one row per content
    hash as read_cover_texts returns it and the index stores it."""
    return np.array(texts_of_rows(content_hashes, texts), dtype=object)


def texts_by_row(index: CoverIndex) -> np.ndarray | None:
    """Each index row's cover text ("" where none was found), or None when the index holds no text."""
    if index.row_texts is not None:
        return np.array(list(index.row_texts), dtype=object)
    stored = index.texts
    return None if stored is None else row_texts(index.metadata["content_hash"], stored)


def row_texts_of(index: CoverIndex) -> Sequence[str] | None:
    """Each index row's cover text as a query reads it: decoded per row from the stored row texts, or all at
    once for an index written before sleeve stored them; None when the index holds no text."""
    return index.row_texts if index.row_texts is not None else texts_by_row(index)


def words_model(metadata: pd.DataFrame, texts: pd.DataFrame) -> textsearch.TextModel:
    """The words model of the index rows ``metadata`` with ``texts`` as read_cover_texts returns them, fitted from
    scratch (as build-index fits a new index, or one whose collection drifted: updated_words_model)."""
    return textsearch.fit_text_vectors(list(row_texts(metadata["content_hash"], texts)))


REFIT_SHARE = 0.01
"""An incremental build keeps the stored vocabulary and IDF (textsearch.update_text_vectors) while the covers
added or removed since the last full fit are at most this share of the covers fitted then, and refits past it.
Measured by bench/words_incremental.py (docs/words.md, "Incremental builds"), models fitted on half of the 755
artist covers and of the 4,450 shared covers, then grown (or churned) against a refit: words queries' top 10 agree
with the refit's for 0.993-0.996 of their results at 1% changed, 0.9895-0.995 at 2%, 0.970-0.983 at 10%;
same-artist precision@10 by words stays within 0.002 of the refit's even at 100% added (0.595 against 0.594).
The share of the added covers' n-grams missing from the vocabulary cannot tell: it stays at 6-14%
whether 1% or 100% was added."""


def updated_words_model(
    metadata: pd.DataFrame, texts: pd.DataFrame, previous: CoverIndex | None
) -> tuple[textsearch.TextModel, np.ndarray]:
    """The words model of the index rows ``metadata`` (with ``texts`` as read_cover_texts returns them) and its
    fit state (index.words.FIT_STATE): the ``previous`` index's stored model updated (its vocabulary and IDF kept,
    the new covers vectorised with them, the gone ones dropped) while the changes since its last fit stay within
    REFIT_SHARE, else a full fit. A cover counts as kept when the previous index holds its content with the same
    text (another reader's text makes it new)."""
    rows = list(row_texts(metadata["content_hash"], texts))
    stored = None if previous is None else previous.words
    old_texts = None if previous is None else texts_by_row(previous)
    if stored is None or old_texts is None:
        return textsearch.fit_text_vectors(rows), np.array([len(rows), 0], dtype=np.int64)
    old_rows = {}
    for row, (digest, text) in enumerate(zip(previous.metadata["content_hash"], old_texts)):
        old_rows.setdefault((digest, str(text)), row)
    kept = np.array([old_rows.get(key, -1) for key in zip(metadata["content_hash"], rows)], dtype=np.int64)
    added = int(np.count_nonzero(kept < 0))
    fitted, changed = stored[FIT_STATE] if FIT_STATE in stored else (len(old_texts), 0)
    changed = int(changed) + added + abs(len(old_texts) - (len(rows) - added))  # removed, or duplicates added
    if changed > REFIT_SHARE * int(fitted):
        return textsearch.fit_text_vectors(rows), np.array([len(rows), 0], dtype=np.int64)
    model = textsearch.update_text_vectors(textsearch.model_from_arrays(stored), kept, rows)
    return model, np.array([fitted, changed], dtype=np.int64)


def neighbour_table(
    metadata: pd.DataFrame, embeddings: np.ndarray, texts: pd.DataFrame, model: textsearch.TextModel
) -> pd.DataFrame:
    """The look-and-words neighbour graph (recsys.hybrid.neighbour_graph) of the index rows ``metadata`` (with
    ``embeddings``, one per row, ``texts`` as read_cover_texts returns them and their words_model), as the edge
    table the index stores (row, neighbour, weight; each link both ways). Built from candidates, in time linear
    in the number of covers, so every index with text gets one."""
    rows = list(row_texts(metadata["content_hash"], texts))
    graph = hybrid.neighbour_graph(embeddings, model, rows).tocoo()
    return pd.DataFrame(
        {"row": graph.row.astype(np.int64), "neighbour": graph.col.astype(np.int64), "weight": graph.data}
    )


def graph_of(index: CoverIndex) -> sparse.csr_matrix | None:
    """The index's stored neighbour graph as a sparse matrix, or None when it holds none (built without text,
    or by a version of sleeve that stored none)."""
    table = index.neighbours
    if table is None:
        return None
    from scipy import sparse

    count = index.info.count
    return sparse.csr_matrix((table["weight"], (table["row"], table["neighbour"])), shape=(count, count))


def load_index_with_texts(folder: str | Path) -> tuple[CoverIndex, list[str]]:
    """An index and its rows' cover texts; a :class:`NoTextError` if it was built without them."""
    index = load_index(folder)
    texts = texts_by_row(index)
    if texts is None:
        raise NoTextError(no_text_message(folder))
    return index, [str(text) for text in texts]
