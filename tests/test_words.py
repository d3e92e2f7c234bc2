"""Cover text with the index: build-index --read-text, search by words, look-alikes by words and both, and the
fusion's plain functions, on a few dozen real covers of ../shared/artist-covers (three artists)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from index.store import read_info
from recsys import hybrid, textsearch
from recsys.build import build_index
from recsys.errors import QueryError
from recsys.ocr import TextCache
from recsys.recommend import Recommender
from recsys.settings import Settings
from recsys.textstore import NoTextError
from tests.conftest import make_cover

ARTIST_COVERS = Path(__file__).resolve().parents[2] / "shared" / "artist-covers"
ARTISTS = ["Sepultura", "Peter Tosh", "Sonny Rollins"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """36 real covers (12 of each of three artists whose names are printed on most of their covers) and
    one plain synthetic cover that carries no text, with artist and album columns."""
    if not (ARTIST_COVERS / "MANIFEST.csv").is_file():
        pytest.skip(f"real artist covers not found at {ARTIST_COVERS} (the ../shared folder beside the repo)")
    table = pd.read_csv(ARTIST_COVERS / "MANIFEST.csv")
    table = table[table["artist"].isin(ARTISTS)].sort_values("path").groupby("artist").head(12)
    table["path"] = [str(ARTIST_COVERS / p) for p in table["path"]]
    folder = tmp_path_factory.mktemp("words")
    blank = make_cover(folder / "blank.png", seed=7)
    extra = pd.DataFrame([{"path": str(blank), "genre": "jazz", "artist": "Nobody", "album": "Blank"}])
    table = pd.concat([table[["path", "genre", "artist", "album"]], extra], ignore_index=True)
    table.to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def text_index(manifest: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("index-text")
    build_index(folder, manifest=manifest, encoder="efficientnet-lite0", workers=0, read_text=True,
                settings=Settings(cache_dir=cache, progress=False))
    return folder


@pytest.fixture(scope="module")
def recommender(text_index: Path, cache: Path) -> Recommender:
    return Recommender.open(text_index, Settings(cache_dir=cache))


def test_the_index_stores_one_text_per_cover(recommender: Recommender, manifest: Path) -> None:
    assert recommender.has_text
    table = pd.read_csv(manifest)
    assert len(recommender.texts) == len(table)
    blank = table["path"].iloc[-1]
    assert recommender.text_of(blank) == ""
    sepultura = table[table["artist"] == "Sepultura"]["path"]
    assert sum("sepultura" in recommender.text_of(path).lower() for path in sepultura) >= 7


def test_the_index_stores_the_neighbour_graph_that_both_spreads_over(recommender: Recommender) -> None:
    """build-index builds the look-and-words graph once (it compares every cover with every other) and stores it;
    a query spreads over the stored graph, equal to the one built from the index's own rows and text."""
    from recsys.textstore import graph_of

    stored = graph_of(recommender.index)
    assert "neighbours" in recommender.index.info.files and stored is not None
    rebuilt = hybrid.neighbour_graph(recommender.index.embeddings, textsearch.fit_text_vectors(list(recommender.texts)),
                                     list(recommender.texts))  # fmt: skip
    assert stored.shape == (len(recommender.texts),) * 2 and stored.nnz > 0
    assert abs(stored - rebuilt).max() < 1e-6 and abs(stored - stored.T).max() < 1e-6


def test_an_index_with_text_but_no_graph_still_answers_both_and_says_how_to_add_it(
    text_index: Path, cache: Path, manifest: Path, caplog: pytest.LogCaptureFixture
) -> None:
    older = Recommender.open(text_index, Settings(cache_dir=cache))
    older.index.neighbours = None  # as an index built before sleeve stored the graph
    query = pd.read_csv(manifest)["path"].iloc[0]
    results = older.similar_to_cover(query, k=5, by="both")
    assert len(results) == 5
    assert "no neighbour graph" in caplog.text and "build-index" in caplog.text


def test_search_finds_an_artist_despite_case_spaces_and_a_misread_letter(recommender: Recommender) -> None:
    for query in ["peter tosh", "PETERTOSH", "peler tosh"]:
        results = recommender.search_text(query, k=5)
        assert list(results.columns[:5]) == ["rank", "score", "genre", "path", "text"]
        assert (results["artist"] == "Peter Tosh").mean() >= 0.8, (query, results[["artist", "text"]])
        assert results["score"].is_monotonic_decreasing
        assert results["score"].between(0, 1).all()


def test_search_filters_by_genre_and_metadata(recommender: Recommender) -> None:
    results = recommender.search_text("sepultura", k=10, where={"artist": "sonny rollins"})
    assert set(results["artist"]) <= {"Sonny Rollins"}
    assert recommender.search_text("sepultura", k=10, genre="reggae")["genre"].eq("reggae").all()
    with pytest.raises(QueryError, match="no column 'label'"):
        recommender.search_text("sepultura", where={"label": "EMI"})
    with pytest.raises(QueryError, match="letter or digit"):
        recommender.search_text("  ?! ")


def test_both_beats_look_on_same_artist_and_says_what_each_result_owes(
    recommender: Recommender, manifest: Path
) -> None:
    table = pd.read_csv(manifest).iloc[:-1]
    hits = {"look": [], "both": []}
    for path, artist in zip(table["path"], table["artist"]):
        for by in hits:
            results = recommender.similar_to_cover(path, k=5, by=by)
            hits[by].append((results["artist"] == artist).mean())
            assert set(results["match"]) <= ({"look"} if by == "look" else {"look", "words", "both"})
    assert np.mean(hits["both"]) > np.mean(hits["look"])


def test_a_cover_without_text_never_breaks_both(recommender: Recommender, manifest: Path, tmp_path: Path) -> None:
    blank = pd.read_csv(manifest)["path"].iloc[-1]
    results = recommender.similar_to_cover(blank, k=5, by="both")
    assert len(results) == 5 and set(results["match"]) == {"look"}
    assert recommender.similar_to_cover(blank, k=5, by="words").empty
    outsider = make_cover(tmp_path / "outsider.png", seed=99)  # not in the index: read now, no text
    assert len(recommender.similar_to_cover(outsider, k=3)) == 3


def test_where_filters_look_alikes(recommender: Recommender, manifest: Path) -> None:
    query = pd.read_csv(manifest)["path"].iloc[0]
    for by in ["look", "words", "both"]:
        results = recommender.similar_to_cover(query, k=5, by=by, where={"artist": "peter tosh"})
        assert set(results["artist"]) <= {"Peter Tosh"}


def test_rebuilds_keep_text_and_read_only_new_covers(manifest: Path, cache: Path, tmp_path: Path) -> None:
    table = pd.read_csv(manifest)
    first = tmp_path / "first.csv"
    table.iloc[:20].to_csv(first, index=False)
    settings = Settings(cache_dir=cache, progress=False)
    build_index(tmp_path / "index", manifest=first, encoder="efficientnet-lite0", workers=0, read_text=True,
                settings=settings)
    with TextCache(cache) as text_cache:
        before = text_cache._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    new = tmp_path / "new.png"
    shutil.copy(table["path"].iloc[0], new)  # same content: its reading comes from the cache
    grown = pd.concat([table.iloc[:20], pd.DataFrame([{"path": str(new), "genre": "metal"}])])
    grown.to_csv(first, index=False)
    build_index(tmp_path / "index", manifest=first, workers=0, settings=settings)  # no --read-text: text kept
    with TextCache(cache) as text_cache:
        assert text_cache._db.execute("SELECT COUNT(*) FROM readings").fetchone()[0] == before
    info = read_info(tmp_path / "index")
    assert "text" in info.files
    assert sorted(p.name for p in (tmp_path / "index").glob("text-*.parquet")) == [info.files["text"]]
    recommender = Recommender.open(tmp_path / "index", settings)
    assert recommender.text_of(new) == recommender.text_of(table["path"].iloc[0])


def test_the_fast_reader_is_chosen_by_name_and_kept_by_later_builds_and_queries(
    manifest: Path, cache: Path, tmp_path: Path
) -> None:
    """build-index --ocr fast reads with recsys.ocr.FAST (readings under its own cache key, never mixed with
    the exact ones); a later build without --ocr reads its new covers with the same reader, as does a query
    cover, so their n-grams compare; and the fast readings still find an artist by name."""
    from index.store import load_index
    from recsys.ocr import FAST, reader_key

    table = pd.read_csv(manifest)
    first = tmp_path / "first.csv"
    table.iloc[:-1:3].to_csv(first, index=False)  # every third real cover: all three artists
    run = subprocess.run(
        [sys.executable, "cli.py", "build-index", "--manifest", str(first), "--index", str(tmp_path / "index"),
         "--model", "efficientnet-lite0", "--workers", "0", "--ocr", "fast", "--cache", str(cache), "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "cover text stored" in run.stdout  # --ocr implies --read-text
    fast = reader_key(settings=FAST)
    assert set(load_index(tmp_path / "index").texts["reader"]) == {fast}
    grown = pd.concat([pd.read_csv(first), table.iloc[[1]]])
    grown.to_csv(first, index=False)
    settings = Settings(cache_dir=cache, progress=False)
    build_index(tmp_path / "index", manifest=first, workers=0, settings=settings)  # no reader named: the index's
    assert set(load_index(tmp_path / "index").texts["reader"]) == {fast}
    recommender = Recommender.open(tmp_path / "index", settings)
    outside = table["path"].iloc[2]  # a real cover the index does not hold
    recommender.text_of(outside)
    with TextCache(cache) as text_cache:
        read_fast = {h for h, _ in text_cache._db.execute("SELECT hash, lines FROM readings WHERE reader = ?", (fast,))}
    from recsys.ingest import content_hash

    assert content_hash(outside) in read_fast
    found = recommender.search_text("sepultura", k=3)
    assert list(found["artist"]) == ["Sepultura"] * 3


def test_an_index_without_text_answers_words_with_one_line(manifest: Path, cache: Path, tmp_path: Path) -> None:
    table = pd.read_csv(manifest).iloc[:6]
    table.to_csv(tmp_path / "m.csv", index=False)
    settings = Settings(cache_dir=cache, progress=False)
    build_index(tmp_path / "plain", manifest=tmp_path / "m.csv", encoder="efficientnet-lite0", workers=0,
                settings=settings)
    recommender = Recommender.open(tmp_path / "plain", settings)
    assert not recommender.has_text
    assert set(recommender.similar_to_cover(table["path"].iloc[0], k=3)["match"]) == {"look"}
    with pytest.raises(NoTextError, match="build-index --read-text"):
        recommender.similar_to_cover(table["path"].iloc[0], by="words")
    run = subprocess.run(
        [sys.executable, "cli.py", "search", "tosh", "--index", str(tmp_path / "plain")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and "build-index --read-text" in run.stderr, run.stderr


def test_cli_search_and_recommend_by_both_print_json(text_index: Path, manifest: Path, cache: Path) -> None:
    query = pd.read_csv(manifest)["path"].iloc[0]
    env_cache = ["--cache", str(cache)]
    run = subprocess.run(
        [sys.executable, "cli.py", "recommend", "--cover", query, "--index", str(text_index), "--by", "both",
         "--where", "genre=reggae", "-k", "3", "--json", *env_cache],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    assert len(results) == 3 and all(r["genre"] == "reggae" and r["match"] in hybrid.MODES for r in results)
    run = subprocess.run(
        [sys.executable, "cli.py", "search", "rollins", "--index", str(text_index), "-k", "3", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert [r["artist"] for r in json.loads(run.stdout)["results"]] == ["Sonny Rollins"] * 3


def test_fusion_functions_on_real_scores() -> None:
    look = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    words = np.array([0.0, 0.0, 0.9, 0.0, 0.1])
    assert np.allclose(hybrid.zscore(np.full(4, 0.3)), 0)
    assert hybrid.words_weight(0) == 0 and hybrid.words_weight(1000) == hybrid.WORDS_WEIGHT
    fused = hybrid.fuse(look, words, hybrid.WORDS_WEIGHT)
    assert int(np.argmax(fused)) == 2  # a strong word match outranks a slightly closer look
    assert list(hybrid.owed_to(look, words, k=2)) == ["look", "look", "words", "look", "look"]  # 0.1: no match
    assert list(hybrid.ranks(np.array([0.1, 0.3, 0.2]))) == [3, 1, 2]


def test_normalise_and_ngram_similarity_survive_ocr_slips() -> None:
    assert textsearch.normalise("Alan  JACKSON!") == "alanjackson"
    texts = ["ALAN JACKSON\nDrive", "ALANIACKSON\nLive", "Iron Maiden\nKillers", ""]
    model = textsearch.fit_text_vectors(texts)
    similarity = textsearch.words_similarity(model, "Alan Jackson")
    assert similarity[1] > similarity[2] and similarity[3] == 0
    assert similarity[0] > similarity[1]


def test_a_name_split_over_two_printed_lines_matches_as_a_whole() -> None:
    lines = textsearch.printed_lines("ALAN\n\nJACKSON\nDrive")
    assert lines == ["ALAN", "JACKSON", "Drive", "ALANJACKSON", "JACKSONDrive"]
    texts = ["ALAN\nJACKSON", "ALAN JACKSON", "JACKSON BROWNE\nRunning", "ALAN PARSONS\nEve"]
    similarity = textsearch.words_similarity(textsearch.fit_text_vectors(texts), "Alan Jackson")
    assert similarity[0] == pytest.approx(similarity[1], abs=0.05)  # as good as the name on one line
    assert similarity[0] > 2 * max(similarity[2], similarity[3])


def test_feedback_lifts_a_cover_that_shares_words_with_the_best_match_only() -> None:
    texts = ["PETER TOSH\nLive", "PETER TOSH\nBUSH DOCTOR", "BUSH DOCTOR\nMYSTIC MAN", "IRON MAIDEN\nKILLERS",
             "NINA SIMONE\nPASTEL BLUES"]
    model = textsearch.fit_text_vectors(texts)
    embeddings = np.ones((len(texts), 4), dtype=np.float32) / 2  # every cover looks the same: words decide
    candidates = np.arange(1, len(texts))
    plain, _, words = hybrid.both_scores(embeddings, model, texts, candidates, embeddings[0], texts[0], rounds=0)
    assert np.allclose(plain, hybrid.hybrid_scores(np.ones(4), words, len(textsearch.normalise(texts[0]))))
    fused, _, _ = hybrid.both_scores(embeddings, model, texts, candidates, embeddings[0], texts[0], neighbours=1)
    assert words[1] < hybrid.WORDS_FLOOR  # "BUSH DOCTOR" says nothing of the query's words...
    assert fused[1] > fused[2] and fused[1] > fused[3]  # ...but shares them with its best match, so it rises
    assert plain[1] == pytest.approx(plain[2])  # (without feedback it ties with the unrelated covers)


def test_spreading_over_the_neighbour_graph_lifts_a_cover_whose_neighbours_match() -> None:
    texts = ["PETER TOSH\nLive", "PETER TOSH\nBUSH DOCTOR", "BUSH DOCTOR\nMYSTIC MAN", "IRON MAIDEN\nKILLERS",
             "NINA SIMONE\nPASTEL BLUES"]
    model = textsearch.fit_text_vectors(texts)
    embeddings = np.ones((len(texts), 4), dtype=np.float32) / 2
    candidates = np.arange(1, len(texts))
    graph = hybrid.neighbour_graph(embeddings, model, texts)
    spread, _, _ = hybrid.both_scores(embeddings, model, texts, candidates, embeddings[0], texts[0], rounds=0,
                                      graph=graph)
    assert spread[1] > spread[2] and spread[1] > spread[3]  # no feedback: the graph alone lifts "BUSH DOCTOR"
    assert int(np.argmax(spread)) == 0  # and the cover that prints the query's name stays first
    assert abs(graph - graph.T).max() < 1e-9 and graph.diagonal().sum() == 0  # links go both ways
    assert graph[1, 2] > 0 and graph[3].nnz == 0  # Iron Maiden shares nothing: no link


def test_the_graph_links_only_mutual_neighbours_and_spreading_follows_its_links() -> None:
    # cover 0 ranks 1 and 2 among its 2 best, but 1 and 2 rank each other and 3 first: no link from 0
    embeddings = np.array([[1, 1, 1, 0], [0, 1, 0, 0], [0, 1, 0.1, 0], [0, 1, 0.2, 0.1]], dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    texts = ["qqqq", "wwww", "xxxx", "zzzz"]  # no letters in common: the look alone links covers
    model = textsearch.fit_text_vectors(texts)
    graph = hybrid.neighbour_graph(embeddings, model, texts, k=2)
    assert graph[0].nnz == 0 and graph[1, 2] > 0
    scores = hybrid.spread_over(graph, np.array([1.0, 1.0, 0.0, 0.0]), keep=0.5)
    assert scores[0] == 1.0 and scores[2] > 0 and scores[3] > 0


_SMALL = ["ALAN\nJACKSON\nDrive", "", "ALANIACKSON\nLive", "CD", "Iron Maiden\nKillers\n\nLive", "JACKSON",
          "LIVE\nstereo", "POWERWOLF\nBlessed", "POWER\nANN", "Powerwolf\nLupus Dei\nLIVE"]


def _dense_words(model: textsearch.TextModel, query_lines: np.ndarray, query_cover: np.ndarray,
                 line_score: Callable[[np.ndarray, np.ndarray], float]) -> np.ndarray:
    """0.5 * each cover's cosine to ``query_cover`` + 0.5 * the best ``line_score(cover line, query line)``
    over the cover's lines and the query's, one pair at a time: the reference the vectorised scores must meet."""
    cover_lines = model.lines.toarray()
    scores = np.zeros(model.covers.shape[0])
    for cover, whole in enumerate(model.covers.toarray() @ query_cover):
        own = cover_lines[model.line_owner == cover]
        best = max((line_score(mine, theirs) for mine in own for theirs in query_lines), default=0.0)
        scores[cover] = 0.5 * whole + 0.5 * best
    return scores


def test_words_similarity_rows_score_line_pairs_by_their_cosine() -> None:
    """The graph's scores (words_similarity_rows) keep the symmetric cosine of two lines, for every cover."""
    model = textsearch.fit_text_vectors(_SMALL)
    rows = np.array([0, 1, 2, 4, 7, 9])
    got = textsearch.words_similarity_rows(model, rows)
    lines, covers = model.lines.toarray(), model.covers.toarray()
    for row, scores in zip(rows, got):
        expected = _dense_words(model, lines[model.line_owner == row], covers[row], lambda a, b: float(a @ b))
        assert np.allclose(scores, expected, atol=1e-6)
    assert np.allclose(got[:, rows], got[:, rows].T, atol=1e-6)  # the same from either end


def test_a_query_scores_a_line_by_the_share_of_its_weight_the_cover_line_holds_times_how_informative() -> None:
    """words_similarity's line score: the share of the query line's L1 TF-IDF weight on n-grams the cover line
    holds, times min(1, the query line's summed IDF / informative_idf); as bench/words_variants.py
    measured it (its variant of that M, bit for bit)."""
    from bench.words_variants import STORED, variant_scores

    model = textsearch.fit_text_vectors(_SMALL)

    def share_times_informative(cover_line: np.ndarray, query_line: np.ndarray) -> float:
        if not query_line.any():  # a line of n-grams the model lacks ("zzzz") shares nothing
            return 0.0
        share = query_line[cover_line > 0].sum() / query_line.sum()
        return share * min(1.0, model.idf[query_line > 0].sum() / textsearch.informative_idf(model))

    for query in (_SMALL[0], _SMALL[7], "Powerwolf live", "LIVE", "zzzz qqqq", ""):
        queries = textsearch.vectorise_queries(model, [query])
        expected = _dense_words(model, queries.lines.toarray(), queries.covers.toarray()[0], share_times_informative)
        got = textsearch.words_similarity(model, query)
        assert np.allclose(got, expected, atol=1e-6), query
        assert np.array_equal(got, variant_scores(model, queries)[STORED][:, 0].astype(np.float32))
    both = textsearch.words_similarity(model, "POWERWOLF")
    assert both[7] > both[8]  # a cover line holding only "power" holds little of "powerwolf"'s weight


def test_a_typed_query_scores_a_partial_name_line_by_the_cosine_and_a_cover_text_by_containment(
    recommender: Recommender,
) -> None:
    """A typed name ("Wolfgang Amadeus Mozart") printed only in part on a cover ("MOZART") keeps the cosine of the
    two lines (typed=True, what search_text asks); the same line as a cover's text scores the share of its weight
    the cover line holds times how informative it is (the default), which is lower here."""
    texts = ["MOZART\nSymphonies", "Wolfgang Amadeus Mozart\nRequiem", "Johann Sebastian Bach\nMass", "LIVE", ""]
    model = textsearch.fit_text_vectors(texts)
    query = "Wolfgang Amadeus Mozart"
    vectorised = textsearch.vectorise_queries(model, [query])
    lines, whole = vectorised.lines.toarray(), vectorised.covers.toarray()[0]
    informative = min(1.0, model.idf[lines[0] > 0].sum() / textsearch.informative_idf(model))
    cosine = _dense_words(model, lines, whole, lambda a, b: float(a @ b))
    contained = _dense_words(model, lines, whole, lambda a, b: b[a > 0].sum() / b.sum() * informative)
    typed, cover = textsearch.words_similarity(model, query, typed=True), textsearch.words_similarity(model, query)
    assert np.allclose(typed, cosine, atol=1e-6) and np.allclose(cover, contained, atol=1e-6)
    assert typed[0] > cover[0] + 0.05 and typed.argmax() == cover.argmax() == 1
    found = recommender.search_text("peter tosh", k=5)
    rows = recommender.index.table.rows(np.arange(recommender.index.info.count), columns=["path"])["path"]
    expected = textsearch.words_similarity(recommender._text_model, "peter tosh", typed=True)
    assert np.allclose(found["score"], expected[pd.Index(rows).get_indexer(found["path"])], atol=1e-4)


def test_a_short_generic_line_counts_less_than_a_name() -> None:
    """A cover printing only "LIVE" shares one whole line with the query as the name's cover does, but "LIVE"
    says less: its cover scores lower (with the cosine, both lines count fully)."""
    texts = ["LIVE\nqqqq", "HERBIE HANCOCK\nxxxx", "LIVE\nwwww", "LIVE\nvvvv", "SONNY ROLLINS\nLIVE", "LIVE\nyyyy"]
    model = textsearch.fit_text_vectors(texts)
    scores = textsearch.words_similarity(model, "HERBIE HANCOCK\nLIVE")
    assert scores[1] > 2 * scores[0]
    assert textsearch.line_idf_sums(textsearch.vectorise_queries(model, ["LIVE"]).lines, model.idf)[0] < \
        textsearch.informative_idf(model)


def test_a_collection_printing_only_short_lines_still_gets_a_text_model_and_a_graph() -> None:
    """No cover prints a line of MIN_LINE_CHARS letters ("CD", "2", nothing): words compare whole texts only and
    the graph links by look, where sklearn used to refuse to vectorise an empty list of lines."""
    texts = ["CD\n2", "LP", "", "CD"]
    model = textsearch.fit_text_vectors(texts)
    assert model.lines.shape[0] == 0
    assert textsearch.words_similarity(model, "CD")[[0, 3]].min() > 0
    rows = textsearch.words_similarity_rows(model, np.arange(4))
    assert np.allclose(rows[3], textsearch.words_similarity(model, "CD"))
    embeddings = np.eye(4, 4, dtype=np.float32)
    embeddings[1] = embeddings[0]  # covers 0 and 1 look alike
    assert hybrid.neighbour_graph(embeddings, model, texts, k=1)[0, 1] > 0


def test_the_words_model_is_sklearns_tfidf_without_sklearn_at_query_time() -> None:
    """fit_text_vectors and vectorise give what sklearn's TfidfVectorizer (same analyzer, sublinear tf, smoothed
    IDF, l2 rows) gives: the same sorted vocabulary and IDF, and rows of covers, lines and queries within 1e-6."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["PETER TOSH\nMYSTIC MAN", "Alan\nJackson\nLive", "", "CD", "SEPULTURA\nRoots\nRoots Bloody Roots",
             "Peter Tosh\nBush doctor\nPETER TOSH", "ÉTÉ été\n2\nÇa va"]
    model = textsearch.fit_text_vectors(texts)
    reference = TfidfVectorizer(analyzer=textsearch._analyse, sublinear_tf=True, dtype=np.float32).fit(texts)
    assert list(model.terms) == list(reference.get_feature_names_out())
    assert np.abs(model.idf - reference.idf_).max() < 1e-6
    lines, _ = textsearch._split_lines(texts)
    queries = ["peter tosh", "zzzz", "Jackson alan live live", "roots"]
    for mine, theirs in [(model.covers, reference.transform(texts)), (model.lines, reference.transform(lines)),
                         (textsearch.vectorise(model, queries), reference.transform(queries))]:
        assert mine.shape == theirs.shape and abs(mine - theirs).max() < 1e-6


_OCR_LIKE = [
    "PETER TOSH\r\nMYSTIC MAN", "Sepultura — Roots!!\n\n(Remastered 2017)", "ÉTÉ été\n2\nÇa va", "", "\n \n", "CD",
    "ΟΔΥΣΣΕΑΣ\nΣΟΦΟΣ",  # joined, the first line's last sigma is no final one: "οδυσσεασσοφος", not "...ςσοφος"
    "a\u0301bc\n\u0327\u0301def",  # combining marks, also at a line's start (the joined pair drops them too)
    "Motörhead\nAce of Spades", "ﬁnal ½ Straße", "坂本龍一\n戦場のメリークリスマス", "İstanbul\u2028Live\x0bat\x1cBudokan",
    "x_y_z\n___\n!!!\nA", "ALANIACKSON\nALAN\nJACKSON",
]


def _plain_normalise(text: str) -> str:
    """textsearch.normalise as its docstring says it, one character at a time."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return re.sub(r"[\W_]+", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _plain_grams(text: str) -> list[str]:
    """The 3-grams of a cover text as the words model defines them, one line at a time: each printed line
    and each adjacent pair, normalised, padded with a space each side."""
    lines = [line for line in text.splitlines() if _plain_normalise(line)]
    grams = []
    for line in lines + [first + second for first, second in zip(lines, lines[1:])]:
        padded = f" {_plain_normalise(line)} "
        grams.extend(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def test_the_fit_counts_the_n_grams_of_each_printed_line_as_their_plain_definition_does() -> None:
    """The fit finds n-grams for every text at once as integer codes: the same n-grams in the same order as
    the plain per-line definition, on OCR-like texts with accents, combining marks, Greek sigmas, ligatures,
    CJK, punctuation, odd line breaks and empty text, and the same vocabulary, rows and line rows as sklearn
    fitted with that definition."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    for text in _OCR_LIKE:
        assert textsearch._analyse(text) == _plain_grams(text), text
    grams = textsearch._gram_codes(_OCR_LIKE)
    assert list(textsearch._terms(grams.codes)) == [gram for text in _OCR_LIKE for gram in _plain_grams(text)]
    model = textsearch.fit_text_vectors(_OCR_LIKE)
    reference = TfidfVectorizer(analyzer=_plain_grams, sublinear_tf=True, dtype=np.float32).fit(_OCR_LIKE)
    assert list(model.terms) == list(reference.get_feature_names_out())
    assert np.abs(model.idf - reference.idf_).max() < 1e-6
    lines = [line for text in _OCR_LIKE for line in textsearch.printed_lines(text) if len(_plain_normalise(line)) >= 4]
    for mine, theirs in [(model.covers, reference.transform(_OCR_LIKE)), (model.lines, reference.transform(lines))]:
        theirs = theirs.tocsr()
        theirs.sort_indices()
        assert np.array_equal(mine.indptr, theirs.indptr) and np.array_equal(mine.indices, theirs.indices)
        assert np.abs(mine.data - theirs.data).max() < 1e-6
    assert model.covers[_OCR_LIKE.index("")].nnz == 0 and model.covers[_OCR_LIKE.index("\n \n")].nnz == 0
    assert np.array_equal(model.line_owner, textsearch._split_lines(_OCR_LIKE)[1])


def _same_scores(one: textsearch.TextModel, other: textsearch.TextModel, queries: list[str]) -> None:
    """Both models score every query, and every cover against every other, within 1e-6."""
    for query in queries:
        gap = textsearch.words_similarity(one, query) - textsearch.words_similarity(other, query)
        assert np.abs(gap).max() < 1e-6, query
    rows = np.arange(one.covers.shape[0])
    gap = textsearch.words_similarity_rows(one, rows) - textsearch.words_similarity_rows(other, rows)
    assert np.abs(gap).max() < 1e-6


def test_a_query_loads_the_stored_words_model_and_never_fits_one(
    text_index: Path, cache: Path, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build-index --read-text stores the fitted model (memory-mapped when loaded); a query process answers
    search, words and both from it without fitting, with the scores of a model refitted on the index's text."""
    info = read_info(text_index)
    assert info.files["words"].startswith("words-") and (text_index / info.files["words"]).is_file()
    refit = textsearch.fit_text_vectors(list(Recommender.open(text_index, Settings(cache_dir=cache)).texts))

    def no_fit(texts: object) -> None:
        raise AssertionError("a query fitted the words model")

    monkeypatch.setattr(textsearch, "fit_text_vectors", no_fit)
    recommender = Recommender.open(text_index, Settings(cache_dir=cache))
    assert list(recommender.search_text("sepultura", k=3)["artist"]) == ["Sepultura"] * 3
    query = pd.read_csv(manifest)["path"].iloc[0]
    for by in ["words", "both"]:
        assert len(recommender.similar_to_cover(query, k=5, by=by)) == 5
    stored = recommender._text_model
    arrays = recommender.index.words
    assert all(isinstance(arrays[name].base, np.memmap) for name in ("terms", "covers_data", "lines_indices"))
    assert np.shares_memory(stored.covers.data, arrays["covers_data"])  # the rows are read in place, not copied
    _same_scores(stored, refit, ["sepultura", "Peter Tosh", "sonny rollins saxophone colossus", "zzzz"])


def test_an_index_with_text_but_no_words_model_refits_it_and_says_how_to_store_it(
    text_index: Path, cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    older = tmp_path / "older"
    shutil.copytree(text_index, older)
    info = json.loads((older / "index.json").read_text())
    (older / info["files"].pop("words")).unlink()  # as an index built before sleeve stored the model
    shutil.rmtree(older / info["files"].pop("words_engine"))  # and its candidate engine
    (older / "index.json").write_text(json.dumps(info))
    recommender = Recommender.open(older, Settings(cache_dir=cache))
    assert recommender.index.words is None
    found = recommender.search_text("peter tosh", k=3)
    assert list(found["artist"]) == ["Peter Tosh"] * 3
    assert caplog.text.count("no words model") == 1 and "build-index" in caplog.text
    stored = Recommender.open(text_index, Settings(cache_dir=cache)).search_text("peter tosh", k=3)
    pd.testing.assert_frame_equal(found, stored)


def test_incremental_builds_store_the_words_model_of_the_new_collection(
    manifest: Path, cache: Path, tmp_path: Path, text_index: Path
) -> None:
    """Covers added and removed: the stored model is the one fitted on the covers the index now holds (its
    scores equal a refit's), and only the new generation's words file is left."""
    table = pd.read_csv(manifest)
    settings = Settings(cache_dir=cache, progress=False)
    table.iloc[:20].to_csv(tmp_path / "m.csv", index=False)
    build_index(tmp_path / "index", manifest=tmp_path / "m.csv", encoder="efficientnet-lite0", workers=0,
                read_text=True, settings=settings)
    table.iloc[10:].to_csv(tmp_path / "m.csv", index=False)  # 10 removed, 17 added
    build_index(tmp_path / "index", manifest=tmp_path / "m.csv", workers=0, settings=settings)
    recommender = Recommender.open(tmp_path / "index", settings)
    assert len(recommender.texts) == len(table) - 10
    assert set(recommender.index.metadata["path"]) == set(table["path"].iloc[10:])
    refit = textsearch.fit_text_vectors(list(recommender.texts))
    stored = recommender._text_model
    assert list(stored.terms) == list(refit.terms)
    _same_scores(stored, refit, ["sepultura", "Peter Tosh", "rollins", "zzzz"])
    files = read_info(tmp_path / "index").files
    assert [p.name for p in (tmp_path / "index").glob("words-*.npz")] == [files["words"]]
    assert [p.name for p in (tmp_path / "index").glob("lookstats-*.npz")] == [files["lookstats"]]
    _same_moments(recommender.index.look_moments, hybrid.sampled_look_moments(recommender.index.embeddings))


def test_a_search_process_on_a_stored_words_model_imports_no_sklearn(text_index: Path) -> None:
    """Loading the stored model and vectorising the query need numpy and scipy only: sklearn's import alone
    took seconds of a cold search."""
    script = (
        "import json, runpy, sys\n"
        f"sys.argv = ['cli.py', 'search', 'sepultura', '--index', {str(text_index)!r}, "
        "'-k', '3', '--json']\n"
        "try:\n    runpy.run_path('cli.py', run_name='__main__')\n"
        "except SystemExit as exit:\n    assert not exit.code\n"
        "print(json.dumps('sklearn' in {m.split('.')[0] for m in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert [r["artist"] for r in json.loads("\n".join(lines[:-1]))["results"]] == ["Sepultura"] * 3
    assert json.loads(lines[-1]) is False, "a search on a stored words model imported sklearn"


_NAMES = ["Peter Tosh", "Alan Jackson", "Sepultura", "Sonny Rollins", "Iron Maiden", "Bob Marley", "Miles Davis",
          "Nina Simone", "Johnny Cash", "Dolly Parton"]
_WORDS = ["Live", "Greatest Hits", "Roots", "Mystic Man", "Kind of Blue", "Stereo", "Drive", "Killers", "Legend"]


def _texts(count: int, seed: int) -> list[str]:
    """Cover texts of a name and one or two album words each, some empty, as OCR reads them."""
    rng = np.random.default_rng(seed)
    return ["" if rng.random() < 0.1 else "\n".join([_NAMES[rng.integers(len(_NAMES))],
                                                     *rng.choice(_WORDS, rng.integers(1, 3), replace=False)])
            for _ in range(count)]


def test_an_update_vectorises_only_the_new_covers_with_the_stored_model_and_drops_the_gone_ones() -> None:
    """Rows kept come from the stored model, new ones equal vectorising their text with its vocabulary and IDF,
    and cover and line rows follow the new row order: the update is the stored model applied to the new texts."""
    old = _texts(40, seed=1) + ["Prince\nPurple Rain"]
    model = textsearch.fit_text_vectors(old)
    added = ["Peter Tosh\nBush Doctor", "", "ALANIACKSON\nNew words qqq"]
    order = [5, 40, 0, 39, *range(10, 30)]  # 1-4, 6-9 and 30-38 removed, the rest shuffled
    kept = np.array([order[0], -1, order[1], order[2], -1, order[3], *order[4:], -1])
    texts = [old[order[0]], added[0], old[order[1]], old[order[2]], added[1], old[order[3]],
             *[old[row] for row in order[4:]], added[2]]
    updated = textsearch.update_text_vectors(model, kept, texts)
    assert list(updated.terms) == list(model.terms) and np.array_equal(updated.idf, model.idf)
    lines, owner = textsearch._split_lines(texts)
    assert abs(updated.covers - textsearch.vectorise(model, texts)).max() == 0
    assert abs(updated.lines - textsearch.vectorise(model, lines)).max() == 0
    assert np.array_equal(updated.line_owner, owner)
    assert updated.covers[3].nnz == model.covers[0].nnz and updated.covers[4].nnz == 0
    assert textsearch.words_similarity(updated, "purple rain").argmax() == 2  # "Prince" moved from row 40 to 2
    assert textsearch.unknown_grams(model, ["qqq"]) == (3, 3)  # " qq", "qqq", "qq "


def test_an_update_without_drift_scores_as_a_refit_does() -> None:
    """Nothing added or removed: the update is the stored model, so a refit's scores within 1e-6; one cover
    added to 100 (1%, REFIT_SHARE): scores within 0.01 of a refit's (0.004 measured typed, 0.005 as a cover's
    text, whose informative factor reads the kept IDF directly), the same best cover for every query."""
    texts = _texts(100, seed=2)
    model = textsearch.fit_text_vectors(texts)
    order = np.random.default_rng(3).permutation(100)
    same = textsearch.update_text_vectors(model, order, [texts[row] for row in order])
    _same_scores(same, textsearch.fit_text_vectors([texts[row] for row in order]), ["peter tosh", "roots", "zz"])
    grown = [*texts, "Miles Davis\nKind of Blue"]
    updated = textsearch.update_text_vectors(model, np.r_[np.arange(100), -1], grown)
    refit = textsearch.fit_text_vectors(grown)
    for query in ["peter tosh", "miles davis kind of blue", "Greatest Hits", "nina simone live"]:
        for typed in (True, False):
            mine = textsearch.words_similarity(updated, query, typed=typed)
            theirs = textsearch.words_similarity(refit, query, typed=typed)
            assert np.abs(mine - theirs).max() < 0.01 and mine.max() == mine[theirs.argmax()], (query, typed)


def test_incremental_builds_keep_the_stored_model_until_the_collection_drifts(
    manifest: Path, cache: Path, tmp_path: Path, text_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the refit share the new index rows are the stored model's (new covers vectorised with it, removed
    covers gone, rows in the order of the index's metadata), and the engine and graph are rebuilt from that
    model; past the share (changes counted since the last fit) the model is refitted."""
    from recsys import textstore

    monkeypatch.setattr(textstore, "REFIT_SHARE", 0.3)
    table = pd.read_csv(manifest)
    settings = Settings(cache_dir=cache, progress=False)
    folder = tmp_path / "index"
    table.iloc[:24].to_csv(tmp_path / "m.csv", index=False)
    build_index(folder, manifest=tmp_path / "m.csv", encoder="efficientnet-lite0", workers=0, read_text=True,
                settings=settings)
    first = Recommender.open(folder, settings)
    fitted = textsearch.fit_text_vectors(list(first.texts))
    assert list(first.index.words["fit_state"]) == [24, 0]

    table.iloc[2:27].to_csv(tmp_path / "m.csv", index=False)  # 2 removed, 3 added: 5 changes of 24 fitted
    build_index(folder, manifest=tmp_path / "m.csv", workers=0, settings=settings)
    second = Recommender.open(folder, settings)
    assert set(second.index.metadata["path"]) == set(table["path"].iloc[2:27])
    assert list(second.index.words["fit_state"]) == [24, 5]
    model = second._text_model
    assert list(model.terms) == list(fitted.terms) and np.array_equal(model.idf, fitted.idf)
    texts = list(second.texts)  # in the order of the index's metadata
    lines, owner = textsearch._split_lines(texts)
    assert abs(model.covers - textsearch.vectorise(fitted, texts)).max() == 0
    assert abs(model.lines - textsearch.vectorise(fitted, lines)).max() == 0
    assert np.array_equal(model.line_owner, owner)
    new = int(np.flatnonzero(second.index.metadata["path"] == table["path"].iloc[26])[0])
    grams = textsearch.known_grams(model, texts[new])
    assert len(grams) and new in second.index.words_engine.candidates(grams, 5)
    assert textstore.graph_of(second.index).shape == (25, 25)

    table.iloc[4:29].to_csv(tmp_path / "m.csv", index=False)  # 4 more changes: 9 > 0.3 * 24, refitted
    build_index(folder, manifest=tmp_path / "m.csv", workers=0, settings=settings)
    third = Recommender.open(folder, settings)
    assert list(third.index.words["fit_state"]) == [25, 0]
    _same_scores(third._text_model, textsearch.fit_text_vectors(list(third.texts)), ["sepultura", "rollins"])


def _bench_table_rows(script: str, *args: str) -> list[list[str]]:
    """Run bench/``script`` with ``args`` to a successful end; the cells of each row of the table it prints."""
    done = subprocess.run([sys.executable, str(REPO / "bench" / script), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    return [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]


def test_the_incremental_bench_compares_updates_with_refits(text_index: Path) -> None:
    """bench/words_incremental.py runs on an index with text: one table row per update, its top-10 overlap and
    both precisions in [0, 1]."""
    rows = _bench_table_rows("words_incremental.py", "--index", str(text_index), "--label", "artist", "--steps", "2",
                             "--churn")
    assert len(rows) == 3  # the header and two updates
    for row in rows[1:]:
        overlap, precisions = float(row[3]), [float(p) for p in row[4].split("/")]
        assert 0 <= overlap <= 1 and all(0 <= p <= 1 for p in precisions)

def test_both_over_every_cover_with_collection_statistics_equals_both_without_them(recommender: Recommender) -> None:
    """With every cover a candidate and every cover in the words sample, the collection-wide statistics are
    the candidates' own: the candidate path's scores are the exact path's."""
    from recsys.textstore import graph_of

    embeddings, texts = np.asarray(recommender.index.embeddings), list(recommender.texts)
    model, graph = recommender._text_model, graph_of(recommender.index)
    every = np.arange(len(texts))
    statistics = hybrid.candidate_statistics(embeddings, sample=len(texts))
    for row in (0, 13, 30):
        exact = hybrid.both_scores(embeddings, model, texts, every, embeddings[row], texts[row], graph=graph)
        counted = hybrid.both_scores(embeddings, model, texts, every, embeddings[row], texts[row], graph=graph,
                                     collection=hybrid.CollectionScores(statistics, model))
        assert np.allclose(exact[0], counted[0], atol=1e-4)


def test_both_from_candidates_ranks_the_top_ten_as_scoring_every_cover(
    recommender: Recommender, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above recommend.BOTH_EXACT_MAX covers (0 here) ``--by both`` scores only both_candidates' covers (11 by
    look, the query itself among them, and 8 by words per query cover: fewer than the index holds, and at least
    k = 10 allowed for the query, as both_candidates asks), and finds the same top 10 for three queries in
    four; where it differs, at most two of the ten change (the spreading sees no seeds outside the candidates)."""
    from recsys import recommend

    paths = pd.read_csv(manifest)["path"][:-1:3]
    exact = [recommender.similar_to_cover(path, by="both")["path"].tolist() for path in paths]
    monkeypatch.setattr(recommend, "BOTH_EXACT_MAX", 0)
    monkeypatch.setattr(recommend, "LOOK_NEIGHBOURS", 11)
    monkeypatch.setattr(recommend, "WORDS_NEIGHBOURS", 8)
    monkeypatch.setattr(recommend, "FEEDBACK_WORDS_NEIGHBOURS", 8)
    monkeypatch.setattr(recommend, "BOTH_MIN_CANDIDATES", 8)
    sizes = []
    original = recommend.both_candidates
    monkeypatch.setattr(recommend, "both_candidates", lambda *a: sizes.append(len(rows := original(*a))) or rows)
    found = [recommender.similar_to_cover(path, by="both")["path"].tolist() for path in paths]
    assert len(sizes) == len(paths) and max(sizes) < len(recommender.texts) - 1
    same = [set(a) == set(b) for a, b in zip(exact, found)]
    assert sum(same) >= 0.75 * len(paths), same
    assert all(len(set(a) & set(b)) >= 8 for a, b in zip(exact, found))


@pytest.mark.parametrize("artist", ["Nobody", "Sonny Rollins"])
def test_both_from_candidates_under_a_narrow_filter_ranks_every_allowed_cover(
    recommender: Recommender, manifest: Path, monkeypatch: pytest.MonkeyPatch, artist: str
) -> None:
    """A filter that keeps few of the query's look neighbours and words matches (covers of another artist, or
    the one blank cover) leaves the candidates too few: ``--by both`` then scores every allowed cover and
    returns min(k, allowed) results, the exact path's, rather than the few candidates that passed the filter."""
    from recsys import recommend

    table = pd.read_csv(manifest)
    query = table[table["artist"] == "Sepultura"]["path"].iloc[0]
    allowed = int((table["artist"] == artist).sum())
    exact = recommender.similar_to_cover(query, by="both", where={"artist": artist})
    monkeypatch.setattr(recommend, "BOTH_EXACT_MAX", 0)
    monkeypatch.setattr(recommend, "LOOK_NEIGHBOURS", 8)
    monkeypatch.setattr(recommend, "WORDS_NEIGHBOURS", 8)
    monkeypatch.setattr(recommend, "BOTH_MIN_CANDIDATES", 8)
    given = []
    original = recommend.both_candidates
    monkeypatch.setattr(recommend, "both_candidates", lambda *a: given.append(rows := original(*a)) or rows)
    found = recommender.similar_to_cover(query, by="both", where={"artist": artist})
    assert given == [None]
    assert len(found) == min(10, allowed)
    assert set(found["artist"]) == {artist}
    assert found["path"].tolist() == exact["path"].tolist()
    assert np.allclose(found["score"], exact["score"])


def test_a_both_query_looks_its_rows_up_without_comparing_a_column_and_reads_the_stored_text(
    recommender: Recommender, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query cover's own rows (left out of its results) and its stored text come from one lookup of its
    content hash and one of its path, no compare of a column (a cost that grows with the collection); the
    rows are the compare's and the text the one text_of finds alone."""
    path = str(pd.read_csv(manifest)["path"].iloc[4])
    query = recommender.read_query(path)
    expected = recommender.similar_to_cover(query, by="both")
    table = recommender.index.table
    compared: list[str] = []
    looked_up: list[str] = []
    original, rows_equal = table.equals, table.rows_equal
    monkeypatch.setattr(table, "equals", lambda column, value: compared.append(column) or original(column, value))
    monkeypatch.setattr(table, "rows_equal",
                        lambda column, value: looked_up.append(column) or rows_equal(column, value))
    found = recommender.similar_to_cover(query, by="both")
    assert compared == [] and sorted(looked_up) == ["content_hash", "path"]
    pd.testing.assert_frame_equal(found, expected)
    assert path not in found["path"].tolist()
    same = original("content_hash", query.content_hash)
    assert same.any() and rows_equal("content_hash", query.content_hash).tolist() == np.flatnonzero(same).tolist()
    assert recommender.text_of(query, same) == recommender.text_of(path) != ""


def test_both_candidates_search_the_look_of_the_query_alone_and_the_words_of_its_feedback_covers(
    recommender: Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look side of both_candidates is one FAISS search (the query's); its candidates are exactly the
    query's look neighbours and words matches (WORDS_NEIGHBOURS), the FEEDBACK_WORDS_NEIGHBOURS words matches of
    the covers its feedback takes, and the graph links of the best GRAPH_SEEDS after feedback, the query itself
    left out."""
    from recsys import recommend

    monkeypatch.setattr(recommend, "LOOK_NEIGHBOURS", 11)
    monkeypatch.setattr(recommend, "WORDS_NEIGHBOURS", 8)
    monkeypatch.setattr(recommend, "FEEDBACK_WORDS_NEIGHBOURS", 5)
    monkeypatch.setattr(recommend, "BOTH_MIN_CANDIDATES", 8)
    monkeypatch.setattr(recommend, "GRAPH_SEEDS", 5)
    embeddings, texts = np.asarray(recommender.index.embeddings), list(recommender.texts)
    model, engine, graph = recommender._text_model, recommender._words_engine, recommender._graph
    statistics = hybrid.candidate_statistics(embeddings)
    searched: list[int] = []

    def nearest(vectors: np.ndarray, count: int) -> np.ndarray:
        searched.append(len(vectors))
        return recommender._search(vectors, count)[1]

    grown = 0
    for row in (0, 13, 30):
        allowed = np.arange(len(texts)) != row
        found = recommend.both_candidates(embeddings, model, texts, allowed, embeddings[row], texts[row], nearest,
                                          engine, graph, hybrid.CollectionScores(statistics, model), 10)
        collection = hybrid.CollectionScores(statistics, model)
        own = np.unique(np.r_[recommender._search(embeddings[row][None], 11)[1].ravel(),
                              engine.candidates(collection.grams(hybrid.QUERY, texts[row]), 8)])
        own = own[(own >= 0) & allowed[np.maximum(own, 0)]]
        fed, fused = hybrid.feedback_rows(embeddings, model, texts, own, embeddings[row], texts[row], collection)
        words = [engine.candidates(collection.grams(key, texts[key]), 5)
                 for key in fed if textsearch.normalise(texts[key])]
        linked = graph[own[np.argsort(-fused, kind="stable")[:5]]].indices
        expected = np.unique(np.r_[own, np.concatenate([*words, linked]).astype(np.int64)])
        assert found is not None and found.tolist() == expected[allowed[expected]].tolist()
        grown += len(found) > len(own)
    assert searched == [1, 1, 1] and grown > 0


def test_both_candidates_ask_the_words_engine_fewer_for_the_feedback_covers_than_for_the_query(
    recommender: Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feedback covers' words searches, most of a warm ``--by both``'s words time at 1M covers, ask for
    FEEDBACK_WORDS_NEIGHBOURS (fewer than the query's WORDS_NEIGHBOURS: planted precision@10 within 0.002 of
    200 at 10k and 100k covers, docs/scale.md); the query's own search asks for WORDS_NEIGHBOURS, first."""
    from recsys import recommend

    assert recommend.FEEDBACK_WORDS_NEIGHBOURS < recommend.WORDS_NEIGHBOURS
    monkeypatch.setattr(recommend, "LOOK_NEIGHBOURS", 11)  # the defaults' words limits, on these few covers
    monkeypatch.setattr(recommend, "BOTH_MIN_CANDIDATES", 8)
    embeddings, texts = np.asarray(recommender.index.embeddings), list(recommender.texts)
    model, engine = recommender._text_model, recommender._words_engine
    statistics = hybrid.candidate_statistics(embeddings)
    limits: list[int] = []
    original = engine.candidates
    monkeypatch.setattr(engine, "candidates", lambda grams, limit: limits.append(limit) or original(grams, limit))
    row = 13
    allowed = np.arange(len(texts)) != row
    found = recommend.both_candidates(embeddings, model, texts, allowed, embeddings[row], texts[row],
                                      lambda vectors, count: recommender._search(vectors, count)[1], engine,
                                      recommender._graph, hybrid.CollectionScores(statistics, model), 10)
    assert found is not None and textsearch.normalise(texts[row])
    assert len(limits) > 1
    assert limits == [recommend.WORDS_NEIGHBOURS] + [recommend.FEEDBACK_WORDS_NEIGHBOURS] * (len(limits) - 1)


def test_collection_scores_score_each_candidate_once_per_query_cover(
    recommender: Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    """both_candidates' feedback and both_scores' share one CollectionScores: scoring a query cover again over
    grown candidates reads the words of the covers that joined only, and gives what scoring afresh gives."""
    embeddings, texts = np.asarray(recommender.index.embeddings), list(recommender.texts)
    model = recommender._text_model
    statistics = hybrid.candidate_statistics(embeddings, sample=5)
    scores = hybrid.CollectionScores(statistics, model)
    first, grown = np.arange(0, 20), np.arange(0, 36)
    scores.scores([3], first, embeddings, embeddings[[3]], [texts[3]])
    read = []
    original = textsearch.words_similarities
    monkeypatch.setattr(textsearch, "words_similarities",
                        lambda model, queries, rows=None: read.append(rows) or original(model, queries, rows))
    [after] = scores.scores([3], grown, embeddings, embeddings[[3]], [texts[3]])
    assert len(read) == 1 and read[0].tolist() == list(range(20, 36))
    [afresh] = hybrid.CollectionScores(statistics, model).scores([3], grown, embeddings, embeddings[[3]], [texts[3]])
    for kept, fresh in zip(after, afresh):
        assert np.allclose(kept, fresh, atol=1e-6)


class _CountedRows(np.ndarray):
    """Embeddings that record each row an integer array gathers from them."""

    gathered: list[int]

    def __getitem__(self, key: object) -> object:
        if isinstance(key, np.ndarray) and key.ndim == 1 and key.dtype.kind in "iu":
            self.gathered.extend(key.tolist())
        return super().__getitem__(key)


def test_collection_scores_read_each_embeddings_row_once_per_query(recommender: Recommender) -> None:
    """The query's candidates, then its feedback covers' over them, then all of them over grown candidates: each
    candidate's vector is gathered from the embeddings once, and the looks are still each cover's products."""
    embeddings, texts = np.asarray(recommender.index.embeddings), list(recommender.texts)
    counted = embeddings.view(_CountedRows)
    counted.gathered = []
    model = recommender._text_model
    statistics = hybrid.candidate_statistics(embeddings, sample=5)
    scores = hybrid.CollectionScores(statistics, model)
    first, grown = np.arange(0, 24), np.arange(0, len(texts), 2)
    scores.scores([hybrid.QUERY], first, counted, embeddings[[0]], [texts[0]])
    scores.scores([5, 13], first, counted, embeddings[[5, 13]], [texts[5], texts[13]])
    found = scores.scores([hybrid.QUERY, 5, 13, 30], grown, counted, embeddings[[0, 5, 13, 30]],
                          [texts[row] for row in (0, 5, 13, 30)])
    assert sorted(counted.gathered) == sorted(set(first) | set(grown))
    for row, (_, look, _) in zip((0, 5, 13, 30), found):
        assert np.allclose(look, embeddings[grown] @ embeddings[row], rtol=0, atol=1e-6)


def test_collection_scores_of_query_covers_together_equal_each_scored_alone(recommender: Recommender) -> None:
    """The covers one feedback round takes are scored in one call (their words in one sparse product, the
    sample's rows with the candidates'; their looks and look moments in one dense product each), and each gets
    what a call for it alone gives, also when some of them were scored over fewer candidates before: the words
    bit for bit, the looks and fused scores up to float rounding (a matrix product sums in another order than
    one cover's)."""
    embeddings, texts = np.asarray(recommender.index.embeddings), list(recommender.texts)
    model = recommender._text_model
    statistics = hybrid.candidate_statistics(embeddings, sample=7)
    first, grown = np.arange(0, 24), np.arange(0, len(texts), 2)
    keys = [hybrid.QUERY, 5, 13, 30]
    together = hybrid.CollectionScores(statistics, model)
    together.scores(keys[:2], first, embeddings, embeddings[[0, 5]], [texts[0], texts[5]])
    rows = [0, 5, 13, 30]
    found = together.scores(keys, grown, embeddings, embeddings[rows], [texts[row] for row in rows])
    for key, row, scored in zip(keys, rows, found):
        alone = hybrid.CollectionScores(statistics, model)
        if key in keys[:2]:
            alone.scores([key], first, embeddings, embeddings[[row]], [texts[row]])
        fused, look, words = alone.scores([key], grown, embeddings, embeddings[[row]], [texts[row]])[0]
        assert np.array_equal(scored[2], words)
        assert np.allclose(scored[1], look, rtol=0, atol=1e-6) and np.allclose(scored[0], fused, rtol=0, atol=1e-5)
        assert np.allclose(scored[1], embeddings[grown] @ embeddings[row], rtol=0, atol=1e-6)


def test_words_similarities_of_several_texts_equal_each_text_alone() -> None:
    """words_similarities scores several texts (one with no known n-gram, one of a single short line) in one
    product, each column bit for bit the plain definition for that text alone: the mean of the texts' cosine
    and the best line score of any two of their printed lines (the query line's share the cover line holds, times
    how informative the query line is), cover by cover, over chosen rows or every cover."""
    texts = [f"Artist {i % 7}\nAlbum {i}\nRECORDS" if i % 5 else "" for i in range(40)]
    model = textsearch.fit_text_vectors(texts)
    queries = ["Artist 3\nAlbum 13", "zzzz", "RECORDS", "Album 2\nArtist 2\nlive"]
    rows = np.array([39, 3, 0, 17, 17, 8])
    for chosen in (rows, None):
        together = textsearch.words_similarities(model, textsearch.vectorise_queries(model, queries), chosen)
        for column, query in enumerate(queries):
            vectorised = textsearch.vectorise_queries(model, [query])
            informative = np.minimum(1.0, textsearch.line_idf_sums(vectorised.lines, model.idf)
                                     / textsearch.informative_idf(model))
            plain = []
            for row in range(len(texts)) if chosen is None else chosen:
                whole = (model.covers[[row]] @ vectorised.covers.T).toarray()[0, 0]
                held = textsearch.line_containment(model.lines[model.line_owner == row], vectorised.lines)
                pairs = (held.toarray() * informative).astype(np.float32)
                plain.append(0.5 * whole + 0.5 * pairs.max(initial=np.float32(0.0)))
            assert np.array_equal(together[:, column], np.array(plain, dtype=np.float32))
            assert np.array_equal(together[:, column], textsearch.words_similarity(model, query, chosen))


def _same_moments(stored: object, computed: object) -> None:
    """Two LookMoments equal bit for bit, in float32."""
    assert stored is not None
    for name in ("mean_vector", "covariance"):
        a, b = getattr(stored, name), getattr(computed, name)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape and np.array_equal(a, b), name


def _as_written_before_look_statistics(folder: Path) -> None:
    """The index folder as sleeve wrote it before it stored look statistics."""
    info = json.loads((folder / "index.json").read_text())
    (folder / info["files"].pop("lookstats")).unlink()
    (folder / "index.json").write_text(json.dumps(info))


def _both_from_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``--by both`` score candidates with collection-wide statistics on these few covers."""
    from recsys import recommend

    monkeypatch.setattr(recommend, "BOTH_EXACT_MAX", 0)
    monkeypatch.setattr(recommend, "LOOK_NEIGHBOURS", 11)
    monkeypatch.setattr(recommend, "WORDS_NEIGHBOURS", 8)
    monkeypatch.setattr(recommend, "FEEDBACK_WORDS_NEIGHBOURS", 8)
    monkeypatch.setattr(recommend, "BOTH_MIN_CANDIDATES", 8)


def test_both_reads_the_stored_look_statistics_instead_of_the_vectors(
    text_index: Path, cache: Path, manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build-index --read-text stores the embeddings' mean vector and covariance (mapped when loaded), equal bit
    for bit to what a query would compute from the vectors; a ``--by both`` query then computes none."""
    recommender = Recommender.open(text_index, Settings(cache_dir=cache))
    stored = recommender.index.look_moments
    assert read_info(text_index).files["lookstats"].startswith("lookstats-")
    assert isinstance(stored.covariance.base.base, np.memmap)  # a (d, d) view of the mapped flat array
    _same_moments(stored, hybrid.sampled_look_moments(recommender.index.embeddings))

    def no_sample(embeddings: object) -> None:
        raise AssertionError("a query computed the look statistics from the vectors")

    monkeypatch.setattr(hybrid, "sampled_look_moments", no_sample)
    _both_from_candidates(monkeypatch)
    query = pd.read_csv(manifest)["path"].iloc[0]
    assert len(recommender.similar_to_cover(query, k=5, by="both")) == 5


def test_an_index_without_look_statistics_computes_them_and_answers_the_same(
    text_index: Path, cache: Path, manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index written before sleeve stored the look statistics samples the vectors at the first ``--by both``
    query, as before, and gets the stored statistics bit for bit and the same answers."""
    older = tmp_path / "older"
    shutil.copytree(text_index, older)
    _as_written_before_look_statistics(older)
    new, old = (Recommender.open(folder, Settings(cache_dir=cache)) for folder in (text_index, older))
    assert old.index.look_moments is None
    sampled = []
    original = hybrid.sampled_look_moments
    monkeypatch.setattr(hybrid, "sampled_look_moments", lambda embeddings: sampled.append(1) or original(embeddings))
    _both_from_candidates(monkeypatch)
    for path in pd.read_csv(manifest)["path"][::7]:
        pd.testing.assert_frame_equal(old.similar_to_cover(path, by="both"), new.similar_to_cover(path, by="both"))
    assert sampled == [1]  # once per process, by the index without them
    _same_moments(new._statistics, old._statistics)
    assert np.array_equal(new._statistics.sample, old._statistics.sample)


def test_the_warm_both_bench_times_both_checkouts_and_compares_their_answers(text_index: Path) -> None:
    """bench/warm_both.py with this checkout as the older one too: one table row per checkout, positive
    percentiles, and the same answers."""
    rows = _bench_table_rows("warm_both.py", "--index", str(text_index), "--before", str(REPO), "--rounds", "1",
                             "--queries", "2")
    assert len(rows) == 3  # the header and two checkouts
    for row in rows[1:]:
        assert float(row[2]) > 0 and float(row[3]) >= float(row[2]) and row[4].strip() == "same"


def test_the_warm_bench_times_words_searches_when_told(text_index: Path) -> None:
    """bench/warm_both.py --ask words times search_text of the covers' texts, and says so in its header."""
    done = subprocess.run([sys.executable, str(REPO / "bench" / "warm_both.py"), "--index", str(text_index),
                           "--before", str(REPO), "--rounds", "1", "--queries", "2", "--ask", "words"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "warm search_text(whole cover text) ms" in done.stdout
    rows = [line.split("|")[1:-1] for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 3  # the header and two checkouts
    assert all(float(row[2]) > 0 and row[4].strip() == "same" for row in rows[1:])


def test_the_planted_precision_bench_ranks_the_covers_with_an_artist(text_index: Path, tmp_path: Path) -> None:
    """bench/planted_precision.py asks the covers with an artist through similar_to_cover: a precision in
    [0, 1] over as many queries as asked, and each query's ten distinct paths written."""
    answers = tmp_path / "answers.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "planted_precision.py"), "--index", str(text_index),
                           "--queries", "5", "--answers", str(answers)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    found = re.search(r"precision@10 by both ([0-9.]+) over (\d+) planted covers", done.stdout)
    assert found and 0.0 <= float(found.group(1)) <= 1.0 and found.group(2) == "5"
    tops = json.loads(answers.read_text())
    assert len(tops) == 5 and all(len(top) == 10 and len(set(top)) == 10 for top in tops)


def test_the_warm_both_bench_asks_the_planted_covers_when_told() -> None:
    """--planted: only covers with an artist (stored as user:artist) and text, in the same fixed order as the
    random draw; without an artist column it says so rather than asking random covers."""
    from bench.warm_both import query_rows

    table = pd.DataFrame({"path": list("abcdef"), "user:artist": ["x", "", "y", None, "z", "w"]})
    texts = ["one", "two", "", "four", "five", "six"]
    every, planted = query_rows(table, texts, False), query_rows(table, texts, True)
    assert sorted(every) == [0, 1, 3, 4, 5] and sorted(planted) == [0, 4, 5]
    assert planted == [row for row in every if row in planted]
    with pytest.raises(SystemExit, match="artist"):
        query_rows(table.drop(columns="user:artist"), texts, True)


def test_the_spreading_seeds_only_the_best_candidates_when_told() -> None:
    fused = np.array([3.0, -1.0, 2.0, 0.5, 1.0])
    assert np.array_equal(hybrid.seed_scores(fused, 0), [3.0, 0.0, 2.0, 0.5, 1.0])  # every positive one
    assert np.array_equal(hybrid.seed_scores(fused, 2), [3.0, 0.0, 2.0, 0.0, 0.0])  # the two best only


def test_the_focus_of_many_covers_reads_their_best_pool_only() -> None:
    """Past SPREAD_POOL scores only the best pool counts: 10 strong covers among 90 weak and 10,000 weaker."""
    fused = np.r_[np.full(10, 5.0), np.full(90, 0.5), np.full(10_000, 0.4), -np.ones(5)]
    np.random.default_rng(0).shuffle(fused)
    assert hybrid.SPREAD_POOL == 100
    assert hybrid.focus(fused, 0.8) == pytest.approx(50.0 / (50.0 + 45.0) / 0.8)  # 0.66; of every cover: 0.015


def test_the_spreading_weakens_when_the_best_candidates_do_not_stand_apart() -> None:
    apart = np.r_[np.full(10, 5.0), np.full(40, 0.1), np.zeros(50)]  # top 10 hold 0.93 of the best 50's score
    tied = np.r_[np.full(50, 1.0), np.zeros(50)]  # top 10 hold 0.2
    assert hybrid.focus(apart, 0.5) == 1.0 and hybrid.focus(tied, 0.0) == 1.0
    assert hybrid.focus(tied, 0.5) == pytest.approx(0.4)
    # a path of three covers: the spreading lifts the unseeded end less when the seeds tie
    graph = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=np.float64))
    fused = np.array([1.0, 0.0, 0.0])
    strong = hybrid.spread_from(graph, np.arange(3), fused, 3, keep=0.5)
    with_tie = np.r_[fused, np.ones(60)]  # 60 more covers as good as the first: no focus
    whole = sparse.block_diag([graph, sparse.csr_matrix((60, 60))]).tocsr()
    weak = hybrid.spread_from(whole, np.arange(63), with_tie, 63, keep=0.5, focus_at=0.5)[:3]
    same = hybrid.spread_from(whole, np.arange(63), with_tie, 63, keep=0.5, focus_at=0.0)[:3]
    assert np.allclose(same, strong) and weak[2] < strong[2] / 2
    default = hybrid.spread_from(whole, np.arange(63), with_tie, 63, keep=0.5)[:3]
    assert weak[2] < default[2] < same[2]  # the default spreads less among ties too, not as little as 0.5


def test_the_spreading_weakens_when_the_best_seeds_link_out_of_the_strong_candidates(monkeypatch) -> None:
    monkeypatch.setattr(hybrid, "SPREAD_LINK_SEEDS", 1)
    monkeypatch.setattr(hybrid, "SPREAD_LINK_POOL", 2)
    # cover 0 (the best) links to cover 1 (the second best, inside the pool) and to cover 3 (weak, outside)
    graph = sparse.csr_matrix(np.array([[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=np.float64))
    fused = np.array([3.0, 2.0, 0.5, 0.0])
    assert hybrid.link_share(graph, np.arange(4), fused) == pytest.approx(0.5)
    inside = sparse.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float64))
    assert hybrid.link_share(inside, np.arange(4), fused) == 1.0
    assert hybrid.link_share(sparse.csr_matrix((4, 4)), np.arange(4), fused) == 1.0  # no links: nothing to judge
    halved = hybrid.spread_from(graph, np.arange(4), fused, 4, keep=0.5, focus_at=0.0, links_at=1.0)
    assert np.allclose(halved, hybrid.spread_from(graph, np.arange(4), fused, 4, keep=0.25, focus_at=0.0))
    full = hybrid.spread_from(graph, np.arange(4), fused, 4, keep=0.5, focus_at=0.0, links_at=0.5)
    assert np.allclose(full, hybrid.spread_from(graph, np.arange(4), fused, 4, keep=0.5, focus_at=0.0))
    assert halved[3] < full[3]  # the weak cover the best seed links to rises less


def test_within_is_isin_for_an_ascending_array() -> None:
    """CollectionScores' membership test by binary search answers as np.isin, empty and edge rows included."""
    rng = np.random.default_rng(5)
    for size in (0, 1, 7, 300):
        ascending = np.unique(rng.integers(0, 500, size))
        values = np.concatenate([rng.integers(-3, 505, 400), ascending[:1], ascending[-1:], [0, 499]])
        assert np.array_equal(hybrid._within(values, ascending), np.isin(values, ascending))


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: recommend.searches has one thread")
def test_both_candidates_run_the_look_and_words_searches_beside_each_other(
    recommender: Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The query's look search runs beside its words search, and the feedback covers' words searches beside each
    other (recommend.searches, on a second core): each search here waits 50 ms, and two of them overlap; the
    candidates are those of the searches run one after another."""
    from recsys import recommend

    monkeypatch.setattr(recommend, "LOOK_NEIGHBOURS", 11)
    monkeypatch.setattr(recommend, "BOTH_MIN_CANDIDATES", 8)
    embeddings, texts = np.asarray(recommender.index.embeddings), list(recommender.texts)
    model, engine = recommender._text_model, recommender._words_engine
    statistics = hybrid.candidate_statistics(embeddings)
    row = 13
    allowed = np.arange(len(texts)) != row

    def candidates(nearest: Callable, engine: textsearch.CandidateEngine) -> np.ndarray | None:
        return recommend.both_candidates(embeddings, model, texts, allowed, embeddings[row], texts[row], nearest,
                                         engine, recommender._graph, hybrid.CollectionScores(statistics, model), 10)

    running, overlaps, lock = [0], [], threading.Lock()

    def slowly(search: Callable) -> Callable:
        def searched(*args: object) -> object:
            with lock:
                running[0] += 1
                overlaps.append(running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return search(*args)
        return searched

    def nearest(vectors: np.ndarray, count: int) -> np.ndarray:
        return recommender._search(vectors, count)[1]

    expected = candidates(nearest, engine)
    monkeypatch.setattr(engine, "candidates", slowly(engine.candidates))
    found = candidates(slowly(nearest), engine)
    assert overlaps[:2] == [1, 2] and len(overlaps) > 3 and max(overlaps[2:]) == 2
    assert expected is not None and found is not None and found.tolist() == expected.tolist()
