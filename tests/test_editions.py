"""Editions and duplicates (recsys.editions, ``cli.py editions``) on real covers of ../shared/artist-covers: a
cover and its edited copies (banner, crop, recolour, re-encode) against two other albums of one artist."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from index.store import load_index
from recsys import editions, textsearch
from recsys.build import build_index
from recsys.recommend import Recommender
from recsys.settings import Settings
from tests.editions_helpers import EditedIndex, edited, edited_index  # noqa: F401 - a fixture

ARTIST_COVERS = Path(__file__).resolve().parents[2] / "shared" / "artist-covers"
REPO = Path(__file__).resolve().parents[1]
ARTIST = "Sepultura"
EDITS = ("banner", "crop", "colour", "reencode")


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Three albums of one artist; the first with four edited copies (family 0)."""
    if not (ARTIST_COVERS / "MANIFEST.csv").is_file():
        pytest.skip(f"real artist covers not found at {ARTIST_COVERS} (the ../shared folder beside the repo)")
    table = pd.read_csv(ARTIST_COVERS / "MANIFEST.csv")
    table = table[table["artist"] == ARTIST].sort_values("path").drop_duplicates("album").head(3)
    table = table.assign(path=[str(ARTIST_COVERS / p) for p in table["path"]], family=[0, 1, 2])
    folder = tmp_path_factory.mktemp("editions")
    base = Image.open(table["path"].iloc[0]).convert("RGB")
    copies = []
    for kind in EDITS:
        target = folder / f"{kind}.jpg"
        edited(base, kind).save(target, quality=85)
        copies.append({**table.iloc[0].to_dict(), "path": str(target), "family": 0})
    table = pd.concat([table, pd.DataFrame(copies)], ignore_index=True)[["path", "genre", "artist", "album", "family"]]
    table.to_csv(folder / "manifest.csv", index=False)
    return table


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _build(folder: Path, collection: pd.DataFrame, cache: Path, read_text: bool) -> Path:
    manifest = folder.parent / f"{folder.name}.csv"
    collection.to_csv(manifest, index=False)
    build_index(folder, manifest=manifest, encoder="efficientnet-lite0", workers=0, read_text=read_text,
                settings=Settings(cache_dir=cache, progress=False))
    return folder


@pytest.fixture(scope="module")
def text_index(collection: pd.DataFrame, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("index") / "text", collection, cache, read_text=True)


@pytest.fixture(scope="module")
def plain_index(collection: pd.DataFrame, cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("index") / "plain", collection, cache, read_text=False)


def _families(groups: pd.DataFrame, collection: pd.DataFrame) -> list[set[int]]:
    family = dict(zip(collection["path"], collection["family"]))
    return [set(members["path"].map(family)) for _, members in groups.groupby("group")]


def test_a_cover_and_its_edited_copies_are_one_group_apart_from_the_artists_other_albums(
    text_index: Path, collection: pd.DataFrame, cache: Path
) -> None:
    groups = editions.find_editions(load_index(text_index), cache_dir=cache)
    assert list(groups.columns) == editions.GROUP_COLUMNS
    assert set(groups["path"]) == set(collection.loc[collection["family"] == 0, "path"])
    assert groups["group"].nunique() == 1
    assert set(groups["reason"]) <= set(editions.REASONS)
    assert groups["score"].between(0, 1).all()


def test_two_albums_of_one_artist_are_not_joined_even_with_a_lenient_look_rule(
    text_index: Path, collection: pd.DataFrame, cache: Path
) -> None:
    index = load_index(text_index)
    looser = editions.rules_from(["look_near=0.5", "hash_distance=16"])
    for groups in (editions.find_editions(index, cache_dir=cache), editions.find_editions(index, looser, cache_dir=cache)):
        assert all(len(families) == 1 for families in _families(groups, collection))


def test_an_index_without_text_groups_by_look_and_hashes_and_says_so_in_one_line(
    plain_index: Path, collection: pd.DataFrame, cache: Path
) -> None:
    run = subprocess.run(
        [sys.executable, "cli.py", "editions", "--index", str(plain_index), "--cache", str(cache), "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip().count("\n") == 0 and "build-index --read-text" in run.stderr, run.stderr
    groups = json.loads(run.stdout)["groups"]
    found = {member["path"] for group in groups for member in group["members"]}
    family = set(collection.loc[collection["family"] == 0, "path"])
    assert len(found & family) >= 4 and not found - family


def test_a_damaged_index_gets_one_line_that_says_how_to_repair_it(text_index: Path, tmp_path: Path) -> None:
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(text_index, damaged)
    embeddings = next(damaged.glob("embeddings-*.npy"))
    embeddings.write_bytes(embeddings.read_bytes()[:200])
    run = subprocess.run([sys.executable, "cli.py", "editions", "--index", str(damaged)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and "build-index --rebuild" in run.stderr, run.stderr


def test_the_cli_writes_a_csv_and_refuses_an_unknown_rule(text_index: Path, cache: Path, tmp_path: Path) -> None:
    base = [sys.executable, "cli.py", "editions", "--index", str(text_index), "--cache", str(cache)]
    run = subprocess.run([*base, "--csv", str(tmp_path / "e.csv")], cwd=REPO, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert len(pd.read_csv(tmp_path / "e.csv")) == 5
    run = subprocess.run([*base, "--threshold", "colour=0.3"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "no rule named 'colour'" in run.stderr


def _relabelled(index: Path, family: str, folder: Path) -> Path:
    """A copy of ``index`` whose record names ``family`` as its encoder (its vectors stay lite0's): the rules
    follow the name the index records, and building a lite2-style or CLIP index here would take minutes."""
    shutil.copytree(index, folder)
    record = json.loads((folder / "index.json").read_text())
    record["model"] = {**record["model"], "family": family, "arch": family}
    record["model_key"] = f"{family}:{family}:{record['model']['weights_sha256'][:16]}"
    (folder / "index.json").write_text(json.dumps(record))
    return folder


def test_each_family_gets_its_own_rules_by_default_and_thresholds_change_them(
    text_index: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used: list[editions.EditionRules] = []
    judge = editions.join_reasons
    monkeypatch.setattr(editions, "join_reasons", lambda signals, rules: used.append(rules) or judge(signals, rules))
    assert editions.FAMILY_RULES["efficientnet-lite2-style"] != editions.FAMILY_RULES["efficientnet-lite0"]
    for family, rules in editions.FAMILY_RULES.items():
        folder = _relabelled(text_index, family, tmp_path / family)
        editions.find_editions(load_index(folder), cache_dir=cache)
        editions.editions_of(folder, cache_dir=cache)
        editions.editions_of(folder, ["look_same=0.5", "hash_distance=3"], cache_dir=cache)
        assert used[-3:] == [rules, rules, dataclasses.replace(rules, look_same=0.5, hash_distance=3)], family


def test_a_family_without_measured_rules_gets_lite0s_and_one_line_saying_so(
    text_index: Path, cache: Path, tmp_path: Path
) -> None:
    def groups(folder: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "cli.py", "editions", "--index", str(folder), "--cache", str(cache), "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )

    clip, lite0 = groups(_relabelled(text_index, "clip", tmp_path / "clip")), groups(text_index)
    assert clip.returncode == 0 and lite0.returncode == 0, clip.stderr + lite0.stderr
    assert clip.stderr.strip().count("\n") == 0 and "measured on efficientnet-lite0" in clip.stderr, clip.stderr
    assert "clip" in clip.stderr and not lite0.stderr.strip(), lite0.stderr
    assert json.loads(clip.stdout)["groups"] == json.loads(lite0.stdout)["groups"] != []


def _signals(texts: list[str], look: float, hash_distance: int = 24) -> pd.DataFrame:
    """Signals of the pair (0, 1) with these OCR texts, a look cosine and a phash distance."""
    words = editions.pair_words(np.array(texts, dtype=object), np.array([[0, 1]]))
    return pd.DataFrame({"a": [0], "b": [1], "identical": [False], "hash_distance": [hash_distance],
                         "look": [look], **words})


def test_a_banner_copy_whose_ocr_misreads_the_original_is_joined() -> None:
    original = "SEPULTURA\nRoots\nRoadrunner Records"
    banner = "SEPLATURA\nR00TS\nRoadrunner Recods\nDELUXE EDITION"  # misread letters, a line added
    signals = _signals([original, banner], look=0.86)
    assert signals["words"].iloc[0] > 0.85  # the original's lines are all found, fuzzily
    assert list(editions.join_reasons(signals)) == [editions.REASONS[2]]
    assert list(editions.join_reasons(_signals([original, "DELUXE EDITION"], look=0.86))) == [None]


def test_two_albums_of_one_artist_with_the_same_artist_line_are_not_joined() -> None:
    roots, chaos = "SEPULTURA\nRoots\nRoadrunner Records", "SEPULTURA\nChaos A.D."
    signals = pd.concat([_signals([roots, chaos], look=0.84), _signals([roots, "SEPULTURA"], look=0.84)])
    assert (signals["words_both"] < editions.EditionRules().words_strict).all()
    assert signals["words"].iloc[1] == 1.0  # the name alone is wholly found in the other...
    assert list(editions.join_reasons(signals)) == [None, None]  # ...but it takes a closer look to join


def test_containment_counts_letters_found_fuzzily_and_lines_split_by_ocr() -> None:
    assert editions.containment(["sepultura"], ["sepultura", "roots"]) == 1.0
    assert editions.containment(["alanjackson"], ["alan", "jackson"]) == 1.0
    assert editions.containment(["sepultura", "deluxeedition"], ["sepultura"]) == pytest.approx(9 / 22)
    assert 0.7 < editions.containment(["sepultura"], ["seplatura"]) < 1.0
    assert np.isnan(editions.containment([], ["roots"]))
    assert editions.cover_lines("CD\nSepultura!\n\nW'") == ["sepultura"]


def test_real_ocr_of_a_banner_copy_finds_the_originals_lines(text_index: Path, collection: pd.DataFrame) -> None:
    index = load_index(text_index)
    texts = editions.texts_by_row(index)
    rows = {path: row for row, path in enumerate(index.metadata["path"])}
    original, banner = rows[collection["path"].iloc[0]], rows[next(p for p in collection["path"] if "banner" in p)]
    others = [rows[path] for path in collection["path"].iloc[1:3]]
    same = editions.pair_words(texts, np.array([[original, banner]]))
    apart = editions.pair_words(texts, np.array([[original, other] for other in others]))
    assert same["words"][0] >= editions.EditionRules().words_same, texts[[original, banner]]
    assert (np.nan_to_num(apart["words_both"]) < editions.EditionRules().words_strict).all()


def test_perceptual_hashes_are_read_from_the_cache_once_computed(collection: pd.DataFrame, tmp_path: Path) -> None:
    table = collection.assign(content_hash=[f"h{i}" for i in range(len(collection))])
    first = editions.perceptual_hashes(table, tmp_path)
    assert (first["phash"] != -1).all()
    moved = table.assign(path=str(tmp_path / "gone.jpg"))  # files gone: the cached hashes still answer
    assert editions.perceptual_hashes(moved, tmp_path).equals(first)
    distance = editions.hash_distance(first["phash"].to_numpy(), first["phash"].to_numpy()[::-1])
    assert distance[0] == distance[-1] and (distance >= 0).all() and (distance <= editions.HASH_BITS).all()


# -- editions in recommendations ---------------------------------------------------------------------------


def _family(index: EditedIndex) -> set[str]:
    return {str(index.original), *map(str, index.copies)}


def test_collapsing_shows_one_cover_of_an_edition_family_and_still_k_results(edited_index: EditedIndex) -> None:
    recommender = Recommender.open(edited_index.folder, Settings(cache_dir=edited_index.cache, progress=False))
    plain = recommender.similar_to_cover(edited_index.outside, k=9)
    assert set(plain["path"].head(4)) == _family(edited_index)  # four scans of one album fill the top
    collapsed = recommender.similar_to_cover(edited_index.outside, k=6, collapse_editions=True)
    assert len(collapsed) == 6 and list(collapsed["rank"]) == [1, 2, 3, 4, 5, 6]
    shown = collapsed[collapsed["path"].isin(_family(edited_index))]
    assert list(shown["path"]) == [plain["path"].iloc[0]] and list(shown["editions"]) == [3]
    assert (collapsed.loc[~collapsed["path"].isin(_family(edited_index)), "editions"] == 0).all()
    assert list(collapsed["path"].iloc[1:]) == list(plain["path"].iloc[4:9])  # filled from further candidates


def test_an_indexed_query_leaves_its_whole_edition_family_out_also_by_genre(edited_index: EditedIndex) -> None:
    recommender = Recommender.open(edited_index.folder, Settings(cache_dir=edited_index.cache, progress=False))
    for genre in (None, "rock"):
        results = recommender.similar_to_cover(edited_index.original, k=3, genre=genre, collapse_editions=True)
        assert len(results) == 3 and not set(results["path"]) & _family(edited_index)
    run = subprocess.run(
        [sys.executable, "cli.py", "recommend", "--index", str(edited_index.folder), "--cache",
         str(edited_index.cache), "--cover", str(edited_index.copies[0]), "-k", "4", "--collapse-editions", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    assert len(results) == 4 and not {result["path"] for result in results} & _family(edited_index)


def test_a_dismissed_group_is_remembered_in_the_index_folder_and_no_longer_folded(
    edited_index: EditedIndex, tmp_path: Path
) -> None:
    folder = tmp_path / "index"
    shutil.copytree(edited_index.folder, folder)
    recommender = Recommender.open(folder, Settings(cache_dir=edited_index.cache, progress=False))
    groups = recommender.editions
    number = int(groups.loc[groups["path"] == str(edited_index.original), "group"].iloc[0])
    key = editions.dismiss(recommender.index, groups, number)
    saved = json.loads((folder / editions.DISMISSED_FILE).read_text())
    assert list(saved) == [key] and set(saved[key]) == set(groups.loc[groups["group"] == number, "path"])
    assert number not in set(editions.without_dismissed(recommender.index, groups)["group"])
    collapsed = recommender.similar_to_cover(edited_index.outside, k=6, collapse_editions=True)
    assert set(collapsed["path"].head(4)) == _family(edited_index)
