from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from index.store import ModelMismatchError, load_index
from recsys.build import build_index
from recsys.encoders.base import FamilyEncoder
from recsys.ingest import CollectionError, content_hash
from recsys.settings import Settings
from tests.bad_inputs import write_bad_files, write_odd_but_valid_files
from tests.conftest import make_cover


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for tests that are not about caching (keeps the ONNX export to one)."""
    return tmp_path_factory.mktemp("cache")


def _collection(root: Path, per_genre: int = 4) -> Path:
    for g, genre in enumerate(["rock", "jazz"]):
        for i in range(per_genre):
            make_cover(root / genre / f"{genre}-{i}.png", seed=100 * g + i)
    return root


def _build(covers: Path, index: Path, cache: Path, runtime: str = "auto", weights: str | None = None, **kwargs) -> object:
    options = dict(encoder="efficientnet-lite0", batch_size=4, workers=0)
    options.update(kwargs)
    settings = Settings(runtime=runtime, cache_dir=cache, weights=weights, progress=False)
    return build_index(index, covers=covers, settings=settings, **options)


def test_bad_files_are_skipped_and_reported_while_the_batch_completes(tmp_path: Path, cache_dir: Path) -> None:
    covers = _collection(tmp_path / "covers")
    bad = write_bad_files(covers / "rock")
    odd = write_odd_but_valid_files(covers / "jazz")
    summary = _build(covers, tmp_path / "index", cache_dir, workers=1)
    assert summary.covers == 8 + len(odd)
    assert summary.skipped == len(bad)
    skipped = pd.read_csv(tmp_path / "index" / "skipped.csv")
    reasons = dict(zip(skipped["path"].map(lambda p: Path(p).name), skipped["reason"]))
    assert set(reasons) == set(bad)
    for name, fragment in bad.items():
        assert fragment in reasons[name]
    assert f"{len(bad)} skipped" in summary.line()


def test_identical_files_are_embedded_once_but_all_indexed(tmp_path: Path) -> None:
    covers = _collection(tmp_path / "covers", per_genre=2)
    shutil.copy(covers / "rock" / "rock-0.png", covers / "jazz" / "same-as-rock-0.png")
    summary = _build(covers, tmp_path / "index", tmp_path / "cache")
    assert summary.covers == 5 and summary.embedded == 4
    metadata = load_index(tmp_path / "index").metadata
    assert metadata["content_hash"].value_counts().max() == 2


def test_every_copy_of_an_undecodable_file_is_reported_with_its_reason(tmp_path: Path, cache_dir: Path) -> None:
    covers = _collection(tmp_path / "covers", per_genre=1)
    for i in range(6):
        (covers / "rock" / f"broken-{i}.png").write_bytes(b"not a picture at all")
    summary = _build(covers, tmp_path / "index", cache_dir)
    assert (summary.covers, summary.skipped) == (2, 6)
    reasons = pd.read_csv(tmp_path / "index" / "skipped.csv")["reason"]
    assert (reasons == "not an image (unknown or corrupt format)").all()


def test_rebuild_embeds_only_new_covers_and_drops_vanished_ones(tmp_path: Path) -> None:
    covers = _collection(tmp_path / "covers")
    first = _build(covers, tmp_path / "index", tmp_path / "cache")
    assert first.embedded == 8 and first.added == 8
    (covers / "rock" / "rock-0.png").unlink()
    make_cover(covers / "jazz" / "new-1.png", seed=900)
    make_cover(covers / "blues" / "new-2.png", seed=901)
    second = _build(covers, tmp_path / "index", tmp_path / "cache")
    assert (second.embedded, second.added, second.removed, second.covers) == (2, 2, 1, 9)
    metadata = load_index(tmp_path / "index").metadata
    assert "blues" in set(metadata["genre"]) and not metadata["path"].str.endswith("rock-0.png").any()


def test_an_interrupted_build_resumes_without_recomputing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    covers = _collection(tmp_path / "covers", per_genre=6)
    reference = _build(covers, tmp_path / "reference", tmp_path / "reference-cache", runtime="torch")
    assert reference.embedded == 12

    calls = {"n": 0}
    original = FamilyEncoder.encode_images

    def crash_on_third_batch(self: FamilyEncoder, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(FamilyEncoder, "encode_images", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        _build(covers, tmp_path / "index", tmp_path / "cache", runtime="torch")
    assert not (tmp_path / "index" / "index.json").exists()
    monkeypatch.undo()

    resumed = _build(covers, tmp_path / "index", tmp_path / "cache", runtime="torch")
    assert resumed.embedded == 12 - 2 * 4, "two finished batches of 4 must come from the cache"
    np.testing.assert_allclose(
        load_index(tmp_path / "index").embeddings, load_index(tmp_path / "reference").embeddings, atol=1e-6
    )


def test_manifest_metadata_is_carried_into_the_index(tmp_path: Path) -> None:
    a = make_cover(tmp_path / "covers" / "a.jpg", 1)
    make_cover(tmp_path / "covers" / "b.jpg", 2)
    manifest = tmp_path / "covers" / "manifest.csv"
    manifest.write_text("path,genre,artist,mbid\na.jpg,jazz,Miles Davis,123\nb.jpg,,Unknown,456\nmissing.jpg,rock,X,789\n")
    summary = build_index(
        tmp_path / "index", manifest=manifest, encoder="efficientnet-lite0", workers=0,
        settings=Settings(cache_dir=tmp_path / "cache", progress=False),
    )
    assert summary.covers == 2 and summary.skipped == 1
    metadata = load_index(tmp_path / "index").metadata.set_index("path")
    assert metadata.loc[str(a), "user:artist"] == "Miles Davis" and metadata.loc[str(a), "user:mbid"] == "123"
    assert metadata.loc[str(a), "content_hash"] == content_hash(a)


def test_an_existing_index_refuses_another_model(tmp_path: Path, tiny_clip, cache_dir: Path) -> None:
    covers = _collection(tmp_path / "covers", per_genre=1)
    _build(covers, tmp_path / "index", cache_dir)
    config, checkpoint = tiny_clip
    with pytest.raises(ModelMismatchError, match="another --index"):
        _build(covers, tmp_path / "index", cache_dir, encoder="clip", arch=str(config), weights=str(checkpoint))
    again = _build(covers, tmp_path / "index", cache_dir, encoder="auto")
    assert again.model_key.startswith("efficientnet-lite0") and again.embedded == 0


def test_a_collection_without_readable_covers_is_an_error(tmp_path: Path, cache_dir: Path) -> None:
    write_bad_files(tmp_path / "covers")
    with pytest.raises(CollectionError, match="no readable covers"):
        _build(tmp_path / "covers", tmp_path / "index", cache_dir)
    assert (tmp_path / "index" / "skipped.csv").is_file()
