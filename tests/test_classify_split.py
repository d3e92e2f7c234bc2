"""The split is leak-free (near-duplicate covers stay together), stratified and deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recsys.classify.split import (
    SplitError,
    dhashes,
    group_folds,
    name_line,
    near_duplicate_groups,
    near_duplicate_pairs,
    printed_name_groups,
    train_validation,
    train_validation_test,
)
from tests.conftest import make_cover


def _hash(bits: str) -> np.ndarray:
    """A 64-bit hash row from a string of 0/1 (padded with zeros)."""
    return np.packbits(np.array([int(b) for b in bits.ljust(64, "0")], dtype=bool))


def test_near_duplicates_join_transitively_at_distance_four() -> None:
    a = _hash("")
    b = _hash("1111")  # 4 bits from a
    c = _hash("11111111")  # 4 bits from b, 8 from a: joins a through b
    d = _hash("0" * 32 + "11111")  # 5 bits from a: apart
    hashes = np.stack([a, b, c, d])
    assert near_duplicate_pairs(hashes).tolist() == [[0, 1], [1, 2]]
    groups = near_duplicate_groups(hashes)
    assert groups[0] == groups[1] == groups[2] and groups[3] != groups[0]


def test_dhash_finds_a_re_encoded_copy_and_not_another_cover(tmp_path: Path) -> None:
    original = make_cover(tmp_path / "a.png", seed=1, size=256)
    Image.open(original).resize((200, 200)).save(tmp_path / "a-small.jpg", quality=70)
    make_cover(tmp_path / "b.png", seed=2, size=256)
    missing = tmp_path / "missing.jpg"
    hashes = dhashes([original, tmp_path / "a-small.jpg", tmp_path / "b.png", missing])
    groups = near_duplicate_groups(hashes)
    assert groups[0] == groups[1]
    assert len({groups[0], groups[2], groups[3]}) == 3  # an unreadable file is a group of its own


def _labelled(n_groups: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.choice([1, 1, 1, 2, 3], n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    genres = np.array(["rock", "pop", "jazz", "metal"], dtype=object)[groups % 4]
    return genres, groups


def test_split_is_deterministic_grouped_and_stratified() -> None:
    genres, groups = _labelled()
    names = train_validation_test(genres, groups, seed=42)
    assert np.array_equal(names, train_validation_test(genres, groups, seed=42))
    assert not np.array_equal(names, train_validation_test(genres, groups, seed=7))
    per_group = pd.DataFrame({"group": groups, "split": names}).groupby("group")["split"].nunique()
    assert per_group.max() == 1
    shares = pd.crosstab(genres, names, normalize="index")
    assert np.allclose(shares["train"], 0.6, atol=0.06)
    assert np.allclose(shares["validation"], 0.2, atol=0.06) and np.allclose(shares["test"], 0.2, atol=0.06)
    two_way = train_validation(genres, groups, seed=42)
    assert set(two_way) == {"train", "validation"} and abs((two_way == "validation").mean() - 0.2) < 0.05


def test_too_few_covers_of_a_genre_is_a_clear_error() -> None:
    genres = np.array(["rock"] * 20 + ["pop"] * 3, dtype=object)
    with pytest.raises(SplitError, match="'pop' has only 3 covers"):
        group_folds(genres, np.arange(23), n_folds=5, seed=0)
    with pytest.raises(SplitError, match="at least two genres"):
        group_folds(np.array(["rock"] * 20, dtype=object), np.arange(20), n_folds=5, seed=0)


@pytest.mark.shared
def test_no_near_duplicate_group_of_the_real_covers_straddles_two_splits(shared_manifest: pd.DataFrame) -> None:
    hashes = dhashes(shared_manifest["path"])
    groups = near_duplicate_groups(hashes)
    assert (np.bincount(groups) > 1).sum() > 20  # docs/classification.md reports 81 groups of near-duplicate covers: groups exist
    names = train_validation_test(shared_manifest["genre"].to_numpy(dtype=object), groups, seed=42)
    assert pd.Series(names).groupby(groups).nunique().max() == 1
    pairs = near_duplicate_pairs(hashes)
    assert (names[pairs[:, 0]] == names[pairs[:, 1]]).all()


def test_a_name_line_is_the_first_lines_letters_however_ocr_split_or_ran_them_together() -> None:
    assert name_line("DAVID\nBOWIE\nHeroes") == name_line("David Bowie") == name_line("DAVIDBOWIE") == "davidbowie"
    assert name_line("Louis Armstrong\nWhat a Wonderful World") == "louisarmstrong"
    assert name_line("1999\nOK") == ""  # fewer than 4 letters: no name
    assert name_line("") == ""


def test_printed_name_groups_join_covers_whose_names_read_alike() -> None:
    texts = [
        "DAVID\nBOWIE\nHeroes",
        "David Bowie\nLow",
        "DAVID BOWIF\nLodger",  # one OCR slip
        "METALLICA\nMaster of Puppets",
        "",  # no text: keeps its own near-duplicate group
        "",
        "ELLA FITZGERALD",
    ]
    near_duplicates = np.array([0, 1, 2, 3, 4, 4, 5])
    groups = printed_name_groups(texts, near_duplicates)
    assert groups[0] == groups[1] == groups[2]
    assert len({groups[0], groups[3], groups[4], groups[6]}) == 4
    assert groups[4] == groups[5]  # near-duplicates stay joined


def test_the_artist_aware_split_keeps_a_printed_name_on_one_side() -> None:
    names = [f"ARTIST{chr(65 + n)}{chr(75 + n)}\nAlbum {i}" for n in range(10) for i in range(4)]
    genres = np.array(["a", "b"] * 20, dtype=object)
    groups = printed_name_groups(names, np.arange(40))
    assert len(set(groups)) == 10
    split = train_validation_test(genres, groups, seed=1)
    for group in set(groups):
        assert len(set(split[groups == group])) == 1
