"""analyze() end to end on a small synthetic index: the HTML report, the PNG, sampling, caching and errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

import analysis.run
from analysis.run import AnalysisError, analyze
from index.store import load_index
from recsys.settings import Settings
from tests.analysis_helpers import fast_cover_map, write_blob_index
from tests.editions_helpers import EditedIndex, edited_index  # noqa: F401 - a fixture

QUIET = Settings(progress=False)

SIZES = {"country": 12, "pop": 12, "rock": 12}


@pytest.fixture(scope="module")
def blob_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("blob-index")
    return write_blob_index(root / "index", root / "covers", SIZES, shared_centre=("pop", "rock"))


def test_report_is_one_offline_file_with_plots_tables_sentences_and_thumbnails(blob_index: Path, tmp_path) -> None:
    out = tmp_path / "report" / "analysis.html"
    summary = analyze(blob_index, out=out, formats=["html", "png"], layout_cache_dir=tmp_path / "cache",
                      settings=QUIET, cover_map=fast_cover_map(), neighbours=5)
    page = out.read_text()
    assert summary.written == {"html": str(out), "png": str(out.with_suffix(".png"))}
    assert summary.bytes_written["html"] == out.stat().st_size
    # self-contained: Bokeh inlined, nothing fetched from a network
    assert "BEGIN bokeh.min.js" in page
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?:", page)
    assert page.count("data:image/jpeg;base64,") >= 36  # every cover has a hover thumbnail at this size
    for name in ("genre-map", "cluster-map", "confusability", "points"):
        assert f'"name":"{name}"' in page.replace("&quot;", '"')
    assert summary.ranking[0] == "country"  # its own blob; pop and rock share one
    assert "country has a look of its own" in page
    assert "pop and rock blur" in page or "rock and pop blur" in page
    assert "Clusters by genre" in page and "Separability ranking" in page
    with Image.open(out.with_suffix(".png")) as picture:
        assert picture.size[0] > 1000 and len(picture.getcolors(1 << 20)) > 10


def test_thumbnails_are_sampled_for_large_collections(blob_index: Path, tmp_path) -> None:
    out = tmp_path / "small.html"
    analyze(blob_index, out=out, layout_cache_dir=tmp_path / "cache", settings=QUIET, cover_map=fast_cover_map(),
            max_thumbnails=5)
    page = out.read_text()
    hover = page.count("&lt;img src=\\&quot;data:image") + page.count('&lt;img src=\\"data:image')
    assert 0 < hover <= 5
    assert "sampled out" in page
    assert "seeded sample of 5 of the 36 covers" in page


def test_second_run_reuses_the_layout_and_the_decoded_covers(blob_index: Path, tmp_path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    first = analyze(blob_index, out=tmp_path / "a.html", layout_cache_dir=cache, settings=QUIET, cover_map=fast_cover_map())
    looked = []
    monkeypatch.setattr(analysis.run, "_look_at_covers", lambda *args: looked.append(args))
    second = analyze(blob_index, out=tmp_path / "b.html", layout_cache_dir=cache, settings=QUIET, cover_map=fast_cover_map())
    assert not first.layout_from_cache and second.layout_from_cache
    assert looked == []  # thumbnails and traits came from the cache too
    assert first.ranking == second.ranking
    assert (tmp_path / "a.html").read_text().count("data:image") == (tmp_path / "b.html").read_text().count("data:image")


def test_default_cache_lives_in_the_index_folder(blob_index: Path, tmp_path) -> None:
    analyze(blob_index, out=tmp_path / "a.html", settings=QUIET, cover_map=fast_cover_map())
    assert list((blob_index / "analysis").glob("reduced-*.npz"))


def test_classifier_recall_appears_in_table_and_sentences(blob_index: Path, tmp_path) -> None:
    metrics = tmp_path / "metrics.json"
    per_genre = {g: {"precision": 0.5, "recall": r, "f1": 0.5, "support": 4} for g, r in
                 [("country", 0.9), ("pop", 0.25), ("rock", 0.5)]}
    metrics.write_text(json.dumps({"models": {"svm": {"macro_f1": 0.6, "per_genre": per_genre}}}))
    out = tmp_path / "a.html"
    summary = analyze(blob_index, out=out, layout_cache_dir=tmp_path / "cache", settings=QUIET, cover_map=fast_cover_map(),
                      metrics=metrics)
    page = out.read_text()
    assert "recall (svm)" in page
    assert "A classifier recalls 90% of country covers." in page
    assert any("recalls 25% of pop" in sentence for sentence in summary.sentences)


def test_unknown_format_is_a_user_error(blob_index: Path, tmp_path) -> None:
    with pytest.raises(AnalysisError, match="html, png"):
        analyze(blob_index, out=tmp_path / "a.html", formats=["pdf"], settings=QUIET)


def test_an_index_without_two_genres_is_refused_with_advice(tmp_path) -> None:
    folder = write_blob_index(tmp_path / "index", tmp_path / "covers", {"pop": 25})
    with pytest.raises(AnalysisError, match="at least two genres"):
        analyze(folder, out=tmp_path / "a.html", settings=QUIET)


def test_a_tiny_index_is_refused_with_advice(tmp_path) -> None:
    folder = write_blob_index(tmp_path / "index", tmp_path / "covers", {"pop": 5, "rock": 5})
    with pytest.raises(AnalysisError, match="needs at least 20"):
        analyze(folder, out=tmp_path / "a.html", settings=QUIET)


def test_unlabelled_covers_are_drawn_but_left_out_of_the_measures(tmp_path) -> None:
    folder = write_blob_index(tmp_path / "index", tmp_path / "covers", {"pop": 12, "rock": 12, "jazz": 6})
    index = load_index(folder)
    metadata = index.metadata.copy()
    metadata.loc[metadata["genre"] == "jazz", "genre"] = None
    metadata.to_parquet(folder / index.info.files["metadata"], index=False)
    summary = analyze(folder, out=tmp_path / "a.html", layout_cache_dir=tmp_path / "cache", settings=QUIET,
                      cover_map=fast_cover_map())
    assert summary.covers == 30 and summary.labelled == 24 and sorted(summary.ranking) == ["pop", "rock"]
    assert "(no genre)" in (tmp_path / "a.html").read_text()


def test_editions_section_counts_the_family_of_a_cover_and_its_edited_copies(
    edited_index: EditedIndex, tmp_path: Path,
) -> None:
    out = tmp_path / "a.html"
    summary = analyze(edited_index.folder, out=out, layout_cache_dir=tmp_path / "cache", cover_map=fast_cover_map(),
                      settings=Settings(cache_dir=edited_index.cache, progress=False))
    family = {str(edited_index.original), *map(str, edited_index.copies)}
    assert summary.editions is not None
    assert (summary.editions["covers_in_groups"], summary.editions["groups"]) == (4, 1)
    [group] = summary.editions["largest"]
    assert set(group["paths"]) == family and group["size"] == 4
    assert "4 of the 23 covers (17.4%) fall in 1 edition group" in "\n".join(summary.lines())
    page = out.read_text()
    section = page[page.index("<h2>Editions and duplicates</h2>"):page.index("<h2>How this was measured</h2>")]
    assert "4 of the 23 covers" in section and "look and perceptual hashes only" in section
    assert section.count('<img src="data:image/jpeg;base64,') == 4
    assert all(path in section for path in family)
