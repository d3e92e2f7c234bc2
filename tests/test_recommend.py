from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from recsys.build import build_index
from recsys.encoders import TextNotSupportedError
from recsys.recommend import QueryError, Recommender
from recsys.settings import Settings
from tests.conftest import make_cover


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("covers")
    for g, genre in enumerate(["rock", "jazz", "pop"]):
        for i in range(5):
            make_cover(root / genre / f"{genre}-{i}.png", seed=10 * g + i)
    return root


@pytest.fixture(scope="module")
def recommender(collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Recommender:
    folder = tmp_path_factory.mktemp("index")
    cache = tmp_path_factory.mktemp("cache")
    settings = Settings(cache_dir=cache, progress=False)
    build_index(folder, covers=collection, encoder="efficientnet-lite0", workers=0, settings=settings)
    return Recommender.open(folder, settings)


def test_a_re_encoded_copy_finds_its_original_first(recommender: Recommender, collection: Path, tmp_path: Path) -> None:
    original = collection / "jazz" / "jazz-3.png"
    query = tmp_path / "query.jpg"
    Image.open(original).convert("RGB").resize((150, 150)).save(query, quality=70)
    results = recommender.similar_to_cover(query, k=5)
    assert list(results.columns[:4]) == ["rank", "score", "genre", "path"]
    assert results.loc[0, "path"] == str(original)
    assert list(results["rank"]) == [1, 2, 3, 4, 5]
    assert results["score"].is_monotonic_decreasing


def test_a_query_that_is_in_the_index_is_left_out(recommender: Recommender, collection: Path) -> None:
    query = collection / "rock" / "rock-1.png"
    results = recommender.similar_to_cover(query, k=14)
    assert str(query) not in set(results["path"]) and len(results) == 14


def test_genre_filter_returns_only_that_genre(recommender: Recommender, collection: Path) -> None:
    results = recommender.similar_to_cover(collection / "rock" / "rock-1.png", k=10, genre="POP")
    assert len(results) == 5 and set(results["genre"]) == {"pop"}
    assert results["score"].is_monotonic_decreasing
    with pytest.raises(QueryError, match="genres: jazz, pop, rock"):
        recommender.similar_to_cover(collection / "rock" / "rock-1.png", genre="polka")


def test_unusable_queries_get_clear_errors(recommender: Recommender, tmp_path: Path) -> None:
    text_file = tmp_path / "query.jpg"
    text_file.write_text("not a picture")
    with pytest.raises(QueryError, match="cannot use .* as a query: not an image"):
        recommender.similar_to_cover(text_file)
    with pytest.raises(QueryError, match="file not found"):
        recommender.similar_to_cover(tmp_path / "missing.jpg")
    with pytest.raises(TextNotSupportedError):
        recommender.similar_to_text("a skull")


def test_tiny_clip_index_answers_cover_and_text_queries(collection: Path, tiny_clip, tmp_path: Path) -> None:
    """The full build/recommend flow through the CLIP code path, with random weights: plumbing, not quality."""
    config, checkpoint = tiny_clip
    summary = build_index(
        tmp_path / "index", covers=collection, encoder="clip", arch=str(config), workers=0,
        settings=Settings(cache_dir=tmp_path / "cache", weights=str(checkpoint), progress=False),
    )
    assert summary.model_key.startswith("clip:sleeve-tiny-clip:") and summary.covers == 15
    clip = Recommender.open(tmp_path / "index", Settings(cache_dir=tmp_path / "cache"))
    assert len(clip.similar_to_text("a dark cover with a skull", k=3)) == 3
    query = collection / "pop" / "pop-2.png"
    results = clip.similar_to_cover(query, k=3)
    assert str(query) not in set(results["path"]) and len(results) == 3


def test_one_call_answers_each_cover_and_reports_the_bad_one(
    recommender: Recommender, collection: Path, tmp_path: Path
) -> None:
    """QueryAnswerer: what the CLI and the app show for a batch (results, no classifier, per-cover errors)."""
    from recsys.answer import QueryAnswerer, cover_files

    bad = tmp_path / "bad.jpg"
    bad.write_text("not a picture")
    (tmp_path / "empty-folder").mkdir()
    paths, errors = cover_files([collection / "pop", bad, tmp_path / "empty-folder"])
    assert len(paths) == 6 and errors == [f"no covers in the folder {tmp_path / 'empty-folder'}"]
    answers = list(QueryAnswerer(recommender).answer_each(paths, k=3, genre="rock"))
    good, failed = answers[:5], answers[5]
    assert all(answer.error is None and set(answer.results["genre"]) == {"rock"} for answer in good)
    assert failed.results is None and failed.error is not None and "not an image" in failed.error
    assert failed.to_dict()["error"] == failed.error and good[0].to_dict()["query"] == {"cover": paths[0]}


def test_explained_results_read_against_the_best_and_show_the_shared_words() -> None:
    import pandas as pd

    from recsys.answer import explain_results, shared_words

    results = pd.DataFrame({"rank": [1, 2, 3], "score": [10.0, 2.5, -0.1], "match": ["words", "look", "both"]})
    texts = ["ALANJACKSON / Drive", "Country Hits", "Greatest hits\nJackson Five"]
    explained = explain_results(results, "Alan Jackson\nGreatest Hits", texts)
    assert list(explained["relative"]) == [1.0, 0.25, 0.0]
    assert list(explained["text"]) == [texts[0], "", texts[2]]  # a look match shows no text
    assert list(explained["matched"]) == [["ALANJACKSON"], [], ["Greatest", "hits", "Jackson"]]
    assert shared_words("", "anything") == [] and list(results.columns) == ["rank", "score", "match"]
