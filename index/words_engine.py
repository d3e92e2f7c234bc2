"""The candidate stage of words queries: a tantivy inverted index of each cover's character n-grams.

Scoring every cover's words model row costs time in proportion to the collection (over a second a query at a
million covers); the postings of the query's n-grams name the few covers that can score at all, and BM25 over
them picks the ones worth scoring exactly. The documents are the stored words model's own n-grams (the terms of
each cover's row, index.words), so the engine and the model always agree on what an n-gram is, and an index can
(re)build its engine from its words file alone. Each document stores its index row in a fast field.

The engine is a folder (``words-<generation>.tantivy``) that index.store writes and switches with the rest of
a generation; opening it maps its segment files, so a reader keeps answering after a later build deletes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tantivy

_GRAMS = "grams"
_ROW = "row"
_TOKENIZER = "sleeve_grams"
_SEPARATOR = "\n"
"""Between a document's n-grams: never inside one (recsys.textsearch.normalise keeps only letters and digits,
padded with spaces)."""
_WRITER_HEAP = 64 * 1024 * 1024


class WordsEngineError(ValueError):
    """An engine folder that cannot be opened or does not fit its index; the message says what is wrong."""


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(_GRAMS, tokenizer_name=_TOKENIZER, index_option="freq")
    builder.add_integer_field(_ROW, indexed=False, fast=True)
    return builder.build()


def _open(index: tantivy.Index) -> tantivy.Index:
    """Register the tokenizer that splits a document back into its n-grams (one per line, kept whole)."""
    index.register_tokenizer(_TOKENIZER, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(r"[^\n]+")).build())
    return index


def write_engine(path: str | Path, terms: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> None:
    """Write the engine of the covers whose n-grams are ``terms[indices[indptr[row]:indptr[row + 1]]]`` (the
    CSR cover rows of a words model) into the new folder ``path``; covers without n-grams get no document."""
    os.mkdir(path)
    index = _open(tantivy.Index(_schema(), path=str(path), reuse=False))
    writer = index.writer(_WRITER_HEAP, 1)
    for row in np.flatnonzero(np.diff(indptr)):
        grams = terms[indices[indptr[row] : indptr[row + 1]]]
        writer.add_document(tantivy.Document(**{_ROW: int(row), _GRAMS: _SEPARATOR.join(grams)}))
    writer.commit()
    writer.wait_merging_threads()


class WordsEngine:
    """An open engine folder: ``candidates`` answers which rows share a query's n-grams, best by BM25 first."""

    def __init__(self, path: str | Path, count: int) -> None:
        """Open ``path`` for an index of ``count`` covers (its segments mapped now, see the module)."""
        if not Path(path).is_dir():
            raise FileNotFoundError(2, "no engine folder", str(path))
        try:
            index = _open(tantivy.Index.open(str(path)))
            self._searcher = index.searcher()
        except (ValueError, OSError) as error:
            raise WordsEngineError(f"not a words engine ({str(error).splitlines()[0][:160]})") from None
        if self._searcher.num_docs > count:
            raise WordsEngineError(f"{self._searcher.num_docs} documents for {count} covers")
        self._schema, self.count = index.schema, count

    def candidates(self, grams: Iterable[str], limit: int) -> np.ndarray:
        """The rows of up to ``limit`` covers holding any of ``grams``, best by BM25 first."""
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, _GRAMS, gram)) for gram in set(grams)]
        )
        hits = self._searcher.search(query, limit, count=False).hits
        rows = np.array(self._searcher.fast_field_values(_ROW, [address for _, address in hits]), dtype=np.int64)
        return rows[(rows >= 0) & (rows < self.count)]
