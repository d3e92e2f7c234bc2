"""The words candidate stage (index.words_engine, textsearch.words_scores): the engine's candidates, scored by
sleeve, rank the same top 10 as scoring every cover; the engine switches generations with the index; an index
without one still answers by scoring every cover.

The texts are synthetic (names and words drawn with a fixed seed, OCR-like slips); the same
comparison on real OCR text of the shared covers is measured in docs/words.md."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pytest

from index.faiss_index import build_faiss_index
from index.store import IndexDamagedError, load_index, write_index
from index.words_engine import WordsEngine
from recsys import textsearch

WORDS = [
    "alan", "jackson", "sepultura", "peter", "tosh", "sonny", "rollins", "records", "stereo", "live", "greatest",
    "hits", "volume", "blue", "night", "river", "orchestra", "quartet", "sessions", "remastered", "love", "songs",
    "gold", "city", "dream", "fire", "moon", "band", "trio", "deluxe", "edition", "original", "soundtrack",
]


def _vocabulary(size: int = 2000) -> list[str]:
    """WORDS and made-up words of 3-9 letters: a collection's names and titles are mostly its own. (With WORDS
    alone a third of 3,000 covers share n-grams with any query, and BM25's best 1,000 miss some of the top 10.)"""
    rng = np.random.default_rng(42)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return WORDS + ["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(size - len(WORDS))]


def _texts(count: int, seed: int) -> list[str]:
    """Cover texts of 1-4 lines of 1-3 words, some with a letter dropped, as OCR does."""
    rng = np.random.default_rng(seed)
    vocabulary = _vocabulary()
    texts = []
    for _ in range(count):
        lines = []
        for _ in range(rng.integers(1, 5)):
            line = " ".join(rng.choice(vocabulary, rng.integers(1, 4)))
            if rng.random() < 0.2:
                cut = rng.integers(1, len(line))
                line = line[:cut] + line[cut + 1 :]
            lines.append(line.upper() if rng.random() < 0.5 else line)
        texts.append("\n".join(lines) if rng.random() > 0.05 else "")
    return texts


def _top(rows: np.ndarray, scores: np.ndarray, k: int = 10) -> np.ndarray:
    """The scores of the best ``k`` covers (ties make the rows themselves arbitrary)."""
    matched = np.flatnonzero(scores > 0)
    return np.sort(scores[matched])[::-1][:k]


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], textsearch.TextModel, WordsEngine]:
    texts = _texts(3000, seed=0)
    model = textsearch.fit_text_vectors(texts)
    folder = tmp_path_factory.mktemp("engine") / "words.tantivy"
    from index.words_engine import write_engine

    write_engine(folder, model.terms, model.covers.indices, model.covers.indptr)
    return texts, model, WordsEngine(folder, len(texts))


def test_restricted_scores_equal_the_full_ones(collection: tuple) -> None:
    texts, model, _ = collection
    rows = np.array([5, 17, 18, 400, 2999, 3])
    np.testing.assert_allclose(
        textsearch.words_similarity(model, texts[17], rows), textsearch.words_similarity(model, texts[17])[rows],
        atol=1e-6,
    )


def test_candidates_rank_the_same_top_10_as_every_cover(collection: tuple) -> None:
    texts, model, engine = collection
    everything = np.ones(len(texts), dtype=bool)
    queries = [text for text in texts[:300] if text] + ["alan jackson", "SEPULTURA live", "qu", "orchestr"]
    for query in queries:
        rows, scores = textsearch.words_scores(model, query, engine, everything, 10)
        assert len(rows) <= textsearch.CANDIDATES
        np.testing.assert_allclose(_top(rows, scores), _top(*textsearch.words_scores(model, query, None, everything, 10)),
                                   atol=1e-6, err_msg=query)


def test_a_filter_that_leaves_few_candidates_scores_every_allowed_cover(collection: tuple) -> None:
    texts, model, engine = collection
    allowed = np.zeros(len(texts), dtype=bool)
    allowed[::2] = True  # more allowed covers than candidates
    rows, scores = textsearch.words_scores(model, "moon", engine, allowed, 10)
    assert allowed[rows].all()
    np.testing.assert_allclose(_top(rows, scores), _top(*textsearch.words_scores(model, "moon", None, allowed, 10)))


def _write(folder: Path, texts: list[str], seed: int) -> None:
    vectors = np.random.default_rng(seed).standard_normal((len(texts), 8)).astype(np.float32)
    metadata = pd.DataFrame({
        "id": range(len(texts)), "path": [f"/c/{seed}-{i}.jpg" for i in range(len(texts))],
        "content_hash": [f"{seed}-{i}" for i in range(len(texts))], "size": 1, "mtime_ns": 1, "genre": "rock",
    })
    index: faiss.Index = build_faiss_index(vectors, "flat")[0]
    words = textsearch.model_arrays(textsearch.fit_text_vectors(texts))
    write_index(folder, index, metadata, vectors, {"family": "m"}, "m:1", "flat", {}, words=words)


def test_the_engine_switches_generations_with_the_index(tmp_path: Path) -> None:
    _write(tmp_path, _texts(40, seed=1), seed=1)
    first = load_index(tmp_path)
    before = first.words_engine.candidates(["moo", "oon"], 100)
    _write(tmp_path, _texts(60, seed=2), seed=2)
    engines = list(tmp_path.glob("words-*.tantivy"))
    assert [path.name for path in engines] == [load_index(tmp_path).info.files["words_engine"]]
    assert load_index(tmp_path).words_engine.count == 60
    np.testing.assert_array_equal(first.words_engine.candidates(["moo", "oon"], 100), before)  # still mapped


def test_an_index_without_an_engine_loads_and_one_with_a_broken_engine_says_how_to_repair(tmp_path: Path) -> None:
    _write(tmp_path, _texts(40, seed=3), seed=3)
    info = json.loads((tmp_path / "index.json").read_text())
    engine = tmp_path / info["files"]["words_engine"]
    for part in engine.iterdir():
        if part.name == "meta.json":
            part.write_text("{not json")
    with pytest.raises(IndexDamagedError, match="build-index --rebuild"):
        load_index(tmp_path)
    del info["files"]["words_engine"]  # as an index written before sleeve stored an engine
    (tmp_path / "index.json").write_text(json.dumps(info))
    loaded = load_index(tmp_path)
    assert loaded.words_engine is None and loaded.words is not None
