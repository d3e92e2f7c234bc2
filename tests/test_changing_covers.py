"""Covers rewritten while build-index runs: every indexed vector is the content of the hash stored beside it.

A sync tool, a download finishing or an editor saving in place can change a cover between the moment sleeve
hashes it and the moment it decodes it. The rewrites here happen right after the collection is fingerprinted
(the widest window on a build that hashes and decodes separately), so each test is deterministic.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import recsys.build
import recsys.embed
from index.store import load_index
from recsys.build import build_index
from recsys.distribute import Distributor, Shard
from recsys.encoders import Encoder, ModelSpec
from recsys.encoders.base import stack_preprocessed
from recsys.images import load_cover
from recsys.settings import Settings
from tests.conftest import make_cover

EMPTY = hashlib.sha256(b"").hexdigest()


class InProcess:
    """A ``Distributor`` that runs every shard here, in order: the --cluster code path without Dask."""

    def worker_count(self) -> int:
        return 2

    def map_shards(self, task: Callable[[Any, Shard], Any], resident: Any, shards: Sequence[Shard]) -> Iterator:
        value = resident.build()
        for shard in shards:
            yield shard, task(value, shard)


def _settings(cache: Path) -> Settings:
    return Settings(runtime="torch", cache_dir=cache, progress=False)


def _build(covers: Path, index: Path, cache: Path, distributor: Distributor | None = None) -> Any:
    return build_index(
        index, covers=covers, encoder="efficientnet-lite0", batch_size=2, workers=0, settings=_settings(cache),
        distributor=distributor, files_per_shard=2,
    )


def _collection(root: Path, versions: dict[str, bytes], count: int = 6) -> list[Path]:
    paths = [make_cover(root / ("rock" if i % 2 else "jazz") / f"cover-{i}.png", seed=40 + i) for i in range(count)]
    for path in paths:
        _remember(path, versions)
    return paths


def _remember(path: Path, versions: dict[str, bytes]) -> None:
    data = path.read_bytes()
    versions[hashlib.sha256(data).hexdigest()] = data


def _rewrite_after_fingerprint(monkeypatch: pytest.MonkeyPatch, rewrite: Callable[[], None]) -> None:
    """Run ``rewrite`` once, between hashing the collection (here or on the workers) and embedding it."""
    for name in ("fingerprint", "fingerprint_distributed"):
        monkeypatch.setattr(recsys.build, name, _then(getattr(recsys.build, name), rewrite))


def _then(original: Callable[..., Any], rewrite: Callable[[], None]) -> Callable[..., Any]:
    def then_rewrite(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        rewrite()
        return found

    return then_rewrite


def _clean_vector(encoder: Encoder, data: bytes) -> np.ndarray:
    image = load_cover(data, reduce_to=encoder.input_size)
    return encoder.encode_images(stack_preprocessed([encoder.preprocess(image)]))[0]


def _assert_every_vector_is_its_hash(index_dir: Path, cache: Path, versions: dict[str, bytes]) -> pd.DataFrame:
    """Each row's vector equals a clean embedding of the bytes its content_hash names; returns the rows."""
    index = load_index(index_dir)
    encoder = _settings(cache).encoder_for(ModelSpec.from_dict(index.info.model))
    rows = index.metadata
    assert EMPTY not in set(rows["content_hash"]), "an empty file was indexed"
    for row, content_hash in enumerate(rows["content_hash"]):
        assert content_hash in versions, f"{rows['path'][row]}: a hash of bytes no version of any cover had"
        clean = _clean_vector(encoder, versions[content_hash])
        np.testing.assert_allclose(index.embeddings[row], clean, atol=1e-5, err_msg=rows["path"][row])
    return rows


def _cached_hashes(cache: Path) -> set[str]:
    with sqlite3.connect(cache / "embeddings.sqlite") as db:
        return {h for (h,) in db.execute("SELECT hash FROM embeddings")}


def _skipped(index_dir: Path) -> dict[str, str]:
    skipped = pd.read_csv(index_dir / "skipped.csv")
    return dict(zip(skipped["path"].map(lambda p: Path(p).name), skipped["reason"]))


@pytest.mark.parametrize("distributed", [False, True], ids=["in-process", "cluster-path"])
def test_covers_rewritten_during_a_build_keep_vector_and_hash_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, distributed: bool
) -> None:
    versions: dict[str, bytes] = {}
    a, b, c, d, e, f = _collection(tmp_path / "covers", versions)
    newcomer = make_cover(tmp_path / "newcomer.png", seed=999)
    _remember(newcomer, versions)
    d.write_bytes(a.read_bytes())  # d starts as a duplicate of a: one of the two paths is read for both

    def rewrite() -> None:
        first, second = a.read_bytes(), b.read_bytes()
        a.write_bytes(second)  # swapped in place
        b.write_bytes(first)
        c.write_bytes(b"")  # truncated to nothing
        d.write_bytes(newcomer.read_bytes())  # the duplicate becomes another cover
        e.write_bytes(f.read_bytes()[:200])  # half-written

    _rewrite_after_fingerprint(monkeypatch, rewrite)
    cache = tmp_path / "cache"
    distributor = InProcess() if distributed else None
    _build(tmp_path / "covers", tmp_path / "index", cache, distributor)
    rows = _assert_every_vector_is_its_hash(tmp_path / "index", cache, versions)
    assert {Path(p).name for p in rows["path"]} == {"cover-0.png", "cover-1.png", "cover-3.png", "cover-5.png"}
    reasons = _skipped(tmp_path / "index")
    assert "empty" in reasons["cover-2.png"] and "truncated" in reasons["cover-4.png"]
    assert set(_cached_hashes(cache)) <= set(versions) - {EMPTY}

    monkeypatch.undo()  # a second, quiet build on the same cache must not inherit a wrong pairing
    _build(tmp_path / "covers", tmp_path / "again", cache, distributor)
    again = _assert_every_vector_is_its_hash(tmp_path / "again", cache, versions)
    assert set(again["path"]) == set(rows["path"])


def test_a_file_empty_when_hashed_and_filled_before_decoding_never_lends_its_vector_to_empty_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions: dict[str, bytes] = {}
    _collection(tmp_path / "covers", versions, count=2)
    late = tmp_path / "covers" / "jazz" / "late.png"
    late.write_bytes(b"")
    finished = make_cover(tmp_path / "finished.png", seed=77).read_bytes()
    versions[hashlib.sha256(finished).hexdigest()] = finished
    _rewrite_after_fingerprint(monkeypatch, lambda: late.write_bytes(finished))  # the download completes
    cache = tmp_path / "cache"
    _build(tmp_path / "covers", tmp_path / "index", cache)
    _assert_every_vector_is_its_hash(tmp_path / "index", cache, versions)
    assert EMPTY not in _cached_hashes(cache)

    monkeypatch.undo()
    (tmp_path / "covers" / "rock" / "empty.png").write_bytes(b"")
    _build(tmp_path / "covers", tmp_path / "again", cache)
    rows = _assert_every_vector_is_its_hash(tmp_path / "again", cache, versions)
    assert "empty.png" not in {Path(p).name for p in rows["path"]}
    assert _skipped(tmp_path / "again") == {"empty.png": "empty file"}
    assert EMPTY not in _cached_hashes(cache)


@pytest.mark.parametrize("damage", ["short", "float64", "text"])
def test_a_cached_vector_that_does_not_fit_is_recomputed_not_returned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    versions: dict[str, bytes] = {}
    _collection(tmp_path / "covers", versions, count=3)
    cache = tmp_path / "cache"
    _build(tmp_path / "covers", tmp_path / "index", cache)
    with sqlite3.connect(cache / "embeddings.sqlite") as db:
        for (content_hash, blob) in db.execute("SELECT hash, vector FROM embeddings ORDER BY hash LIMIT 2").fetchall():
            vector = np.frombuffer(blob, dtype=np.float32)
            bad = {"short": blob[:-4], "float64": vector.astype(np.float64).tobytes(), "text": "garbage"}[damage]
            db.execute("UPDATE embeddings SET vector = ? WHERE hash = ?", (bad, content_hash))

    with caplog.at_level(logging.WARNING):
        summary = _build(tmp_path / "covers", tmp_path / "again", cache)
    assert summary.embedded == 2 and summary.covers == 3
    _assert_every_vector_is_its_hash(tmp_path / "again", cache, versions)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "cache" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]


def test_a_duplicate_whose_every_copy_changes_is_reported_not_indexed_under_a_stale_vector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions: dict[str, bytes] = {}
    a, b = _collection(tmp_path / "covers", versions, count=2)
    copy = a.parent / "later-copy.png"
    copy.write_bytes(a.read_bytes())
    monkeypatch.setattr(recsys.embed, "ROUNDS", 1, raising=False)  # no round to read the copy after cover-0 changed
    _rewrite_after_fingerprint(monkeypatch, lambda: a.write_bytes(b.read_bytes()))
    _build(tmp_path / "covers", tmp_path / "index", tmp_path / "cache")
    rows = _assert_every_vector_is_its_hash(tmp_path / "index", tmp_path / "cache", versions)
    assert sorted(Path(p).name for p in rows["path"]) == ["cover-0.png", "cover-1.png"]
    assert "changed on disk while it was being indexed" in _skipped(tmp_path / "index")["later-copy.png"]
