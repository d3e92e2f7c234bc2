"""Search-by-words benchmark: sleeve's search against SQLite FTS5 and a plain TF-IDF, on real covers with
known artists and albums (``../shared/artist-covers``, indexed with ``build-index --read-text``).

- artist precision@10: search each artist's name; the share of the top 10 that are that artist's covers
  (hits / 10, as in the reference figure, so an artist with fewer than 10 covers cannot reach 1);
- album in top 5: search each album's name; the share of albums one of whose covers is in the top 5.

Engines, all over the same stored OCR text of the index:
- ``tfidf cosine``: TF-IDF of character 2-4-grams within words, cosine to the query (the reference figure);
- ``fts5 trigram bm25``: SQLite FTS5 with its trigram tokenizer over the lower-cased text, the query's
  trigrams OR-ed (an AND of them finds only exact substrings, which OCR errors break), ranked by bm25;
- ``fts5 trigram bm25, spaces removed``: the same over recsys.textsearch.normalise'd text and query;
- ``sleeve``: recsys.textsearch.words_similarity, the mean of the whole text's cosine and the best printed
  line's cosine over character 3-grams without spaces (what ``sleeve search`` runs).

    python cli.py build-index --manifest ../shared/artist-covers/MANIFEST.csv --index /tmp/artist-idx --read-text
    python bench/textsearch.py --index /tmp/artist-idx
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from recsys import textsearch  # noqa: E402
from recsys.textstore import load_index_with_texts  # noqa: E402

Engine = Callable[[str], np.ndarray]


def tfidf_cosine(texts: list[str]) -> Engine:
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), lowercase=True)
    matrix = vectorizer.fit_transform(texts)
    return lambda query: np.asarray((matrix @ vectorizer.transform([query]).T).toarray()).ravel()


def fts5_trigram(texts: list[str], prepare: Callable[[str], str]) -> Engine:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE covers USING fts5(text, tokenize='trigram')")
    db.executemany("INSERT INTO covers (rowid, text) VALUES (?, ?)", ((i, prepare(t)) for i, t in enumerate(texts)))

    def search(query: str) -> np.ndarray:
        prepared = prepare(query)
        grams = sorted({prepared[i : i + 3] for i in range(len(prepared) - 2)})
        scores = np.zeros(len(texts))
        if not grams:
            return scores
        match = " OR ".join('"' + gram.replace('"', '""') + '"' for gram in grams)
        for rowid, rank in db.execute("SELECT rowid, bm25(covers) FROM covers WHERE covers MATCH ?", (match,)):
            scores[rowid] = -rank  # bm25() is smaller for better matches
        return scores

    return search


def sleeve_search(texts: list[str]) -> Engine:
    model = textsearch.fit_text_vectors(texts)
    return lambda query: textsearch.words_similarity(model, query)


def evaluate(engine: Engine, artists: np.ndarray, albums: np.ndarray) -> tuple[float, float]:
    precisions = []
    for artist in np.unique(artists):
        relevant = artists == artist
        top = np.argsort(-engine(artist), kind="stable")[:10]
        precisions.append(relevant[top].sum() / 10)
    found = []
    for album in np.unique(albums):
        top = np.argsort(-engine(album), kind="stable")[:5]
        found.append(bool((albums[top] == album).any()))
    return float(np.mean(precisions)), float(np.mean(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="index of artist-covers built with --read-text")
    args = parser.parse_args()
    index, texts = load_index_with_texts(args.index)
    artists = index.metadata["artist"].astype(str).to_numpy()
    albums = index.metadata["album"].astype(str).to_numpy()
    engines = {
        "tfidf cosine (reference)": tfidf_cosine(texts),
        "fts5 trigram bm25": fts5_trigram(texts, str.lower),
        "fts5 trigram bm25, spaces removed": fts5_trigram(texts, textsearch.normalise),
        "sleeve (whole text + best line, recsys.textsearch)": sleeve_search(texts),
    }
    print(f"# search by words, {len(texts)} covers ({sum(bool(t) for t in texts)} with text), "
          f"{len(np.unique(artists))} artists, {len(np.unique(albums))} albums; {machine_line(describe_machine())}")
    print("| engine | artist precision@10 | album in top 5 |")
    print("|---|---:|---:|")
    for name, engine in engines.items():
        precision, found = evaluate(engine, artists, albums)
        print(f"| {name} | {precision:.3f} | {found:.3f} |")


if __name__ == "__main__":
    main()
