from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsys.distribute import fingerprint_distributed
from recsys.ingest import CollectionError, content_hash, fingerprint, read_collection, read_manifest, scan_folder
from tests.bad_inputs import files_to_fingerprint
from tests.conftest import make_cover


def test_scan_folder_takes_genre_from_parent_folder_and_ignores_the_rest(tmp_path: Path) -> None:
    make_cover(tmp_path / "source" / "rock" / "a.jpg", 1)
    make_cover(tmp_path / "jazz" / "b.PNG", 2)
    make_cover(tmp_path / "loose.jpg", 3)
    make_cover(tmp_path / ".hidden" / "c.jpg", 4)
    (tmp_path / "MANIFEST.csv").write_text("path\n")
    (tmp_path / "jazz" / ".DS_Store").write_bytes(b"\0")
    table = scan_folder(tmp_path)
    genres = dict(zip([Path(p).name for p in table["path"]], table["genre"]))
    assert sorted(genres) == ["a.jpg", "b.PNG", "loose.jpg"]
    assert genres["a.jpg"] == "rock" and genres["b.PNG"] == "jazz" and pd.isna(genres["loose.jpg"])
    assert all(os.path.isabs(p) for p in table["path"])
    assert scan_folder(tmp_path, genre_from_folder=False)["genre"].isna().all()


def test_scan_folder_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match="not found"):
        scan_folder(tmp_path / "nowhere")


def test_manifest_paths_are_relative_to_the_manifest_and_metadata_is_kept(tmp_path: Path) -> None:
    make_cover(tmp_path / "covers" / "x.jpg", 1)
    manifest = tmp_path / "covers" / "list.csv"
    manifest.write_text("path,genre,artist,year\nx.jpg,jazz,Miles,1959\n/abs/y.jpg,,Someone,\n")
    table = read_manifest(manifest)
    assert table.loc[0, "path"] == str(tmp_path / "covers" / "x.jpg")
    assert table.loc[1, "path"] == "/abs/y.jpg"
    assert table.loc[0, "artist"] == "Miles" and table.loc[0, "year"] == "1959"
    assert pd.isna(table.loc[1, "genre"])


def test_one_file_spelled_several_ways_in_a_manifest_is_listed_once_and_the_repeats_reported(tmp_path: Path) -> None:
    cover = make_cover(tmp_path / "covers" / "a.jpg", 1)
    spellings = ["a.jpg", "./a.jpg", "x/../a.jpg", f"{tmp_path}/covers/./a.jpg", f"{tmp_path}//covers/a.jpg"]
    manifest = tmp_path / "covers" / "list.csv"
    manifest.write_text("path,artist\n" + "".join(f"{path},take {n}\n" for n, path in enumerate(spellings)))
    table, skipped = read_collection(None, manifest)
    assert list(table["path"]) == [str(cover)] and list(table["artist"]) == ["take 0"], "the first listing is kept"
    assert list(skipped["path"]) == [str(cover)] * 4
    lines = [reason.split(" of ")[0] for reason in skipped["reason"]]
    assert lines == [f"listed again on line {n}" for n in range(3, 7)]


def test_manifest_without_genre_column_gets_an_empty_one(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path\na.jpg\n")
    assert read_manifest(manifest)["genre"].isna().all()


@pytest.mark.parametrize("content", ["artist,genre\nA,rock\n", ""])
def test_manifest_without_path_column_is_refused(tmp_path: Path, content: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(content)
    with pytest.raises(CollectionError):
        read_manifest(manifest)


def test_fingerprint_hashes_content_and_reports_unreadable_paths(tmp_path: Path) -> None:
    a = make_cover(tmp_path / "a.png", 1)
    copy = tmp_path / "copy.png"
    copy.write_bytes(a.read_bytes())
    (tmp_path / "dir.jpg").mkdir()
    found, unreadable = fingerprint([str(a), str(copy), str(tmp_path / "gone.jpg"), str(tmp_path / "dir.jpg")])
    assert list(found["content_hash"]) == [content_hash(a)] * 2
    assert dict(zip(unreadable["path"], unreadable["reason"])) == {
        str(tmp_path / "gone.jpg"): "file not found",
        str(tmp_path / "dir.jpg"): "is a directory",
    }


def test_fingerprint_reuses_known_hashes_only_while_size_and_mtime_match(tmp_path: Path) -> None:
    a = make_cover(tmp_path / "a.png", 1)
    stat = a.stat()
    known = pd.DataFrame(
        {"path": [str(a)], "size": [stat.st_size], "mtime_ns": [stat.st_mtime_ns], "content_hash": ["remembered"]}
    )
    found, _ = fingerprint([str(a)], known=known)
    assert found.loc[0, "content_hash"] == "remembered"
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    found, _ = fingerprint([str(a)], known=known)
    assert found.loc[0, "content_hash"] == content_hash(a)


class ShardsBackwards:
    """A ``Distributor`` that runs every shard here, last shard first: results that arrive out of input order."""

    def worker_count(self) -> int:
        return 3

    def map_shards(self, task: Callable[[Any, Any], Any], resident: Any, shards: Sequence[Any]) -> Iterator:
        value = resident.build()
        for shard in reversed(shards):
            yield shard, task(value, shard)


def test_fingerprint_reports_every_kind_of_path_and_reuses_only_unchanged_known_rows(tmp_path: Path) -> None:
    paths, known, reasons = files_to_fingerprint(tmp_path / "covers")
    found, unreadable = fingerprint(paths, known=known)
    assert dict(zip(unreadable["path"].map(lambda p: Path(p).name), unreadable["reason"])) == reasons
    hashes = dict(zip(found["path"].map(lambda p: Path(p).name), found["content_hash"]))
    assert hashes["remembered.png"] == "remembered, not read again"
    assert hashes["changed.png"] == content_hash(tmp_path / "covers" / "changed.png")
    assert hashes["copy.png"] == hashes["a.png"] == content_hash(tmp_path / "covers" / "a.png")


@pytest.mark.parametrize("files_per_shard", [1, 4, None])
def test_distributed_fingerprint_equals_the_local_one_in_input_order(tmp_path: Path, files_per_shard: int) -> None:
    paths, known, _ = files_to_fingerprint(tmp_path / "covers")
    distributed = fingerprint_distributed(paths, ShardsBackwards(), known, files_per_shard, progress=False)
    for got, expected in zip(distributed, fingerprint(paths, known=known), strict=True):
        pd.testing.assert_frame_equal(got, expected)


def test_distributed_fingerprint_of_nothing_is_empty_frames() -> None:
    for got, expected in zip(fingerprint_distributed([], ShardsBackwards(), progress=False), fingerprint([])):
        pd.testing.assert_frame_equal(got, expected)
