"""Answer "which covers look like this one?" (or "like this text") from an index.

Like rclip's search object, a :class:`Recommender` receives a ready index (from a folder or built in memory)
and the encoder that made its vectors; :meth:`Recommender.open` makes both from a folder. The query is always
encoded by the index's own model, and a query cover is read, hashed, decoded and encoded once
(:class:`QueryCover`). A query cover that is itself in the index (same content hash) is left out of its own
results. A genre or metadata filter searches the matching covers exactly. An index that holds cover text
(build-index --read-text) also ranks by the printed words, alone or fused with the look (recsys.hybrid),
and is searchable by words (recsys.textsearch).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache, cached_property
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from index.faiss_index import RERANK_FACTOR, search
from index.registry import INDEX_TYPES
from index.store import SHOWN_FIELDS, CoverIndex, ModelMismatchError, load_index, shown_name, user_columns
from recsys import hybrid, textsearch
from recsys.encoders import Encoder, ModelSpec
from recsys.encoders.base import stack_preprocessed
from recsys.errors import QueryError
from recsys.filters import row_mask
from recsys.images import DEFAULT_MAX_PIXELS, BadImageError, load_cover, max_file_bytes, read_cover_bytes, to_rgb
from recsys.ingest import bytes_hash, printable_path
from recsys.settings import Settings
from recsys.textstore import (
    NoTextError,
    graph_of,
    no_text_message,
    read_cover_texts,
    reader_settings_of,
    row_texts_of,
)

if TYPE_CHECKING:
    from scipy import sparse

log = logging.getLogger(__name__)

Cover = str | Path | Image.Image
"""A query cover: a file, or an image already in memory."""

__all__ = ["Cover", "QueryCover", "QueryError", "Recommender", "open_index"]


@dataclasses.dataclass(frozen=True)
class QueryCover:
    """A query cover read once: its vector from the index's own model and, for a file, its path, its bytes
    (``source``, for a reader that needs the full image, such as OCR) and their SHA-256 (the index's content
    hash). For an image given in memory, ``source`` is that image and there is no path or hash."""

    vector: np.ndarray
    source: bytes | Image.Image
    path: str | None = None
    content_hash: str | None = None


class Recommender:
    """An index and the encoder of its model, loaded once and queried many times."""

    def __init__(
        self,
        index: CoverIndex,
        encoder: Encoder | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        cache_dir: str | Path | None = None,
    ) -> None:
        """``encoder`` must be the index's own model; without one only vector and text-search queries work.
        ``cache_dir`` keeps the OCR readings of query covers that are not in the index."""
        if encoder is not None and encoder.spec.key != index.info.model_key:
            raise ModelMismatchError(
                f"the encoder makes {encoder.spec.key} vectors but the index holds {index.info.model_key} vectors"
            )
        self.index = index
        self.encoder = encoder
        self.max_pixels = max_pixels
        self.cache_dir = cache_dir

    @classmethod
    def open(cls, index_dir: str | Path, settings: Settings | None = None) -> Recommender:
        """The index in ``index_dir`` with its own encoder, built as ``settings`` say."""
        settings = settings or Settings()
        settings.limit_search_threads()
        index = load_index(index_dir)
        encoder = settings.encoder_for(ModelSpec.from_dict(index.info.model), index_dir)
        return cls(index, encoder, settings.max_pixels, settings.cache)

    def _encoder(self) -> Encoder:
        if self.encoder is None:
            raise QueryError("this index was given no encoder, so it answers vector queries only")
        return self.encoder

    # -- the query cover, read once ------------------------------------------------------------------------

    def read_query(self, cover: Cover) -> QueryCover:
        """Read, hash, decode and encode ``cover`` once; a :class:`QueryError` says why it cannot be used."""
        encoder = self._encoder()
        if isinstance(cover, Image.Image):
            return QueryCover(self._encode(to_rgb(cover)), cover)
        try:
            data = read_cover_bytes(cover, max_file_bytes(self.max_pixels), sniff=True)
            image = load_cover(data, self.max_pixels, reduce_to=encoder.input_size)
        except BadImageError as error:
            raise QueryError(f"cannot use {printable_path(str(cover))} as a query: {error}") from None
        return QueryCover(self._encode(image), data, str(cover), bytes_hash(data))

    def _encode(self, image: Image.Image) -> np.ndarray:
        encoder = self._encoder()
        return encoder.encode_images(stack_preprocessed([encoder.preprocess(image)]))[0]

    # -- cover text ----------------------------------------------------------------------------------------

    @property
    def has_text(self) -> bool:
        """The index holds the text printed on its covers (built with --read-text)."""
        return "text" in self.index.info.files

    @cached_property
    def texts(self) -> Sequence[str]:
        """Each index row's cover text ("" where none was found), indexed by a row or an array of rows."""
        texts = row_texts_of(self.index)
        if texts is None:
            raise NoTextError(no_text_message(self.index.folder))
        return texts

    @cached_property
    def _text_model(self) -> textsearch.TextModel:
        """The words model build-index stored (memory-mapped); fitted here only for an index built before
        sleeve stored it."""
        if self.index.words is not None:
            return textsearch.model_from_arrays(self.index.words)
        texts = list(self.texts)  # an index without text says so first
        log.warning("%s holds cover text but no words model, so each process fits one on its first words query; "
                    "run build-index on it again to store it", self.index.folder)
        return textsearch.fit_text_vectors(texts)

    @property
    def _words_engine(self) -> textsearch.CandidateEngine | None:
        """The index's words candidate engine; None for an index built without one (words then score every
        cover) or whose words model this process fitted itself."""
        return self.index.words_engine if self.index.words is not None else None

    @cached_property
    def _graph(self) -> sparse.csr_matrix | None:
        """The neighbour graph build-index stored with the text (None for an index built without it)."""
        graph = graph_of(self.index)
        if graph is None:
            log.warning("%s holds cover text but no neighbour graph, so --by both ranks "
                        "without it; run build-index on it again to add it", self.index.folder)
        return graph

    def text_of(self, cover: str | Path | QueryCover, same_content: np.ndarray | None = None) -> str:
        """The text printed on a cover: the stored reading for an indexed cover (same content), else OCR.
        ``same_content``: the mask of the index rows of the cover's content where the caller has it already."""
        if isinstance(cover, QueryCover):
            path, digest = cover.path, cover.content_hash
        else:
            try:
                path, digest = str(cover), bytes_hash(read_cover_bytes(cover, max_file_bytes(self.max_pixels)))
            except BadImageError as error:
                raise QueryError(f"cannot read {printable_path(str(cover))}: {error}") from None
        if path is None:
            raise QueryError("ranking by words needs the cover as a file (its text is read and cached by content)")
        if same_content is None:
            same_content = self._rows_of(digest, None)
        rows = np.flatnonzero(same_content)
        if rows.size and self.has_text:
            return str(self.texts[rows[0]])
        files = pd.DataFrame({"path": [path], "content_hash": [digest]})
        reader = reader_settings_of(self.index)  # read as the index's covers were, so the n-grams compare
        texts, failures = read_cover_texts(files, self.cache_dir, progress=False, settings=reader)
        if not failures.empty:
            raise QueryError(f"cannot read the text of {printable_path(path)}: {failures['reason'].iloc[0]}")
        return str(texts["text"].iloc[0])

    def search_text(
        self, query: str, k: int = 10, genre: str | None = None, where: dict[str, str] | None = None
    ) -> pd.DataFrame:
        """Covers whose printed text matches ``query`` (case, accents, spaces and most OCR slips aside), best
        first: rank, score (0-1, see recsys.textsearch.words_similarity), genre, path, text, then metadata."""
        if k < 1:
            raise QueryError("k must be at least 1")
        if not textsearch.normalise(query):
            raise QueryError("the search needs at least one letter or digit")
        allowed = self._allowed(genre, where)
        top, scores = textsearch.best_by_words(self._text_model, query, self._words_engine, allowed, k,
                                                 typed=True)
        result = self._frame(top, scores)
        result.insert(4, "text", [" / ".join(str(self.texts[row]).splitlines()) for row in top])
        return result

    # -- look-alikes ---------------------------------------------------------------------------------------

    def similar_to_cover(
        self,
        cover: Cover | QueryCover,
        k: int = 10,
        genre: str | None = None,
        by: str | None = None,
        where: dict[str, str] | None = None,
        collapse_editions: bool = False,
    ) -> pd.DataFrame:
        """Covers like ``cover`` by look, by the words printed on it, or both (None: both when the index
        holds text and the cover is a file, else look); ``match`` says which part each result owes its rank
        to. A cover file that is itself in the index is left out of its own results. ``cover`` may be a
        :class:`QueryCover` already read, so that the results and the predicted genre share one read.

        ``collapse_editions`` shows one cover per edition group (recsys.editions; its best-ranked member, with
        ``editions``: how many other covers of its group it stands for) and fills up to ``k`` from further
        candidates; the query's own edition family, when it is indexed, is left out whole."""
        if k < 1:
            raise QueryError("k must be at least 1")
        in_memory = isinstance(cover, Image.Image) or (isinstance(cover, QueryCover) and cover.path is None)
        by = by or ("both" if self.has_text and not in_memory else "look")
        if by not in hybrid.MODES:
            raise QueryError(f"by must be one of {', '.join(hybrid.MODES)}, not {by!r}")
        if by != "look" and not self.has_text:
            raise NoTextError(no_text_message(self.index.folder))
        if by != "look" and in_memory:
            raise QueryError("ranking by words needs the cover as a file (its text is read and cached by content)")
        query = cover if isinstance(cover, QueryCover) else self.read_query(cover)
        same_content = self._rows_of(query.content_hash, None)
        excluded = same_content | self._rows_of(None, query.path)  # the query cover itself
        groups = self.edition_rows() if collapse_editions else None
        if groups is not None:
            excluded |= np.isin(groups, groups[excluded & (groups >= 0)])
        filtered = bool(where) or genre is not None
        allowed = self._allowed(genre, where) & ~excluded
        # Each folded row hides one grouped cover, so this many candidates always leave k after folding.
        wanted = k if groups is None else k + int(np.count_nonzero(allowed & (groups >= 0)))
        if by != "look":
            rows, scores, match = self._by_words(query, wanted, allowed, by, k, same_content)
        elif filtered:
            rows, scores = self._exact(query.vector, wanted, allowed)
            match = np.full(len(rows), "look", dtype=object)
        else:  # the FAISS index answers; no row mask to build
            rows, scores = self._nearest(query.vector, min(wanted, len(excluded)), excluded)
            match = np.full(len(rows), "look", dtype=object)
        if groups is None:
            return self._frame(rows, scores).assign(match=match)
        kept, folded = fold_editions(rows, groups, allowed, k)
        return self._frame(rows[kept], scores[kept]).assign(match=match[kept], editions=folded)

    @cached_property
    def editions(self) -> pd.DataFrame:
        """The index's edition groups (recsys.editions.find_editions), found once per Recommender: seconds of
        work, and perceptual hashes the first time (cached by content in the cache folder)."""
        from recsys.editions import find_editions

        return find_editions(self.index, cache_dir=self.cache_dir)

    def edition_rows(self) -> np.ndarray:
        """Each index row's edition group, -1 for none; groups dismissed in the index folder are left out (read
        on each call, as the app may dismiss one meanwhile)."""
        from recsys.editions import group_of_rows, without_dismissed

        return group_of_rows(self.index, without_dismissed(self.index, self.editions))

    def similar_to_text(self, text: str, k: int = 10, genre: str | None = None) -> pd.DataFrame:
        return self.similar_to_vector(self._encoder().encode_text([text])[0], k, genre)

    def similar_to_vector(
        self,
        vector: np.ndarray,
        k: int = 10,
        genre: str | None = None,
        exclude_hash: str | None = None,
        exclude_path: str | None = None,
    ) -> pd.DataFrame:
        """Top ``k`` covers by cosine similarity: columns rank, score, genre, path, then the manifest's columns
        (one whose name sleeve uses itself, such as ``score``, is shown as ``user:score``)."""
        if k < 1:
            raise QueryError("k must be at least 1")
        # An index built in memory may know its covers by path only, without content hashes.
        excluded = self._rows_of(exclude_hash, exclude_path)
        if genre is not None:
            return self._frame(*self._exact(vector, k, self._allowed(genre) & ~excluded))
        return self._frame(*self._nearest(vector, min(k, self.index.info.count), excluded))

    def _nearest(self, vector: np.ndarray, k: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the top ``k`` (at most the index's size) not ``excluded``, from the FAISS index."""
        found_scores, found_rows = (found[0] for found in self._search(vector[None], k + int(excluded.sum())))
        keep = (found_rows >= 0) & ~excluded[np.maximum(found_rows, 0)]
        return found_rows[keep][:k], found_scores[keep][:k]

    def _search(self, vectors: np.ndarray, k: int, rerank: int = RERANK_FACTOR) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of each of ``vectors``' top ``k`` from the FAISS index in one batched search, one row
        each; rows of -1 where fewer were found. A compressed index re-scores ``rerank * k`` candidates exactly."""
        compressed = INDEX_TYPES[self.index.info.index_type].rescore
        return search(self.index.faiss_index, vectors, k, exact_vectors=self.index.embeddings if compressed else None,
                      rerank=rerank)

    def _rows_of(self, content_hash: str | None, path: str | None) -> np.ndarray:
        """A mask of the rows of that content or stored at that path (neither when None), from the table's
        lookups (Table.rows_equal: built on a column's second query, no compare of the column after it). A name
        that is not UTF-8 matches none: build-index never stores one, and the metadata's text column cannot even
        compare with it."""
        rows = np.zeros(self.index.info.count, dtype=bool)
        if content_hash is not None:
            rows[self.index.table.rows_equal("content_hash", content_hash)] = True
        if path is not None and printable_path(path) == path:
            rows[self.index.table.rows_equal("path", path)] = True
        return rows

    def _allowed(self, genre: str | None, where: dict[str, str] | None = None) -> np.ndarray:
        """The rows a query may return: all without a filter (the metadata is then not read), else row_mask's."""
        if genre is None and not where:
            return np.ones(self.index.info.count, dtype=bool)
        return row_mask(self.index.metadata, genre, where)

    def _frame(self, rows: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        """Result rows: rank, score, genre, path, then the manifest's own columns. Made from the columns' arrays
        in one frame: aligning frames by their index (a concat) cost a warm words query more than reading its rows."""
        own = user_columns(self.index.table)
        found = self.index.table.rows(rows, columns=[*SHOWN_FIELDS, *own])
        return pd.DataFrame({
            "rank": np.arange(1, len(found) + 1), "score": np.round(scores.astype(float), 4),
            **{field: found[field].array for field in SHOWN_FIELDS}, **{shown_name(c): found[c].array for c in own},
        })

    def _exact(self, vector: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the top ``k`` by cosine among the ``allowed`` rows, computed exactly."""
        candidates = np.flatnonzero(allowed)
        scores = np.asarray(self.index.embeddings[candidates]) @ vector
        top = np.argsort(-scores, kind="stable")[:k]
        return candidates[top], scores[top]

    def _by_words(
        self, query: QueryCover, k: int, allowed: np.ndarray, by: str, shown: int, same_content: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, scores, match) of the top ``k`` ``allowed`` covers by text similarity ("words") or by the
        fused scores ("both"); ``match`` is "both" for a cover in the top ``shown`` by look and by words.
        ``same_content``: the rows of the query's content (text_of)."""
        query_text = self.text_of(query, same_content)
        if by == "words":
            top, words = textsearch.best_by_words(self._text_model, query_text, self._words_engine, allowed, k)
            return top, words, np.full(len(top), "words", dtype=object)
        engine, candidates, collection = self._words_engine, None, None
        if engine is not None and np.count_nonzero(allowed) > BOTH_EXACT_MAX:
            collection = hybrid.CollectionScores(self._statistics, self._text_model)
            candidates = both_candidates(
                self.index.embeddings, self._text_model, self.texts, allowed, query.vector, query_text,
                lambda vectors, count: self._search(vectors, count, LOOK_RERANK)[1], engine, self._graph, collection, k,
            )
        if candidates is None:  # few covers, or a filter that leaves the candidates too few: score every one
            candidates, collection = np.flatnonzero(allowed), None
        fused, look, words = hybrid.both_scores(
            self.index.embeddings, self._text_model, self.texts, candidates, query.vector, query_text,
            graph=self._graph, collection=collection,
        )
        top = np.argsort(-fused, kind="stable")[:k]
        return candidates[top], fused[top], hybrid.owed_to(look, words, shown)[top]

    @cached_property
    def _statistics(self) -> hybrid.Statistics:
        """The collection's statistics for z-scoring ``--by both`` over candidates, computed once (from the
        moments the index stores, where it does)."""
        return hybrid.candidate_statistics(self.index.embeddings, stored=self.index.look_moments)


BOTH_EXACT_MAX = 8_000
"""Up to this many allowed covers ``--by both`` scores every one of them; above, only both_candidates. The
crossover of warm similar_to_cover(by="both") p50, every cover vs candidates (bench/both_crossover.py,
docs/words.md, 2 shared cores under load, OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1): 35 vs 52 ms at 4,450 real
covers, 60 vs 62 ms at 7,000 and 87 vs 82 ms at 10,000 (bench/collection_scale.py collections); the
candidates' own cost was then mostly the feedback covers' words scoring and two batched FAISS searches (full
scans on a flat index; one search since, the query's)."""
LOOK_NEIGHBOURS = 200
WORDS_NEIGHBOURS = 200
"""both_candidates takes this many nearest covers by look for the query, and best by the words engine for the
query."""
LOOK_RERANK = 3
"""On a compressed (IVF-PQ) index, both_candidates' look search re-scores LOOK_RERANK * LOOK_NEIGHBOURS rows
exactly, not RERANK_FACTOR (10) times as many as a look query's top 10 needs: its neighbours only join the
candidates, whose order both_scores finds anew. At 1M covers 3 left every planted cover's top 10 unchanged (755
of 755; 2 changed 8) and reads 1,400 fewer rows a query (docs/scale.md, "Warm `both`: fewer re-scored rows")."""
FEEDBACK_WORDS_NEIGHBOURS = 100
"""both_candidates takes this many best by the words engine for each cover the feedback takes: about six
searches a query, most of a warm ``--by both``'s words time at 1M covers. 100 kept planted precision@10 within
0.002 of 200 at 10k and 100k covers and cut warm ``both`` p50 at 1M 1.27x; 50 lost 0.008 at 100k (docs/scale.md,
"Warm words and `both` at 1M covers")."""
BOTH_MIN_CANDIDATES = LOOK_NEIGHBOURS // 2
"""both_candidates gives up (the allowed covers are all scored) when a filter leaves fewer than this many of
the query's own look neighbours and words matches: the look and words searches rank before the filter, so a
narrow one leaves few candidates, or only poor ones. An unfiltered query keeps at least LOOK_NEIGHBOURS less
itself (a query without text has no words matches); a filter that drops half of those ranks exactly."""
GRAPH_SEEDS = 100
"""both_candidates adds the graph neighbours of this many best candidates: the spreading lifts a cover mostly
through its best-scored neighbours."""

@cache
def searches(process: int) -> ThreadPoolExecutor:
    """The threads that run both_candidates' independent searches beside each other, on a second core (tantivy's
    search and FAISS's release the GIL): min(2, cores), made once per ``process`` (os.getpid(): a forked child
    inherits no running threads, so it makes its own). Results are taken in the order asked, so the candidates
    are those of searching one after another."""
    return ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1), thread_name_prefix=f"sleeve-search-{process}")


def both_candidates(
    embeddings: np.ndarray,
    model: textsearch.TextModel,
    texts: Sequence[str],
    allowed: np.ndarray,
    vector: np.ndarray,
    text: str,
    nearest: Callable[[np.ndarray, int], np.ndarray],
    engine: textsearch.CandidateEngine,
    graph: sparse.csr_matrix | None,
    collection: hybrid.CollectionScores,
    k: int,
) -> np.ndarray | None:
    """The ``allowed`` covers (ascending) that ``--by both`` scores for a query: its LOOK_NEIGHBOURS nearest by look
    (``nearest(vectors, count)``: each of the (n, d) ``vectors``' nearest index rows, (n, count), -1 where fewer;
    one FAISS search) and the words ``engine``'s WORDS_NEIGHBOURS best for its text, its FEEDBACK_WORDS_NEIGHBOURS
    best for the covers the feedback rounds take among them, and the covers linked in the neighbour ``graph`` to the
    GRAPH_SEEDS best of them (after feedback), through which the spreading reaches them. The feedback covers' own
    look neighbours are not searched: that second FAISS search was half a warm query's time at 100k covers and moved
    the planted covers' precision@10 by less than 0.003 (docs/scale.md, "Warm `both` for the planted covers: one
    look search"). The look search runs beside the query's words search, and the feedback covers' words searches
    beside each other (``searches``). None when fewer than ``k`` or BOTH_MIN_CANDIDATES of the query's own are allowed:
    then only scoring every allowed cover finds its best ``k``."""

    def by_words(keys: Sequence[int], row_texts: Sequence[str], limit: int) -> list[np.ndarray]:
        # each text's n-grams as the collection's scoring vectorises them, on this thread (the collection is not
        # thread-safe); then the engine's searches on ``searches``
        grams = [collection.grams(key, row_text) for key, row_text in zip(keys, row_texts)
                 if textsearch.normalise(row_text)]
        return list(searches(os.getpid()).map(engine.candidates, grams, repeat(limit)))

    def allowed_of(parts: list[np.ndarray]) -> np.ndarray:
        rows = np.unique(np.concatenate(parts))
        rows = rows[rows >= 0]
        return rows[allowed[rows]]

    look = searches(os.getpid()).submit(nearest, vector[None], LOOK_NEIGHBOURS)
    own_words = by_words([hybrid.QUERY], [text], WORDS_NEIGHBOURS)
    candidates = allowed_of([look.result().ravel(), *own_words])
    if len(candidates) < max(k, BOTH_MIN_CANDIDATES):
        return None
    fed, fused = hybrid.feedback_rows(embeddings, model, texts, candidates, vector, text, collection)
    found = by_words(fed.tolist(), [texts[row] for row in fed], FEEDBACK_WORDS_NEIGHBOURS)
    if graph is not None:
        found.append(graph[candidates[np.argsort(-fused, kind="stable")[:GRAPH_SEEDS]]].indices)
    return allowed_of([candidates, *found])


def open_index(index_dir: str | Path, settings: Settings | None = None) -> Recommender:
    """The index in ``index_dir``, ready for queries with its own encoder."""
    return Recommender.open(index_dir, settings)


def fold_editions(
    rows: np.ndarray, groups: np.ndarray, allowed: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``rows`` (best first) of the first ``k`` that are the best-ranked of their edition group
    (``groups``: each index row's group, -1 none), and how many other ``allowed`` covers of its group each
    stands for."""
    sizes = np.bincount(groups[allowed & (groups >= 0)], minlength=int(groups.max()) + 2)
    group = groups[rows]
    first = np.ones(len(rows), dtype=bool)
    grouped = np.flatnonzero(group >= 0)
    first[grouped] = False
    first[grouped[np.unique(group[grouped], return_index=True)[1]]] = True
    kept = np.flatnonzero(first)[:k]
    folded = np.where(group[kept] >= 0, sizes[np.maximum(group[kept], 0)] - 1, 0)
    return kept, folded.astype(np.int64)
