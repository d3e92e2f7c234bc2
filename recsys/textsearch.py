"""Compare covers by the words printed on them, robust to OCR errors: character n-grams of normalised text.

OCR drops spaces and confuses letters ("ALANIACKSON" for "ALAN JACKSON"), so words are compared by their
character 3-grams, taken with the spaces removed so that a lost space costs nothing, and weighted by TF-IDF
over the collection so that "records" or "stereo" count less than a name. Plain functions over arrays.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

NGRAM = (3, 3)


def normalise(text: str) -> str:
    """Lower case, accents stripped, only letters and digits, words joined: "Alan  JACKSON!" -> "alanjackson"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return re.sub(r"[\W_]+", "", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _lines(text: str) -> list[str]:
    """The normalised printed lines of a cover text (one per OCR line), empty ones dropped."""
    return [line for line in (normalise(part) for part in text.splitlines()) if line]


def _analyse(text: str) -> list[str]:
    """Character n-grams of each printed line (never across two lines, whose order OCR does not fix)."""
    grams = []
    for line in _lines(text):
        padded = f" {line} "
        for n in range(NGRAM[0], NGRAM[1] + 1):
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


def fit_text_vectors(texts: Sequence[str]) -> tuple[TfidfVectorizer, sparse.csr_matrix]:
    """A TF-IDF model of the collection's texts and each cover's unit-length row (all zero: no text)."""
    vectorizer = TfidfVectorizer(analyzer=_analyse, sublinear_tf=True, dtype=np.float32)
    if not any(_lines(text) for text in texts):
        vectorizer.fit(["   "])  # no cover carries text: an empty vocabulary would make sklearn refuse to fit
        return vectorizer, sparse.csr_matrix((len(texts), len(vectorizer.vocabulary_)), dtype=np.float32)
    return vectorizer, vectorizer.fit_transform(texts).tocsr()


def text_similarity(matrix: sparse.csr_matrix, query: sparse.csr_matrix) -> np.ndarray:
    """Cosine similarity of one query row to every cover (0 where either carries no text)."""
    return np.asarray((matrix @ query.T).toarray()).ravel()


def search_scores(vectorizer: TfidfVectorizer, matrix: sparse.csr_matrix, query: str) -> np.ndarray:
    """How well each cover's text contains the query, in [0, 1]: the IDF-weighted share of the query's
    n-grams that the cover carries, so a long cover text that holds the whole name is not penalised
    (cosine would be); cosine breaks ties between covers that hold all of it."""
    wanted = sorted(set(_analyse(query)))
    if not wanted:
        return np.zeros(matrix.shape[0], dtype=np.float32)
    vocabulary = vectorizer.vocabulary_
    known = np.array([vocabulary[g] for g in wanted if g in vocabulary], dtype=np.int64)
    # An n-gram no cover carries weighs as much as the rarest one: it still counts against every cover.
    unknown_weight = (len(wanted) - known.size) * float(vectorizer.idf_.max())
    idf = vectorizer.idf_[known].astype(np.float32)
    present = (matrix[:, known] > 0).astype(np.float32)
    coverage = np.asarray(present @ idf).ravel() / (idf.sum() + unknown_weight)
    return 0.999 * coverage + 0.001 * text_similarity(matrix, vectorizer.transform([query]))
