"""What the words say: log-odds with an informative Dirichlet prior, text shares and languages."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest

from analysis.words import (
    TOO_SHORT,
    guess_language,
    languages,
    log_odds_z,
    marking_terms,
    text_shares,
)


def test_log_odds_z_matches_the_formula_worked_by_hand() -> None:
    # Term 0 only in a (3 of 3), term 1 only in b; the prior is the pooled counts (3, 3).
    # odds_a = (3 + 3) / (3 + 6 - 3 - 3) = 2, odds_b = (0 + 3) / (3 + 6 - 0 - 3) = 0.5: delta = log 4;
    # var = 1/6 + 1/3 = 1/2, so z = log 4 / sqrt(1/2) = 1.96.
    delta, z = log_odds_z(np.array([3, 0]), np.array([0, 3]), np.array([3, 3]))
    assert delta == pytest.approx([math.log(4), -math.log(4)])
    assert z == pytest.approx([math.log(4) / math.sqrt(0.5), -math.log(4) / math.sqrt(0.5)])


def test_the_prior_shrinks_a_rare_term_below_a_common_one_with_the_same_rate() -> None:
    # Same 100% rate in a and 0% in b, but seen 2 times vs 20 times: the rarer is less certain.
    delta, z = log_odds_z(np.array([2, 20, 5]), np.array([0, 0, 30]), np.array([2, 20, 35]))
    assert z[1] > z[0] > 0
    assert z[2] < 0


def test_marking_terms_of_a_tiny_corpus() -> None:
    texts = ["ROCK loud", "rock guitar", "Rock 1999", "Jazz smooth", "jazz piano", "jazz", "live", "live", "live"]
    genres = ["rock"] * 3 + ["jazz"] * 3 + ["rock", "jazz", "jazz"]
    terms = marking_terms(texts, genres, top=5, min_covers=3)
    assert set(terms["term"]) <= {"rock", "jazz", "live"}  # words on fewer than 3 covers are not ranked
    best = terms.groupby("genre").first()
    assert best.loc["rock", "term"] == "rock" and best.loc["jazz", "term"] == "jazz"
    rock = best.loc["rock"]
    assert (rock["covers"], rock["genre_covers"], rock["elsewhere"], rock["other_covers"]) == (3, 4, 0, 5)
    assert (terms["z"] > 0).all()
    assert "rock" not in set(terms[terms["genre"] == "jazz"]["term"])


def test_marking_terms_without_any_text() -> None:
    assert marking_terms(["", "", "12"], ["a", "b", "a"]).empty


def test_text_shares_count_covers_with_letters() -> None:
    table = text_shares(["ALAN JACKSON", "", "1999", "Blue"], ["country", "country", "jazz", "jazz"]).set_index("genre")
    assert table.loc["country", "covers_with_text"] == 1 and table.loc["jazz", "covers_with_text"] == 1
    assert table.loc["all", "share"] == pytest.approx(0.5)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The language model must load from the wheel: any connection attempt fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the language identifier tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_languages_are_guessed_offline(no_network: None) -> None:
    assert guess_language("Die Zauberflöte, gesungen von den Wiener Sängerknaben")[0] == "de"
    assert guess_language("Los grandes éxitos de la música tropical")[0] == "es"
    assert guess_language("LIVE") == (TOO_SHORT, 0.0)
    table = languages(
        ["The best of the old country road", "Songs from the heart of the city", "OK", "Chansons d'amour de Paris"],
        ["country", "country", "country", "pop"],
    )
    country = table[table["genre"] == "country"].set_index("language")
    assert country.loc["en", "covers"] == 2 and country.loc[TOO_SHORT, "covers"] == 1
    assert country.loc["en", "share"] == pytest.approx(1.0)  # of the covers with enough text to guess
    assert table[table["genre"] == "pop"]["language"].tolist() == ["fr"]


def test_a_vocabulary_of_one_term_marks_nothing_and_warns_nothing() -> None:
    import warnings

    texts = ["live", "live", "live", "live", "", ""]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert marking_terms(texts, ["rock", "rock", "pop", "pop", "rock", "pop"], min_covers=2).empty
