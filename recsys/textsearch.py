"""Compare covers by the words printed on them, robust to OCR errors: character n-grams of normalised text.

OCR drops spaces and confuses letters ("ALANIACKSON" for "ALAN JACKSON"), so words are compared by their
character 3-grams, taken with the spaces removed so that a lost space costs nothing, and weighted by TF-IDF
over the collection so that "records" or "stereo" count less than a name. OCR also splits a name over two
lines ("ALAN" / "JACKSON"), so each pair of adjacent lines counts as one more line. Plain functions over arrays.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from scipy import sparse

NGRAM = 3
"""Characters per n-gram: three, so that an n-gram packs into one int64 (_gram_codes)."""
MIN_LINE_CHARS = 4
"""Printed lines shorter than this ("CD", "2") are too common to say that two covers share words."""
_NOT_A_LETTER = re.compile(r"[\W_]+")
_CODE_BITS = 21
"""Bits of one character in an n-gram's code: every code point is below 2**21."""


def normalise(text: str) -> str:
    """Lower case, accents stripped, only letters and digits, words joined: "Alan  JACKSON!" -> "alanjackson"."""
    kept = _NOT_A_LETTER.sub("", unicodedata.normalize("NFKD", text.lower()))
    # both filters drop single characters, so their order does not matter; OCR text is mostly ASCII, which
    # holds no combining marks, so the slow per-character test only runs on what else is left
    return kept if kept.isascii() else "".join(c for c in kept if not unicodedata.combining(c))


def printed_lines(text: str) -> list[str]:
    """The OCR lines of a cover text, empty ones dropped, then each pair of adjacent lines joined: a name
    split over two lines matches as a whole (measured in bench/hybrid.py and bench/textsearch.py)."""
    lines = [line for line in text.splitlines() if normalise(line)]
    return lines + [first + second for first, second in zip(lines, lines[1:])]


def _lines(text: str) -> list[str]:
    """The normalised printed lines of a cover text (see printed_lines), each line normalised once."""
    raw, lines = [], []
    for line in text.splitlines():
        if normalised := normalise(line):
            raw.append(line)
            lines.append(normalised)
    # an ASCII pair normalises to its lines' forms joined; others may not ("ΑΣ" + "Β": a final sigma no more)
    pairs = [lines[i] + lines[i + 1] if raw[i].isascii() and raw[i + 1].isascii() else normalise(raw[i] + raw[i + 1])
             for i in range(len(raw) - 1)]
    return lines + pairs


def _analyse(text: str) -> list[str]:
    """Character n-grams of each printed line and adjacent pair (never across lines further apart, whose
    order OCR does not fix): the definition of what a row counts, as sklearn's analyzer; _gram_codes computes
    the same for many texts at once."""
    grams = []
    for line in _lines(text):
        padded = f" {line} "
        grams.extend(padded[i : i + NGRAM] for i in range(len(padded) - NGRAM + 1))
    return grams


@dataclasses.dataclass(frozen=True)
class TextModel:
    """TF-IDF n-gram rows of a collection's cover texts: one per cover (unit length, all zero without text)
    and one per printed line (``line_owner`` names its cover; a cover's lines are contiguous), over the
    vocabulary ``terms`` (sorted, one column each) weighted by ``idf``. build-index stores it with the index
    (model_arrays); a query loads it (model_from_arrays) and only vectorises its own text."""

    terms: np.ndarray
    idf: np.ndarray
    covers: sparse.csr_matrix
    lines: sparse.csr_matrix
    line_owner: np.ndarray


def fit_text_vectors(texts: Sequence[str]) -> TextModel:
    """Fit the collection's TF-IDF model (IDF over covers) and vectorise every cover and printed line, as
    sklearn's ``TfidfVectorizer(analyzer=_analyse, sublinear_tf=True, dtype=np.float32)`` would (the same
    vocabulary, smoothed IDF and rows; tests/test_words.py compares them). Each printed line's n-grams are found
    once, as integer codes, for its cover's row and its own: what lets build-index fit a million covers."""
    grams = _gram_codes(texts)
    codes = np.unique(grams.codes)
    terms = _terms(codes)
    columns = np.searchsorted(codes, grams.codes)  # faster than np.unique's inverse (a sort of every n-gram)
    covers, lines, owner = _counts(grams, columns, len(terms))
    document_frequency = np.bincount(covers.indices, minlength=len(terms)).astype(np.float32) + 1
    idf = np.full_like(document_frequency, len(texts) + 1)  # smoothed, in float32, as sklearn computes it
    idf /= document_frequency
    np.log(idf, out=idf)
    idf += 1
    return TextModel(terms, idf, _tfidf(covers, idf), _tfidf(lines, idf), owner)


def vectorise(model: TextModel, texts: Sequence[str]) -> sparse.csr_matrix:
    """TF-IDF rows of ``texts`` over the model's vocabulary (n-grams it lacks are dropped): 1 + log of each
    n-gram's count, times its IDF, each row scaled to unit length."""
    return _vectorise(model.terms, model.idf, texts)[0]


def _vectorise(
    terms: np.ndarray, idf: np.ndarray, texts: Sequence[str]
) -> tuple[sparse.csr_matrix, sparse.csr_matrix, np.ndarray]:
    """(rows of ``texts``, rows of their printed lines, the text of each line) over the vocabulary ``terms``."""
    grams = _gram_codes(texts)
    columns, known = _columns(terms, grams.codes)
    in_vocabulary = dataclasses.replace(grams, codes=grams.codes[known], line=grams.line[known])
    covers, lines, owner = _counts(in_vocabulary, columns[known], len(terms))
    return _tfidf(covers, idf), _tfidf(lines, idf), owner


def update_text_vectors(model: TextModel, kept: np.ndarray, texts: Sequence[str]) -> TextModel:
    """The model of a changed collection with the model's vocabulary and IDF kept, not refitted: row ``r`` is
    the model's cover row ``kept[r]`` (with its printed lines) where ``kept[r] >= 0``, a cover it holds whose
    text is unchanged, else ``texts[r]`` vectorised over the stored vocabulary and IDF (as ``vectorise``); the
    covers no ``kept`` names are dropped. What an incremental build-index stores while the collection has not
    drifted from the last fit (recsys.textstore.words_model): its cost grows with the covers added, not the
    collection."""
    kept = np.asarray(kept, dtype=np.int64)
    added = np.flatnonzero(kept < 0)
    new_covers, new_lines, new_owner = _vectorise(model.terms, model.idf, [texts[row] for row in added])
    from scipy import sparse

    covers = sparse.vstack([model.covers, new_covers], format="csr")
    lines = sparse.vstack([model.lines, new_lines], format="csr")
    source = kept.copy()
    source[added] = model.covers.shape[0] + np.arange(len(added))
    # each cover's run of lines in the stacked rows: the stored ones, then the added covers' after them
    owner = np.concatenate([model.line_owner, new_owner + model.covers.shape[0]])
    starts = np.searchsorted(owner, source, side="left")
    sizes = np.searchsorted(owner, source, side="right") - starts
    picked = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
    line_owner = np.repeat(np.arange(len(kept), dtype=np.int64), sizes)
    return TextModel(model.terms, model.idf, covers[source], lines[picked], line_owner)


def unknown_grams(model: TextModel, texts: Sequence[str]) -> tuple[int, int]:
    """(n-grams of ``texts`` missing from the model's vocabulary, all their n-grams), occurrences counted: how
    far new covers' words stray from what the model was fitted on."""
    codes = _gram_codes(texts).codes
    _, known = _columns(model.terms, codes)
    return int(len(codes) - known.sum()), len(codes)


@dataclasses.dataclass(frozen=True)
class _Grams:
    """The n-grams of a number of ``texts`` (_analyse's, in its order): each one's code (_gram_codes) and the
    printed line it comes from (``line``, an index into ``owner`` and ``length``); each printed line's text and
    its normalised length."""

    texts: int
    codes: np.ndarray
    line: np.ndarray
    owner: np.ndarray
    length: np.ndarray


def _gram_codes(texts: Sequence[str]) -> _Grams:
    """The n-grams of ``texts``: each printed line normalised once (_lines), all of them padded and joined
    into one array of code points, and each n-gram's characters read from it at once and packed into an int64
    (``_CODE_BITS`` a character) whose order is the n-gram's string order."""
    lines: list[str] = []
    sizes = []
    for text in texts:
        found = _lines(text)
        lines.extend(found)
        sizes.append(len(found))
    length = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    chars = np.frombuffer("".join(f" {line} " for line in lines).encode("utf-32-le"), dtype=np.uint32)
    per_line = length + 3 - NGRAM  # n-grams of each padded line
    line = np.repeat(np.arange(len(lines)), per_line)
    first_char = np.cumsum(length + 2) - (length + 2)
    first_gram = np.cumsum(per_line) - per_line
    starts = np.repeat(first_char - first_gram, per_line) + np.arange(len(line))
    codes = np.zeros(len(line), dtype=np.int64)
    for offset in range(NGRAM):
        codes <<= _CODE_BITS
        codes |= chars[starts + offset]
    return _Grams(len(texts), codes, line, np.repeat(np.arange(len(texts)), sizes), length)


def _terms(codes: np.ndarray) -> np.ndarray:
    """The n-grams (strings) of ``codes`` (_gram_codes)."""
    chars = np.empty((len(codes), NGRAM), dtype=np.uint32)
    for offset in range(NGRAM):
        chars[:, offset] = (codes >> (_CODE_BITS * (NGRAM - 1 - offset))) & ((1 << _CODE_BITS) - 1)
    return chars.view(f"<U{NGRAM}").ravel()


def _columns(terms: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(column of each n-gram of ``codes`` in the sorted vocabulary ``terms``, whether it is there at all)."""
    grams = _terms(codes)
    columns = np.searchsorted(terms, grams)
    known = columns < len(terms)
    known[known] = terms[columns[known]] == grams[known]
    return columns, known


def _counts(grams: _Grams, columns: np.ndarray, width: int) -> tuple[
    sparse.csr_matrix, sparse.csr_matrix, np.ndarray
]:
    """(n-gram counts of each text, of each of its printed lines of at least MIN_LINE_CHARS, the text of each
    such line) from ``grams`` and the column of each of its n-grams."""
    covers = _count(grams.owner[grams.line], columns, (grams.texts, width))
    long = grams.length >= MIN_LINE_CHARS
    row = np.cumsum(long) - 1  # of each long line, among the long ones
    mine = long[grams.line]
    lines = _count(row[grams.line[mine]], columns[mine], (int(long.sum()), width))
    return covers, lines, grams.owner[long]


def _count(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """How often each column occurs in each row, duplicates summed and indices sorted."""
    from scipy import sparse  # only when words are asked for: a look query stays light

    counts = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, columns)), shape=shape)
    counts.sum_duplicates()
    return counts


def _tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear TF times IDF, rows scaled to unit length (all-zero rows stay zero), in sklearn's order of
    float32 operations with the norms summed in float64."""
    data = np.log(counts.data)
    data += 1
    data *= idf[counts.indices]
    owner = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    norms = np.sqrt(np.bincount(owner, weights=data * data, minlength=counts.shape[0]))
    data = (data / np.where(norms > 0, norms, 1.0)[owner]).astype(np.float32)
    from scipy import sparse

    return sparse.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape)


def model_arrays(model: TextModel) -> dict[str, np.ndarray]:
    """The model as the flat arrays an index stores (index.words.WORDS_ARRAYS)."""
    arrays = {"terms": model.terms, "idf": model.idf, "line_owner": model.line_owner}
    for part, rows in (("covers", model.covers), ("lines", model.lines)):
        arrays |= {f"{part}_data": rows.data, f"{part}_indices": rows.indices, f"{part}_indptr": rows.indptr}
    return arrays


def model_from_arrays(arrays: dict[str, np.ndarray]) -> TextModel:
    """The model stored as ``arrays`` (model_arrays), sharing their memory: memory-mapped arrays stay mapped."""
    from scipy import sparse

    def rows(part: str) -> sparse.csr_matrix:
        indptr = arrays[f"{part}_indptr"]
        return sparse.csr_matrix(
            (arrays[f"{part}_data"], arrays[f"{part}_indices"], indptr), shape=(len(indptr) - 1, len(arrays["terms"]))
        )

    return TextModel(arrays["terms"], arrays["idf"], rows("covers"), rows("lines"), arrays["line_owner"])


def _split_lines(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    lines, owner = [], []
    for row, text in enumerate(texts):
        for line in printed_lines(text):
            if len(normalise(line)) >= MIN_LINE_CHARS:
                lines.append(line)
                owner.append(row)
    return lines, np.array(owner, dtype=np.int64)


def words_similarity(
    model: TextModel, text: str, rows: np.ndarray | None = None, *, typed: bool = False
) -> np.ndarray:
    """How much each cover says the same words as ``text``, in [0, 1]: the mean of the whole texts' cosine
    and the best line score between any printed line of each (words_similarities: a name of the query printed on
    the cover counts fully even when the rest of the text differs; ``typed`` as there). Only the covers ``rows``
    (in their order) when given: their rows and their printed lines' rows are all a query then touches, whatever
    the collection's size."""
    return words_similarities(model, vectorise_queries(model, [text]), rows, typed=typed)[:, 0]


@dataclasses.dataclass(frozen=True)
class Queries:
    """Query texts vectorised over a model once (_vectorise): one row each (``covers``), the rows of their
    printed lines (``lines``) and the text each line belongs to (``line_owner``, ascending). A query and its
    feedback covers are scored against the same candidates in one sparse product (words_similarities), and a
    text vectorised for the candidate engine is not vectorised again for the scoring."""

    covers: sparse.csr_matrix
    lines: sparse.csr_matrix
    line_owner: np.ndarray

    def __len__(self) -> int:
        return self.covers.shape[0]

    def grams(self, model: TextModel, text: int) -> np.ndarray:
        """The n-grams of query text number ``text`` that the model's vocabulary holds (known_grams)."""
        return model.terms[self.covers.indices[self.covers.indptr[text] : self.covers.indptr[text + 1]]]


def vectorise_queries(model: TextModel, texts: Sequence[str]) -> Queries:
    """``texts`` vectorised over the model's vocabulary and IDF, as Queries."""
    return Queries(*_vectorise(model.terms, model.idf, texts))


def stack_queries(first: Queries, second: Queries) -> Queries:
    """The texts of ``first``, then those of ``second``, as one Queries."""
    from scipy import sparse

    return Queries(sparse.vstack([first.covers, second.covers], format="csr"),
                   sparse.vstack([first.lines, second.lines], format="csr"),
                   np.concatenate([first.line_owner, second.line_owner + len(first)]))


LINE_INFORMATIVE_SHARE = 5.0
"""A query's printed line counts fully in words_similarities when its summed n-gram IDF reaches this many times
the largest IDF (informative_idf); a line that says less ("LIVE", "STEREO": few n-grams, printed everywhere)
counts in proportion. Scale-free, as IDFs grow with ln(covers). Chosen on half A of the planted artist covers
among 10k and 100k distractors and confirmed on half B (bench/words_variants.py, docs/words.md: the same
precision as an absolute sum of 60 there, within 0.003 on every half; +0.008 without distractors, +0.034 at 10k,
+0.052 at 100k over the cosine line score); an absolute 60 weighed every line down in a collection of a few
dozen covers."""


def informative_idf(model: TextModel, share: float = LINE_INFORMATIVE_SHARE) -> float:
    """The summed IDF at which a query line counts fully: ``share`` times ln(covers + 1) + 1, the bound of the
    model's smoothed IDF."""
    return share * (float(np.log(model.covers.shape[0] + 1)) + 1.0)


def words_similarities(
    model: TextModel, queries: Queries, rows: np.ndarray | None = None, *, typed: bool = False
) -> np.ndarray:
    """words_similarity of each cover (or of the covers ``rows``, in their order) against each of the
    ``queries``' texts, one column each (float32): every text in the same two sparse products. Each score
    is the one words_similarity gives the text alone (a product's entry sums over the cover's n-grams in
    their order, whatever the other columns; maxima are exact).

    A cover's text as the query (the default: recommend --by words / both, hybrid.CollectionScores) scores a
    line pair from the query line's view (issue 27): the share of its weight on n-grams the cover's line holds
    (line_containment), times min(1, its summed IDF / informative_idf), so that a cover line holding only part
    of a name ("POWER" for "POWERWOLF") or a query line that says little ("LIVE") counts less. A ``typed``
    query (search) keeps the cosine of the two lines: a typed name is one line that a cover often prints only
    in part ("MOZART" for "Wolfgang Amadeus Mozart"), which containment scores too low (artist search
    0.711 -> 0.700, docs/words.md). Covers being most callers, they are the default. The neighbour graph keeps
    the cosine too (words_similarity_rows), which its compiled pass (recsys.pairscore) computes in place."""
    covers = model.covers if rows is None else model.covers[rows]
    whole = (covers @ queries.covers.T).toarray()
    if not (queries.lines.shape[0] and model.lines.shape[0]):
        return 0.5 * whole  # no printed line on one side: no line pair to score
    if rows is None:
        own_lines, owner = model.lines, model.line_owner
    else:  # a cover's lines are contiguous: each row's run of lines, found by bisection
        starts, sizes = _line_runs(model.line_owner, rows)
        owner = np.repeat(np.arange(len(rows)), sizes)
        own_lines = model.lines[np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(len(owner))]
    if typed:  # sparse: most line pairs share no n-gram
        pairs = own_lines @ queries.lines.T
        scores = pairs.data
    else:
        pairs = line_containment(own_lines, queries.lines)
        weight = np.minimum(1.0, line_idf_sums(queries.lines, model.idf) / informative_idf(model))
        scores = pairs.data * weight[pairs.indices]
    return 0.5 * whole + 0.5 * best_line_scores(pairs, owner, queries.line_owner, scores, whole.shape)


def best_line_scores(pairs: sparse.csr_matrix, owner: np.ndarray, query_line_owner: np.ndarray,
                     values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The best of ``values`` (one per stored entry of ``pairs``: a cover line, owned by cover ``owner[i]`` of
    row i, against a query line, owned by text ``query_line_owner[j]`` of column j) for each (cover, text), float32;
    0 where no line pair shares an n-gram."""
    best = np.zeros(shape, dtype=np.float32)  # C order: the ravel below is a view of it
    cover = np.repeat(owner, np.diff(pairs.indptr))
    np.maximum.at(best.ravel(), cover * shape[1] + query_line_owner[pairs.indices], values.astype(np.float32))
    return best


def line_containment(cover_lines: sparse.csr_matrix, query_lines: sparse.csr_matrix) -> sparse.csr_matrix:
    """(cover line, query line): the share of the query line's TF-IDF weight (L1) on n-grams the cover line
    holds, stored only where they share one: 1 when the cover line holds all of them, whatever else it prints.
    The cover lines as n-gram sets (their weights set to 1) against query lines scaled to unit L1 weight."""
    from scipy import sparse

    held = sparse.csr_matrix((np.ones(cover_lines.nnz, dtype=np.float32), cover_lines.indices, cover_lines.indptr),
                             shape=cover_lines.shape)
    shares = query_lines.tocsr(copy=True)
    totals = _row_sums(shares, shares.data)
    totals[totals == 0] = 1.0  # a line with no n-gram the model knows
    shares.data = (shares.data / np.repeat(totals, np.diff(shares.indptr))).astype(np.float32)
    return (held @ shares.T).tocsr()


def line_idf_sums(lines: sparse.csr_matrix, idf: np.ndarray) -> np.ndarray:
    """The summed IDF of each line's distinct n-grams: how much a line can say about a cover."""
    return _row_sums(lines, idf[lines.indices])


def _row_sums(rows: sparse.csr_matrix, values: np.ndarray) -> np.ndarray:
    """The sum of ``values`` (one per stored entry of ``rows``) over each row, in float64; empty rows sum to 0."""
    owner = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))
    return np.bincount(owner, weights=values.astype(np.float64), minlength=rows.shape[0])


def _line_runs(line_owner: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first line, number of lines) of each of ``rows`` in the ascending ``line_owner``. Bisected for the rows
    in ascending order, then put back in theirs: a million covers' owners are 30 MB, and each search of rows in
    a words engine's order misses the cache all the way down (1.1 ms for 1,000 rows, 0.35 ms sorted)."""
    order = np.argsort(rows, kind="stable")
    ascending = np.asarray(rows)[order]
    starts, sizes = np.empty(len(order), dtype=np.int64), np.empty(len(order), dtype=np.int64)
    starts[order] = np.searchsorted(line_owner, ascending, side="left")
    sizes[order] = np.searchsorted(line_owner, ascending, side="right") - starts[order]
    return starts, sizes


def known_grams(model: TextModel, text: str) -> np.ndarray:
    """The n-grams of ``text`` that the model's vocabulary holds: the only ones that can make a cover score."""
    return model.terms[vectorise(model, [text]).indices]


def words_similarity_rows(model: TextModel, rows: np.ndarray) -> np.ndarray:
    """How much each indexed cover in ``rows`` (ascending) says the same words as every cover, one row each, in
    a few sparse products instead of one query per cover: what a graph over the whole collection needs. Its
    line score is the symmetric cosine of two lines (a link's weight is the same from either end), as the
    graph's compiled pass (recsys.pairscore) computes it, not a query's view (words_similarities)."""
    rows = np.asarray(rows, dtype=np.int64)
    whole = (model.covers[rows] @ model.covers.T).toarray()
    best = np.zeros(whole.shape, dtype=whole.dtype)  # C order: the ravel below is a view of it
    owner = model.line_owner
    mine = np.flatnonzero(np.isin(owner, rows))  # the lines of ``rows`` (a cover's lines are contiguous)
    if len(mine):
        pairs = (model.lines[mine] @ model.lines.T).toarray()
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # each cover's first line
        per_cover = np.maximum.reduceat(pairs, starts, axis=1)  # best over the other cover's lines
        firsts = np.flatnonzero(np.r_[True, owner[mine][1:] != owner[mine][:-1]])
        per_pair = np.maximum.reduceat(per_cover, firsts, axis=0)  # and over this cover's lines
        best[np.searchsorted(rows, owner[mine][firsts])[:, None], owner[starts][None, :]] = per_pair
    return 0.5 * whole + 0.5 * best


class CandidateEngine(Protocol):
    """What a words query asks of an inverted index (index.words_engine.WordsEngine)."""

    def candidates(self, grams: Iterable[str], limit: int) -> np.ndarray: ...


CANDIDATES = 1000
"""How many covers a words query scores when the index has a candidate engine: the engine's best by BM25 over
the query's n-grams. Measured on 2,010 real OCR cover texts, each as a query (docs/words.md): the same top 10 as
scoring every cover for 1,692 of 1,862 queries with 100 candidates, 1,833 with 250, 1,859 with 500, all with
1,000."""


def words_scores(
    model: TextModel, text: str, engine: CandidateEngine | None, allowed: np.ndarray, k: int, *, typed: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, words_similarity) of the ``allowed`` covers (a mask over the index rows) that a words query for
    ``text`` ranks to find its best ``k``; every other allowed cover scores 0. With an ``engine``, its best
    CANDIDATES covers; all allowed covers when they are that few anyway, without an engine, or when a filter
    leaves fewer than ``k`` candidates that share any words (the engine ranks before the filter). ``typed``: a
    typed search rather than a cover's text (words_similarities)."""
    query = vectorise_queries(model, [text])  # its n-grams found once, for the engine and the scoring both
    if np.count_nonzero(allowed) <= CANDIDATES:
        every = np.flatnonzero(allowed)
        return every, words_similarities(model, query, every, typed=typed)[:, 0]
    if engine is not None:  # the rows of every allowed cover are only listed when all of them are scored
        found = engine.candidates(query.grams(model, 0), CANDIDATES)
        rows = found[allowed[found]]
        scores = words_similarities(model, query, rows, typed=typed)[:, 0]
        if np.count_nonzero(scores > 0) >= k or len(found) < CANDIDATES:
            return rows, scores
    every = np.flatnonzero(allowed)
    return every, words_similarities(model, query, typed=typed)[every, 0]


def best_by_words(
    model: TextModel, text: str, engine: CandidateEngine | None, allowed: np.ndarray, k: int, *, typed: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of the best ``k`` ``allowed`` covers that share any words with ``text``, best first (ties
    in row order), through the candidate stage (words_scores; ``typed`` as there)."""
    rows, scores = words_scores(model, text, engine, allowed, k, typed=typed)
    matched = np.flatnonzero(scores > 0)
    best = matched[np.argsort(-scores[matched], kind="stable")[:k]]
    return rows[best], scores[best]
