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
  line's cosine over character 3-grams without spaces (a typed query's line score: what ``sleeve search`` runs);
- ``sleeve, OCR confusions folded``: the same with 0/o, 1/l/j/i, 5/s made one letter before the n-grams;
- ``sleeve + word coverage``: sleeve's score plus the IDF-weighted share of the query's words (3+ letters)
  that rapidfuzz's partial_ratio finds (>= 90) in a cover's text;
- ``sleeve, spread over the neighbour graph``: sleeve's scores of 0.2 or more spread over the index's stored
  look-and-words graph (recsys.hybrid.spread_over, keep 0.3), which can rank a cover that does not print the
  query but whose neighbours do (only when the index holds a graph).

Then the ceiling of any engine that ranks by printed text: how many covers print the query at all.
A cover "prints" a name when rapidfuzz's partial_ratio finds its words (3+ letters) in the normalised text,
all of them (>= 80, strict) or any one (>= 70, lenient); an artist's ceiling is min(10, covers printing the
name) / 10, an album counts when one of its covers prints its title without bracketed parts ("(Live 1994)").
Rows for half of the artists (sorted names, every other one) and the other half show what is tuned on what.

    python cli.py build-index --manifest ../shared/artist-covers/MANIFEST.csv --index /tmp/artist-idx --read-text
    python bench/textsearch.py --index /tmp/artist-idx
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from index.store import shown_name  # noqa: E402
from recsys import hybrid, textsearch  # noqa: E402
from recsys.textstore import graph_of, load_index_with_texts  # noqa: E402

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
    return lambda query: textsearch.words_similarity(model, query, typed=True)


OCR_FOLD = str.maketrans({"0": "o", "1": "i", "l": "i", "j": "i", "5": "s"})


def fold(text: str) -> str:
    return "\n".join(textsearch.normalise(line).translate(OCR_FOLD) for line in text.splitlines())


def folded_search(texts: list[str]) -> Engine:
    model = textsearch.fit_text_vectors([fold(t) for t in texts])
    return lambda query: textsearch.words_similarity(model, fold(query), typed=True)


def query_words(query: str) -> list[str]:
    return [w for w in (textsearch.normalise(part) for part in re.split(r"[\s\-/&,:.()'\"]+", query)) if len(w) >= 3]


def word_matches(query: str, texts: list[str]) -> np.ndarray:
    """partial_ratio (0-100) of each query word (rows) in each cover's normalised text (columns)."""
    words = query_words(query)
    if not words:
        return np.zeros((0, len(texts)))
    return process.cdist(words, [textsearch.normalise(t) for t in texts], scorer=fuzz.partial_ratio)


def coverage_search(texts: list[str]) -> Engine:
    sleeve = sleeve_search(texts)

    def search(query: str) -> np.ndarray:
        found = word_matches(query, texts) >= 90
        idf = np.log((len(texts) + 1) / (found.sum(axis=1) + 1)) + 1
        coverage = (idf[:, None] * found).sum(axis=0) / idf.sum() if len(idf) else 0.0
        return sleeve(query) + 0.25 * coverage

    return search


def spread_search(texts: list[str], graph: sparse.csr_matrix) -> Engine:
    sleeve = sleeve_search(texts)

    def search(query: str) -> np.ndarray:
        scores = sleeve(query)
        return hybrid.spread_over(graph, np.where(scores >= hybrid.WORDS_FLOOR, scores, 0.0), keep=0.3)

    return search


def evaluate(engine: Engine, artists: np.ndarray, albums: np.ndarray) -> tuple[dict[str, float], float]:
    precisions = {}
    for artist in np.unique(artists):
        relevant = artists == artist
        top = np.argsort(-engine(artist), kind="stable")[:10]
        precisions[artist] = relevant[top].sum() / 10
    found = []
    for album in np.unique(albums):
        top = np.argsort(-engine(album), kind="stable")[:5]
        found.append(bool((albums[top] == album).any()))
    return precisions, float(np.mean(found))


def prints(query: str, texts: list[str], strict: bool) -> np.ndarray:
    """Whether each text prints ``query``: all its words at partial_ratio >= 80 (strict) or any at >= 70."""
    matches = word_matches(query, texts)
    if not len(matches):
        return np.zeros(len(texts), dtype=bool)
    return (matches >= 80).all(axis=0) if strict else (matches >= 70).any(axis=0)


def ceiling(texts: list[str], artists: np.ndarray, albums: np.ndarray, strict: bool) -> tuple[dict[str, float], float]:
    """The best any text ranking can do: each artist's covers that print the name first, each album found
    when one of its covers prints its title."""
    reach = {}
    for artist in np.unique(artists):
        rows = np.flatnonzero(artists == artist)
        reach[artist] = min(10, int(prints(artist, [texts[r] for r in rows], strict).sum())) / 10
    found = []
    for album in np.unique(albums):
        rows = np.flatnonzero(albums == album)
        title = re.sub(r"\s*[(\[].*?[)\]]", "", album) or album
        found.append(bool(prints(title, [texts[r] for r in rows], strict).any()))
    return reach, float(np.mean(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="index of artist-covers built with --read-text")
    args = parser.parse_args()
    index, texts = load_index_with_texts(args.index)
    metadata = index.metadata.rename(columns=shown_name)  # manifest columns are stored as user:<name>
    artists = metadata["artist"].astype(str).to_numpy()
    albums = metadata["album"].astype(str).to_numpy()
    engines = {
        "tfidf cosine (reference)": tfidf_cosine(texts),
        "fts5 trigram bm25": fts5_trigram(texts, str.lower),
        "fts5 trigram bm25, spaces removed": fts5_trigram(texts, textsearch.normalise),
        "sleeve (whole text + best line, recsys.textsearch)": sleeve_search(texts),
        "sleeve, OCR confusions folded": folded_search(texts),
        "sleeve + word coverage (rapidfuzz)": coverage_search(texts),
    }
    graph = graph_of(index)
    if graph is not None:
        engines["sleeve, spread over the neighbour graph"] = spread_search(texts, graph)
    half = set(np.unique(artists)[::2])
    print(f"# search by words, {len(texts)} covers ({sum(bool(t) for t in texts)} with text), "
          f"{len(np.unique(artists))} artists, {len(np.unique(albums))} albums; {machine_line(describe_machine())}")
    print("| engine | artist precision@10 | (half A / half B) | album in top 5 |")
    print("|---|---:|---:|---:|")
    rows = {name: evaluate(engine, artists, albums) for name, engine in engines.items()}
    rows["ceiling: covers printing every word of the name (strict)"] = ceiling(texts, artists, albums, strict=True)
    rows["ceiling: covers printing any word of the name (lenient)"] = ceiling(texts, artists, albums, strict=False)
    counts = {artist: min(10, int((artists == artist).sum())) / 10 for artist in np.unique(artists)}
    rows["ceiling: covers per artist, min(10, n) / 10"] = (counts, float("nan"))
    for name, (precision, found) in rows.items():
        a = np.mean([v for k, v in precision.items() if k in half])
        b = np.mean([v for k, v in precision.items() if k not in half])
        print(f"| {name} | {np.mean(list(precision.values())):.3f} | {a:.3f} / {b:.3f} | {found:.3f} |")
    sleeve = rows["sleeve (whole text + best line, recsys.textsearch)"][0]
    print("\nartists below 0.5 with sleeve: precision@10, covers printing every word / any word of the name / covers")
    for artist in sorted(a for a, p in sleeve.items() if p < 0.5):
        own = [texts[r] for r in np.flatnonzero(artists == artist)]
        print(f"- {artist}: {sleeve[artist]:.1f}, {prints(artist, own, strict=True).sum()} / "
              f"{prints(artist, own, strict=False).sum()} / {len(own)}")


if __name__ == "__main__":
    main()
