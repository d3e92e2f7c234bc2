"""The web app's pages through Streamlit's AppTest, on a small real index: uploads, picking, clicking through,
genres and cover text, the map, the collection, bad uploads and bad index folders, and two sessions at once."""

from __future__ import annotations

import io
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont
from streamlit.testing.v1 import AppTest

import recsys.recommend
from recsys.editions import DISMISSED_FILE
from tests.analysis_helpers import fast_cover_map
from tests.editions_helpers import EditedIndex, edited_index  # noqa: F401 - a fixture
from tests.webapp_helpers import app_index  # noqa: F401 - a fixture
from webapp.resources import INDEX_ENV

APP = str(Path(__file__).resolve().parents[1] / "webapp" / "app.py")
TIMEOUT = 120


@pytest.fixture
def index(app_index: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    folder, cache = app_index
    monkeypatch.setenv(INDEX_ENV, str(folder))
    monkeypatch.setenv("SLEEVE_CACHE_DIR", str(cache))
    return folder


def start(page: str | None = None) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    if page is not None:
        app.switch_page(page).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def cover_bytes(path: Path, fmt: str = "JPEG", size: int = 200) -> bytes:
    """A re-encoded, resized copy of a cover: what a user would upload, not the indexed file itself."""
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").resize((size, size)).save(buffer, format=fmt)
    return buffer.getvalue()


def texts(elements: Any) -> list[str]:
    return [element.value for element in elements]


def result_names(app: AppTest) -> list[str]:
    """File names shown under the result covers (the last line of each result's caption)."""
    return [caption.split("\n")[-1] for caption in texts(app.caption) if caption.endswith((".jpg", ".png"))]


def upload(app: AppTest, name: str, data: bytes, mime: str = "image/jpeg") -> AppTest:
    app.file_uploader[0].set_value((name, data, mime)).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_an_uploaded_cover_finds_its_original_first_with_score_genre_and_metadata(
    index: Path, shared_subset: Path
) -> None:
    original = sorted((shared_subset / "pop").iterdir())[4]
    app = upload(start(), "my cover.png", cover_bytes(original, "PNG"), "image/png")
    assert not app.error
    assert "10 look-alikes of my cover.png" in texts(app.caption)[0]
    names = result_names(app)
    assert len(names) == 10 and names[0] == original.name
    first = next(text for text in texts(app.markdown) if text.startswith("**#1**"))
    assert "pop" in first
    assert any(text.endswith(original.name) and "artist: pop band" in text for text in texts(app.caption))
    assert len(app.image) == 11  # the query and ten results


@pytest.mark.parametrize("fmt", ["WEBP", "GIF"])
def test_webp_and_gif_uploads_are_queries_too(index: Path, shared_subset: Path, fmt: str) -> None:
    original = sorted((shared_subset / "rock").iterdir())[2]
    app = upload(start(), f"cover.{fmt.lower()}", cover_bytes(original, fmt), f"image/{fmt.lower()}")
    assert not app.error
    assert result_names(app)[0] == original.name


def test_k_and_the_genre_filter_shape_the_results(index: Path, shared_subset: Path) -> None:
    app = upload(start(), "q.jpg", cover_bytes(sorted((shared_subset / "country").iterdir())[0]))
    app.slider(key="k").set_value(4).run()
    app.selectbox(key="genre-lookalikes").set_value("hip-hop").run()
    genres = [text.split(" · ")[2] for text in texts(app.markdown) if text.startswith("**#")]
    assert genres == ["hip-hop"] * 4


def test_clicking_a_result_makes_it_the_next_query(index: Path, shared_subset: Path) -> None:
    app = upload(start(), "q.jpg", cover_bytes(sorted((shared_subset / "electronic").iterdir())[1]))
    third = result_names(app)[2]
    app.button(key="lookalikes-more-3").click().run()
    assert f"look-alikes of {third}" in texts(app.caption)[0]
    assert third not in result_names(app)  # a cover of the index is left out of its own results


def test_picking_by_path_search_or_at_random_offers_only_indexed_covers(index: Path, shared_subset: Path) -> None:
    app = start()
    wanted = sorted((shared_subset / "rock").iterdir())[7]
    app.text_input(key="term-lookalikes").input(wanted.name[:12]).run()
    picker = app.selectbox(key="pick-lookalikes")
    indexed = {str(path) for path in shared_subset.glob("*/*")}
    assert picker.options and set(picker.options) <= indexed
    picker.set_value(str(wanted)).run()
    assert f"look-alikes of {wanted.name}" in texts(app.caption)[0]
    app.button(key="random-lookalikes").click().run()
    query = texts(app.caption)[0].split("look-alikes of ")[1].split(" in ")[0]
    assert any(Path(path).name == query for path in indexed)


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A PNG of 9,000 x 9,000 pixels (81 million, over the 64 million limit) that is a few hundred KB."""
    buffer = io.BytesIO()
    Image.new("L", (9000, 9000)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("notes.jpg", b"these are not the pixels you are looking for", "not an image"),
        ("empty.png", b"", "empty file"),
        ("bomb.png", None, "too large"),
    ],
)
def test_a_bad_upload_gets_a_message_and_the_app_keeps_working(
    index: Path, shared_subset: Path, bomb: bytes, name: str, data: bytes | None, reason: str
) -> None:
    app = upload(start(), name, bomb if data is None else data, "image/png")
    assert len(app.error) == 1 and name in app.error[0].value and reason in app.error[0].value
    assert not result_names(app)
    upload(app, "good.jpg", cover_bytes(sorted((shared_subset / "pop").iterdir())[0]))
    assert not app.error and len(result_names(app)) == 10


def test_a_truncated_upload_gets_a_message(index: Path, shared_subset: Path) -> None:
    whole = cover_bytes(sorted((shared_subset / "pop").iterdir())[0])
    app = upload(start(), "cut.jpg", whole[: len(whole) // 2])
    assert len(app.error) == 1 and "cut.jpg" in app.error[0].value and "truncated" in app.error[0].value


def test_an_upload_over_the_size_limit_gets_a_message(index: Path, shared_subset: Path) -> None:
    from streamlit import config

    before = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 1)
    try:
        app = upload(start(), "huge.jpg", cover_bytes(sorted((shared_subset / "pop").iterdir())[0]) + bytes(2 << 20))
    finally:
        config.set_option("server.maxUploadSize", before)
    assert len(app.error) == 1 and "over the upload limit of 1 MB" in app.error[0].value


def test_uploads_are_never_written_into_the_collection_or_the_index(index: Path, shared_subset: Path) -> None:
    before = {path: path.stat().st_mtime_ns for folder in (index, shared_subset) for path in folder.rglob("*")}
    upload(start(), "q.jpg", cover_bytes(sorted((shared_subset / "pop").iterdir())[3]))
    after = {path: path.stat().st_mtime_ns for folder in (index, shared_subset) for path in folder.rglob("*")}
    assert after == before


def lettered_cover(words: str) -> bytes:
    image = Image.new("RGB", (256, 256), (30, 60, 120))
    ImageDraw.Draw(image).text((20, 100), words, fill=(255, 240, 200), font=ImageFont.load_default(size=36))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_genre_page_without_a_classifier_says_how_to_train_one_and_reads_the_text(index: Path) -> None:
    app = upload(start("views/genre.py"), "words.png", lettered_cover("NASHVILLE"), "image/png")
    assert any("train-classifier --index" in text for text in texts(app.info))
    assert "NASHVILLE" in app.dataframe[0].value["text"].str.upper().tolist()


def test_genre_page_charts_every_genre_of_a_stored_classifier(
    app_index: tuple[Path, Path], shared_subset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    import pyarrow as pa

    from recsys import Settings, predict_cover, train_classifier

    folder, cache = app_index
    trained = shutil.copytree(folder, tmp_path / "index")
    train_classifier(trained, classifier="linear", settings=Settings(cache_dir=cache, progress=False))
    monkeypatch.setenv(INDEX_ENV, str(trained))
    monkeypatch.setenv("SLEEVE_CACHE_DIR", str(cache))
    data = cover_bytes(sorted((shared_subset / "rock").iterdir())[0])
    app = upload(start("views/genre.py"), "q.jpg", data)
    assert not app.error and not app.info
    chart = app.get("vega_lite_chart")[0].proto
    shown = pa.ipc.open_stream(chart.datasets[0].data.data).read_all().to_pandas()
    query = tmp_path / "q.jpg"
    query.write_bytes(data)
    expected = predict_cover(trained, query, k=5, settings=Settings(cache_dir=cache))["genres"]
    assert shown.to_dict(orient="records") == expected
    assert any("trained on 60 covers" in text for text in texts(app.caption))


def test_map_page_shows_the_ranking_and_embeds_the_report(index: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("analysis.run.CoverMap", lambda **_: fast_cover_map())  # PCA: no minute of UMAP here
    app = start("views/map.py")
    assert not app.error
    ranking = next(text for text in texts(app.markdown) if text.startswith("**Best to worst separated:**"))
    assert all(genre in ranking for genre in ["country", "electronic", "hip-hop", "pop", "rock"])
    frame = app.get("iframe")[0].proto
    html = frame.srcdoc or Path(frame.src).read_text()
    assert "Genre separability of 60 covers" in html and "data:image/jpeg;base64," in html


def test_collection_page_describes_the_index(index: Path) -> None:
    app = start("views/collection.py")
    facts = next(text for text in texts(app.markdown) if text.startswith("**Model:**")).split("  \n")
    assert facts[0].startswith("**Model:** efficientnet-lite0 (1280-d vectors")
    assert "**Covers:** 60" in facts and "**Index type:** flat" in facts
    assert facts[-1].startswith("**Genre classifier:** none stored")
    assert any("None: every file found was indexed." in text for text in texts(app.markdown))


def test_collection_page_lists_skipped_files_with_reasons(app_index: tuple[Path, Path], tmp_path: Path,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder, cache = app_index
    copy = shutil.copytree(folder, tmp_path / "index")
    (copy / "skipped.csv").write_text("path,reason\n/covers/broken.jpg,corrupt or truncated: image file is truncated\n")
    monkeypatch.setenv(INDEX_ENV, str(copy))
    monkeypatch.setenv("SLEEVE_CACHE_DIR", str(cache))
    table = start("views/collection.py").dataframe[0].value
    assert table.to_dict(orient="records") == [
        {"path": "/covers/broken.jpg", "reason": "corrupt or truncated: image file is truncated"}
    ]


def damage(folder: Path, how: str) -> None:
    if how == "missing":
        shutil.rmtree(folder)
    elif how == "bad json":
        (folder / "index.json").write_text("{not json")
    else:  # a FAISS file cut short
        faiss_file = next(folder.glob("vectors-*.faiss"))
        faiss_file.write_bytes(faiss_file.read_bytes()[:100])


@pytest.mark.parametrize("how", ["missing", "bad json", "cut faiss"])
@pytest.mark.parametrize("page", [None, "views/genre.py", "views/map.py", "views/collection.py"])
def test_a_missing_or_damaged_index_says_how_to_build_one(
    app_index: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, page: str | None  # noqa: F811
) -> None:
    copy = shutil.copytree(app_index[0], tmp_path / "index")
    damage(copy, how)
    monkeypatch.setenv(INDEX_ENV, str(copy))
    app = start(page)
    assert len(app.error) == 1
    assert "python cli.py build-index" in app.error[0].value and str(copy) in app.error[0].value


def test_two_sessions_at_once_share_one_loaded_index_and_see_their_own_results(
    index: Path, shared_subset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import streamlit as st

    st.cache_resource.clear()
    loads = []

    class CountingRecommender(recsys.recommend.Recommender):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            loads.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(recsys.recommend, "Recommender", CountingRecommender)
    originals = {genre: sorted((shared_subset / genre).iterdir())[6] for genre in ["country", "hip-hop"]}
    apps = {genre: start() for genre in originals}
    seen: dict[str, list[str]] = {}
    failures: list[BaseException] = []

    def query(genre: str) -> None:
        try:
            for _ in range(3):
                seen[genre] = result_names(upload(apps[genre], f"{genre}.jpg", cover_bytes(originals[genre])))
        except BaseException as failure:  # a thread's failure would otherwise only be printed
            failures.append(failure)

    threads = [threading.Thread(target=query, args=(genre,)) for genre in originals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert {genre: names[0] for genre, names in seen.items()} == {g: p.name for g, p in originals.items()}
    assert len(loads) == 1


def test_matching_by_words_and_by_look_and_words_says_what_each_result_matched(index: Path, shared_subset: Path) -> None:
    app = upload(start(), "q.jpg", cover_bytes(sorted((shared_subset / "country").iterdir())[2]))
    assert app.radio(key="by").value == "both"  # the index holds cover text, so both is the default
    matches = {text.rsplit(" · by ", 1)[1] for text in texts(app.markdown) if text.startswith("**#")}
    assert matches and matches <= {"look", "words", "both"}
    app.radio(key="by").set_value("look").run()
    assert {text.rsplit(" · by ", 1)[1] for text in texts(app.markdown) if text.startswith("**#")} == {"look"}
    app.radio(key="by").set_value("words").run()
    shown = [text for text in texts(app.markdown) if text.startswith("**#")]
    assert all(text.endswith(" · by words") for text in shown)


def test_a_metadata_filter_keeps_only_matching_covers(index: Path, shared_subset: Path) -> None:
    app = upload(start(), "q.jpg", cover_bytes(sorted((shared_subset / "pop").iterdir())[5]))
    app.radio(key="by").set_value("look").run()
    app.selectbox(key="where-lookalikes-artist").set_value("rock band 1").run()
    captions = [text for text in texts(app.caption) if text.endswith(".jpg") and "artist:" in text]
    assert len(captions) == 4  # 12 rock covers, every third one is "rock band 1"
    assert all("artist: rock band 1" in text for text in captions)


def test_search_by_words_finds_the_covers_that_carry_them_and_clicks_through(index: Path) -> None:
    from recsys import open_index

    stored = open_index(index)
    row, word = next(
        (row, word) for row, text in enumerate(stored.texts) for word in text.split() if len(word) >= 6 and word.isalpha()
    )
    path = str(stored.index.metadata["path"].iloc[row])
    app = start("views/words.py")
    app.text_input(key="words-query").input(word).run()
    assert not app.exception and not app.error
    assert Path(path).name in result_names(app)
    assert any(word.lower() in text.lower() for text in texts(app.markdown) if text.startswith("*"))
    rank = result_names(app).index(Path(path).name) + 1
    app.button(key=f"words-more-{rank}").click().run()
    assert f"look-alikes of {Path(path).name}" in texts(app.caption)[0]  # the look-alikes page, for that cover


def test_an_index_without_cover_text_has_no_words_controls(
    app_index: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_subset: Path  # noqa: F811
) -> None:
    import json

    folder, cache = app_index
    copy = shutil.copytree(folder, tmp_path / "index")
    info = json.loads((copy / "index.json").read_text())
    del info["files"]["text"]
    (copy / "index.json").write_text(json.dumps(info))
    monkeypatch.setenv(INDEX_ENV, str(copy))
    monkeypatch.setenv("SLEEVE_CACHE_DIR", str(cache))
    app = upload(start(), "q.jpg", cover_bytes(sorted((shared_subset / "pop").iterdir())[0]))
    assert not app.radio and len(result_names(app)) == 10
    with pytest.raises(ValueError):
        app.switch_page("views/words.py")  # not a page of this app


def test_the_editions_page_lists_a_family_side_by_side_and_not_the_same_dismisses_it_for_good(
    edited_index: EditedIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    folder = tmp_path / "index"
    shutil.copytree(edited_index.folder, folder)  # the dismissal is written into the index folder
    monkeypatch.setenv(INDEX_ENV, str(folder))
    monkeypatch.setenv("SLEEVE_CACHE_DIR", str(edited_index.cache))
    family = {str(edited_index.original), *map(str, edited_index.copies)}

    def shown(app: AppTest) -> set[str]:
        return {caption.split("\n")[-1] for caption in texts(app.caption) if " · " in caption}

    app = start("views/editions.py")
    assert not app.error
    assert family <= shown(app)  # the family is group 1, the largest
    assert any(text.startswith("**Group 1** · 4 covers") for text in texts(app.markdown))
    assert len(app.image) >= 4
    app.button(key="dismiss-1").click().run()
    assert not app.exception and not app.error
    assert not family & shown(app)
    saved = json.loads((folder / DISMISSED_FILE).read_text())
    assert [set(paths) for paths in saved.values()] == [family]
    assert not family & shown(start("views/editions.py"))  # a new session reads the file too
