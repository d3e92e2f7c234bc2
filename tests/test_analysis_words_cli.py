"""`analyze` says what the words on covers say: only from text already read, or reading it with --read-text."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from cli import main

PER_GENRE = 5


def sleeve(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def small_index(shared_manifest: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An index of 5 real covers per genre (25, listed by a manifest: no copies), and its embedding cache."""
    root = tmp_path_factory.mktemp("words-index")
    chosen = shared_manifest.sort_values("path").groupby("genre").head(PER_GENRE)
    chosen[["path", "genre"]].to_csv(root / "manifest.csv", index=False)
    built = sleeve("build-index", "--manifest", root / "manifest.csv", "--index", root / "index",
                   "--cache", root / "cache", "--model", "efficientnet-lite0", "--workers", "0", "--no-progress")
    assert built.exit_code == 0, built.output
    return root / "index", root / "cache"


@pytest.mark.shared
@pytest.mark.slow
def test_analyze_reports_the_words_once_read_and_says_how_to_read_them(
    small_index: tuple[Path, Path], tmp_path: Path
) -> None:
    index, cache = small_index  # a fresh cache: no text read yet
    out = tmp_path / "report.html"
    base = ["analyze", "--index", index, "--out", out, "--cache", cache, "--no-progress", "--json"]

    unread = sleeve(*base)
    assert unread.exit_code == 0, unread.output
    assert json.loads(unread.stdout)["words"] is None
    assert "No cover text is known for these covers yet" in out.read_text() and "--read-text" in out.read_text()

    read = sleeve(*base, "--read-text")
    assert read.exit_code == 0, read.output
    words = json.loads(read.stdout)["words"]
    assert words["covers"] == words["covers_with_known_text"] == 5 * PER_GENRE
    shares = {row["genre"]: row for row in words["text_shares"]}
    assert set(shares) == {"country", "electronic", "hip-hop", "pop", "rock", "all"}
    assert shares["all"]["covers"] == 25 and 0 < shares["all"]["covers_with_text"] <= 25
    assert all(0 <= row["covers_with_text"] <= row["covers"] == PER_GENRE for g, row in shares.items() if g != "all")
    for term in words["marking_terms"]:
        assert term["z"] > 0 and 1 <= term["covers"] <= term["genre_covers"] == PER_GENRE
    languages = pd.DataFrame(words["languages"])
    assert (languages.groupby("genre")["covers"].sum() == PER_GENRE).all()  # every cover counted once
    page = out.read_text()
    assert "What the words on the covers say" in page and 'class="data words"' in page
    assert "informative Dirichlet prior" in page

    cached = sleeve(*base)  # the text is cached now: the same figures without --read-text
    assert cached.exit_code == 0, cached.output
    assert json.loads(cached.stdout)["words"] == words
    lines = sleeve("analyze", "--index", index, "--out", out, "--cache", cache, "--no-progress")
    assert lines.exit_code == 0, lines.output
    assert "country: " in lines.stdout and "covers carry text" in lines.stdout
