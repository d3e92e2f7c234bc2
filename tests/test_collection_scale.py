"""bench/collection_scale.py's synthetic collection: the real covers planted whole, distractors made of real lines,
and a reflection that moves the distractors' mean direction without changing any cosine among them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bench.collection_scale import (
    STAGES, artist_marks, collection, names_artist, parse_args, reflect_onto, resampled_looks, run_stage,
    stages_to_run, text_lines,
)
from index.store import load_index
from recsys.encoders import ModelSpec


def fake_artist_index(count: int = 6, dim: int = 16) -> SimpleNamespace:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((count, dim)).astype(np.float32) + 2.0
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    metadata = pd.DataFrame({
        "path": [f"/covers/{i}.jpg" for i in range(count)],
        "content_hash": [f"hash{i}" for i in range(count)],
        "genre": ["rock"] * count,
        "user:artist": [f"Artist {i % 3}" for i in range(count)],
    })
    texts = pd.DataFrame({"content_hash": metadata["content_hash"], "text": "x", "reader": "reader-key"})
    return SimpleNamespace(metadata=metadata, embeddings=vectors, texts=texts)


def test_reflection_moves_the_mean_and_keeps_cosines():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((50, 8)).astype(np.float32)
    before = vectors @ vectors.T
    source, target = np.eye(8, dtype=np.float32)[0], np.full(8, 8**-0.5, dtype=np.float32)
    moved = np.vstack([vectors, source])
    reflect_onto(moved, source, target)
    np.testing.assert_allclose(moved[-1], target, atol=1e-6)
    np.testing.assert_allclose(moved[:-1] @ moved[:-1].T, before, rtol=1e-4, atol=1e-4)


def test_planted_covers_are_whole_and_distractors_print_real_lines():
    artist = fake_artist_index()
    artist_texts = ["ALAN JACKSON\nDrive", "", "Miles Davis\nKind of Blue\nStereo", "a", "b", "c"]
    source = ["Greatest Hits\nVol 2", "LIVE", ""]
    vectors, metadata, texts = collection(40, artist, artist_texts, source)
    planted = np.flatnonzero(metadata["artist"].to_numpy() != "")
    assert len(planted) == 6 and len(vectors) == len(metadata) == len(texts) == 40
    np.testing.assert_array_equal(vectors[planted], artist.embeddings)
    assert list(texts["text"].iloc[planted]) == artist_texts
    assert list(metadata["content_hash"].iloc[planted]) == list(artist.metadata["content_hash"])
    assert list(metadata["path"].iloc[planted]) == list(artist.metadata["path"])
    assert metadata["content_hash"].is_unique
    lines = {line for text in source for line in text_lines(text)}
    others = texts["text"].drop(index=planted)
    assert all(set(text_lines(text)) <= lines for text in others)
    assert max(len(text_lines(text)) for text in others) <= 2  # no more lines than a source cover prints
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def scratch_folder(folder: Path, count: int = 60) -> np.ndarray:
    """A kept scratch folder as bench_size leaves it before its stages; returns the vectors it holds."""
    artist = fake_artist_index()
    artist_texts = ["ALAN JACKSON\nDrive", "", "Miles Davis\nKind of Blue\nStereo", "a", "b", "c"]
    vectors, metadata, texts = collection(count, artist, artist_texts, ["Greatest Hits\nVol 2", "LIVE", "Blue"])
    vectors *= 3.0  # not unit: the folder stage normalises, as build-index does
    np.save(folder / "vectors.npy", vectors)
    metadata.to_parquet(folder / "metadata.parquet", index=False)
    texts.to_parquet(folder / "texts.parquet", index=False)
    (folder / "model.json").write_text(json.dumps(ModelSpec("synthetic", "families", "0" * 64, 16).to_dict()))
    return vectors


def test_an_artist_is_named_by_its_name_or_a_line_only_its_covers_print():
    artists = ["Iron Maiden", "Iron Maiden", "Miles Davis", "Miles Davis", "Yes"]
    texts = ["IRANMXIDEN\nKillers", "IRANMXIDEN\nLIVE", "Kind of Blue\nLIVE", "MILES DAVIS\nLIVE", "LIVE"]
    marks = artist_marks(artists, texts)
    assert marks == {"Iron Maiden": {"iranmxiden"}, "Miles Davis": set(), "Yes": set()}  # "live": many print it
    assert names_artist("Greatest hits\nIranmxiden", "Iron Maiden", marks["Iron Maiden"])
    assert names_artist("THE MILES DAVIS QUINTET", "Miles Davis", marks["Miles Davis"])
    assert not names_artist("LIVE\nKillers", "Iron Maiden", marks["Iron Maiden"])


def test_unnamed_distractors_print_no_line_that_names_a_planted_artist():
    artist = fake_artist_index()
    artist_texts = ["Artist 0 live", "", "Kind of Blue", "a", "b", "c"]
    source = ["ARTIST 0\nGreatest Hits", "LIVE\nThe Artist 2 Band"]
    _, metadata, texts = collection(200, artist, artist_texts, source, unnamed=True)
    others = texts["text"][metadata["artist"] == ""]
    assert {line for text in others for line in text_lines(text)} == {"Greatest Hits", "LIVE"}
    _, _, every = collection(200, artist, artist_texts, source)
    assert "ARTIST 0" in {line for text in every["text"] for line in text_lines(text)}


def test_folder_stage_writes_the_index_type_asked_from_mapped_rows(tmp_path):
    vectors = scratch_folder(tmp_path)
    assert stages_to_run(tmp_path, reuse=True) == list(STAGES)
    for stage in ("words_model", "graph"):
        run_stage(stage, tmp_path)
    assert stages_to_run(tmp_path, reuse=True) == ["folder"]
    assert stages_to_run(tmp_path, reuse=False) == list(STAGES)
    result = run_stage("folder", tmp_path, "hnsw")
    assert result["index_type"] == "hnsw"
    index = load_index(tmp_path / "index")
    assert index.info.index_type == "hnsw" and index.faiss_index.ntotal == len(vectors)
    np.testing.assert_allclose(index.embeddings, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), atol=1e-6)
    metadata = pd.read_parquet(tmp_path / "metadata.parquet")
    assert list(index.metadata["content_hash"]) == list(metadata["content_hash"])
    assert not list((tmp_path / "index").glob(".*.tmp"))  # the staged vectors became the generation's file
    assert stages_to_run(tmp_path, reuse=True) == []
    (tmp_path / "neighbours.parquet").unlink()
    assert stages_to_run(tmp_path, reuse=True) == ["graph"]


def test_index_type_must_be_one_build_index_offers():
    assert parse_args(["--index-type", "ivfpq"]).index_type == "ivfpq"
    with pytest.raises(SystemExit):
        parse_args(["--index-type", "lsh"])


def test_real_looks_use_each_source_vector_once_then_stay_near_them():
    rng = np.random.default_rng(3)
    source = rng.standard_normal((30, 8)).astype(np.float32) + 1.5
    source /= np.linalg.norm(source, axis=1, keepdims=True)
    looks = resampled_looks(source, 100)
    assert looks.shape == (100, 8)
    np.testing.assert_allclose(np.linalg.norm(looks, axis=1), 1.0, atol=1e-5)
    first = np.sort(looks[:30], axis=0)  # the sources themselves, in another order
    np.testing.assert_allclose(first, np.sort(source, axis=0), atol=1e-6)
    nearest = (looks[30:] @ source.T).max(axis=1)
    assert (nearest < 1.0 - 1e-4).all()  # moved: no duplicate of a source
    assert nearest.min() > 0.8


def test_collection_plants_real_covers_among_real_looks():
    artist = fake_artist_index()
    source = np.random.default_rng(4).standard_normal((20, 16)).astype(np.float32)
    source /= np.linalg.norm(source, axis=1, keepdims=True)
    vectors, metadata, _ = collection(40, artist, ["x"] * 6, ["a\nb"], source_vectors=source)
    planted = metadata["artist"].to_numpy() != ""
    np.testing.assert_allclose(vectors[planted], artist.embeddings)
    assert np.isclose(vectors[~planted] @ source.T, 1.0, atol=1e-5).any(axis=1).sum() >= 14
