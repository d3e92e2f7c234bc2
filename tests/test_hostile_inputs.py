"""Hostile inputs a new user meets, through the CLI as users run it: every one is used or skipped with a
reason, and every failure is one line on stderr with exit code 1, never a traceback or a hang.

Commands that could hang on a FIFO run as subprocesses with a timeout, so a regression fails instead of
blocking the test run.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from cli import main
from index.store import load_index
from recsys.classify.persist import ClassifierInfo, save_classifier
from recsys.images import BadImageError, load_cover
from recsys.ingest import printable_path, read_collection
from tests.bad_inputs import (
    HOSTILE_SKIPS,
    HOSTILE_VALID,
    NOT_UTF8,
    faiss_file_on_a_full_disk,
    read_only_folder,
    write_hostile_files,
)
from tests.conftest import make_cover

REPO = Path(__file__).resolve().parents[1]


def _sleeve(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run the CLI as a user does; a hang becomes a test failure, not a stuck run."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(REPO / "cli.py"), *args], capture_output=True, text=True, timeout=timeout, env=env,
        errors="replace",
    )


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def _hostile_collection(root: Path) -> Path:
    for g, genre in enumerate(["rock", "jazz"]):
        for i in range(4):
            make_cover(root / genre / f"{genre}-{i}.png", seed=300 + 10 * g + i)
    write_hostile_files(root / "odd")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("hostile")
    covers = _hostile_collection(root / "covers")
    result = _sleeve(
        "build-index", "--covers", str(covers), "--index", str(root / "index"), "--cache", str(root / "cache"),
        "--model", "efficientnet-lite0", "--workers", "1", "--batch-size", "4", "--json", "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["covers"] == 8 + len(HOSTILE_VALID), "8 covers and the wide, tall and 1x1 images"
    return covers, root / "index", root / "cache"


def _cli(built: tuple[Path, Path, Path], *args: str):
    _, index, cache = built
    return CliRunner().invoke(main, [*args[:1], "--index", str(index), "--cache", str(cache), *args[1:]])


def test_special_files_unsupported_formats_and_bad_names_are_skipped_with_a_reason(built) -> None:
    _, index, _ = built
    skipped = pd.read_csv(index / "skipped.csv")
    reasons = dict(zip(skipped["path"].map(lambda p: Path(p).name), skipped["reason"]))
    for name, fragment in HOSTILE_SKIPS.items():
        assert fragment in reasons[printable_path(name)], (name, reasons)
    assert len(skipped) == len(HOSTILE_SKIPS)


def test_recommend_on_a_fifo_or_device_fails_in_one_line_without_hanging(built) -> None:
    covers, index, cache = built
    fifo = _sleeve("recommend", "--index", str(index), "--cache", str(cache), "--cover", str(covers / "odd" / "pipe.jpg"))
    assert fifo.returncode == 1 and "named pipe" in _one_line_error(fifo.stderr)
    device = _cli(built, "recommend", "--cover", str(covers / "odd" / "zero.jpg"))
    assert device.exit_code == 1 and "character device" in _one_line_error(device.stderr)


def test_read_text_reads_thin_tiny_and_oddly_named_covers_and_skips_special_files(built) -> None:
    covers, _, _ = built
    readable = [covers / "odd" / name for name in HOSTILE_VALID]
    args = [str(p) for p in readable] + [str(covers / "odd" / NOT_UTF8), str(covers / "odd" / "pipe.jpg"),
                                          str(covers / "odd" / "zero.jpg")]
    result = _sleeve("read-text", "--json", *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "named pipe" in errors[0] and "character device" in errors[1]
    read = {Path(r["cover"]).name: r for r in json.loads(result.stdout)}
    assert all("lines" in read[p.name] for p in readable) and "lines" in read["caf\\xe9-latin1.png"]


def test_k_is_capped_at_the_collection_size(built) -> None:
    covers, _, _ = built
    result = _cli(built, "recommend", "--cover", str(covers / "rock" / "rock-0.png"), "-k", "1000000000", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"]) == 10, "11 covers, the query itself left out"


def test_a_broken_classifier_is_a_warning_in_recommend(built, tmp_path: Path) -> None:
    covers, index, cache = built
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    (copy / "classifier").mkdir()
    (copy / "classifier" / "classifier.json").write_text("{broken")
    (copy / "classifier" / "model.skops").write_bytes(b"not a model")
    result = CliRunner().invoke(
        main, ["recommend", "--index", str(copy), "--cache", str(cache), "--cover", str(covers / "rock" / "rock-1.png")]
    )
    assert result.exit_code == 0, result.output
    assert "warning: no genre guess" in result.stderr and "Traceback" not in result.output
    assert result.stdout.splitlines()[0].split() == ["rank", "score", "genre", "path", "match"]


def test_a_classifier_with_corrupt_state_is_one_line_in_predict_and_a_warning_in_recommend(
    built, tmp_path: Path
) -> None:
    """State that no longer fits fails inside scikit-learn (ValueError: matmul); the user needs the fix, not that."""
    covers, index, cache = built
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    loaded = load_index(copy)
    estimator = LogisticRegression().fit(np.asarray(loaded.embeddings), loaded.metadata["genre"])
    estimator.coef_ = estimator.coef_[:, :7]  # state that no longer fits the index's vectors
    save_classifier(copy, estimator, ClassifierInfo(
        model="linear", title="linear", inputs="embeddings", model_key=loaded.info.model_key,
        classes=[str(genre) for genre in estimator.classes_], params={}, trained_on=11, validation_macro_f1=None,
    ))
    query = ["--index", str(copy), "--cache", str(cache), "--cover", str(covers / "rock" / "rock-1.png")]
    predict = CliRunner().invoke(main, ["predict", *query])
    assert predict.exit_code == 1
    line = _one_line_error(predict.stderr)
    assert f"classifier in {copy / 'classifier'}" in line and f"sleeve train-classifier --index {copy}" in line, line
    recommend = CliRunner().invoke(main, ["recommend", *query])
    assert recommend.exit_code == 0, recommend.output
    assert "warning: no genre guess" in recommend.stderr and "train-classifier" in recommend.stderr
    assert recommend.stdout.splitlines()[0].split() == ["rank", "score", "genre", "path", "match"]


def test_a_damaged_index_is_one_line_and_is_rebuilt_in_place(built, tmp_path: Path) -> None:
    covers, index, cache = built
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    faiss_file = copy / json.loads((copy / "index.json").read_text())["files"]["faiss"]
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    query = ["--cover", str(covers / "rock" / "rock-1.png")]
    recommend = CliRunner().invoke(main, ["recommend", "--index", str(copy), "--cache", str(cache), *query])
    assert recommend.exit_code == 1 and "--rebuild" in _one_line_error(recommend.stderr)
    build = ["build-index", "--covers", str(covers), "--index", str(copy), "--cache", str(cache), "--workers", "0",
             "--no-progress", "--json"]
    refused = CliRunner().invoke(main, build)
    assert refused.exit_code == 1 and "--rebuild" in _one_line_error(refused.stderr)
    rebuilt = CliRunner().invoke(main, [*build, "--rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["embedded"] == 0, "vectors come from the cache"
    assert load_index(copy).info.count == 11 and len(list(copy.glob("*.faiss"))) == 1


def test_manifest_columns_of_any_name_stay_apart_from_sleeves_fields(built, tmp_path: Path) -> None:
    covers, _, cache = built
    rows = [f"{covers}/rock/rock-{i}.png,rock,id{i},big,hash{i},old,first,{i * 10},mine{i},Artist {i},p{i}"
            for i in range(4)]
    rows += [f"{covers}/rock/rock-0.png,rock,again,,,,,,,,", ",rock,no path,,,,,,,,"]
    manifest = tmp_path / "m.csv"
    header = "path,genre,id,size,content_hash,mtime_ns,rank,score,user:score,artist,Path"
    manifest.write_text("\n".join([header, *rows]) + "\n")
    index = tmp_path / "index"
    build = CliRunner().invoke(main, ["build-index", "--manifest", str(manifest), "--index", str(index), "--cache",
                                      str(cache), "--model", "efficientnet-lite0", "--workers", "0", "--no-progress",
                                      "--json"])
    assert build.exit_code == 0, build.output
    summary = json.loads(build.stdout)
    assert (summary["covers"], summary["skipped"]) == (4, 2)
    reasons = " ".join(pd.read_csv(index / "skipped.csv")["reason"])
    assert "listed again on line 6" in reasons and "line 7 of m.csv: empty path cell" in reasons

    query = ["recommend", "--index", str(index), "--cache", str(cache), "--cover", str(covers / "jazz" / "jazz-0.png")]
    table = CliRunner().invoke(main, [*query, "-k", "2"])
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split() == [
        "rank", "score", "genre", "path", "user:id", "user:size", "user:content_hash", "user:mtime_ns", "user:rank",
        "user:score", "user:user:score", "artist", "Path", "match",
    ]
    results = json.loads(CliRunner().invoke(main, [*query, "--json"]).stdout)["results"]
    for row in results:
        assert isinstance(row["score"], float) and row["rank"] in (1, 2, 3, 4)
        i = int(Path(row["path"]).stem.split("-")[1])
        assert row["user:score"] == str(i * 10) and row["user:id"] == f"id{i}" and row["artist"] == f"Artist {i}"
        assert row["user:content_hash"] == f"hash{i}" and row["Path"] == f"p{i}"

    for where, expected in [("user:id=ID2", "rock-2.png"), ("user:score=30", "rock-3.png"), ("path=" + str(
            covers / "rock" / "rock-1.png"), "rock-1.png"), ("user:user:score=mine0", "rock-0.png")]:
        filtered = CliRunner().invoke(main, [*query, "--json", "--where", where])
        assert filtered.exit_code == 0, filtered.output
        assert [Path(r["path"]).name for r in json.loads(filtered.stdout)["results"]] == [expected], where
    for name in ["id", "score", "rank", "content_hash"]:
        refused = CliRunner().invoke(main, [*query, "--where", f"{name}=2"])
        assert refused.exit_code == 1 and f"--where user:{name}=VALUE" in _one_line_error(refused.stderr)


@pytest.mark.parametrize("kind", ["header only", "a folder", "no path column", "missing"])
def test_unusable_manifests_are_one_line(tmp_path: Path, kind: str) -> None:
    manifest = tmp_path / "m.csv"
    if kind == "header only":
        manifest.write_text("path,genre\n")
    elif kind == "a folder":
        manifest.mkdir()
    elif kind == "no path column":
        manifest.write_text("file,genre\na.jpg,rock\n")
    result = CliRunner().invoke(main, ["build-index", "--manifest", str(manifest), "--index", str(tmp_path / "i")])
    assert result.exit_code == 1
    _one_line_error(result.stderr)


def test_a_full_disk_is_one_line_and_keeps_the_old_index(built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    covers, index, cache = built
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    make_cover(covers.parent / "more" / "rock" / "new.png", seed=777)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "embeddings.npy")

    monkeypatch.setattr("os.posix_fallocate", full)  # where a build claims the disk for its vectors
    args = ["build-index", "--covers", str(covers), "--index", str(copy), "--cache", str(cache), "--workers", "0",
            "--no-progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "disk full" in _one_line_error(result.stderr)
    monkeypatch.undo()
    assert load_index(copy).info.count == 11 and not list(copy.glob(".*.tmp"))

    def cache_full(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr("recsys.cache.EmbeddingCache.put", cache_full)
    fresh = CliRunner().invoke(main, [*args[:5], "--cache", str(tmp_path / "new-cache"), *args[7:]])
    assert fresh.exit_code == 1 and "disk full" in _one_line_error(fresh.stderr)


def test_faiss_on_a_full_disk_says_the_disk_is_full(built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FAISS's own write error is a RuntimeError of its own text; the user needs to hear that the disk is full."""
    covers, index, cache = built
    copy = tmp_path / "index"
    shutil.copytree(index, copy)
    faiss_file_on_a_full_disk(monkeypatch)
    result = CliRunner().invoke(main, ["build-index", "--covers", str(covers), "--index", str(copy), "--cache",
                                       str(cache), "--workers", "0", "--no-progress", "--rebuild"])
    assert result.exit_code == 1 and "disk full" in _one_line_error(result.stderr)
    monkeypatch.undo()
    assert load_index(copy).info.count == 11 and not list(copy.glob(".*.tmp"))


def test_a_damaged_onnx_export_is_set_aside_and_made_again(
    built, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An export is only a cache: a damaged one must not stop every command for as long as it lies there."""
    covers, index, cache = built
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    (export,) = (copy / "onnx").glob("efficientnet-lite0_*.onnx")  # the index's model; other tests add others
    export.write_bytes(export.read_bytes()[:5000])
    query = ["recommend", "--index", str(index), "--cache", str(copy), "--cover", str(covers / "rock" / "rock-1.png")]
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(main, query)
    assert result.exit_code == 0, result.output
    assert [r.name for r in caplog.records] == ["recsys.encoders.onnx"] and "is damaged" in caplog.text
    assert export.with_name(f"{export.name}.damaged").stat().st_size == 5000
    caplog.clear()
    again = CliRunner().invoke(main, query)
    assert again.exit_code == 0 and again.stdout == result.stdout and not caplog.records


def test_a_garbage_embedding_database_is_set_aside_and_the_vectors_computed_again(
    built, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The vectors are only a cache: a damaged database costs their computing again, never the command."""
    covers, _, cache = built
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    (copy / "embeddings.sqlite").write_bytes(os.urandom(8192))
    build = ["build-index", "--covers", str(covers), "--index", str(tmp_path / "index"), "--cache", str(copy),
             "--model", "efficientnet-lite0", "--workers", "0", "--no-progress", "--json"]
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(main, build)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["embedded"] == 11
    assert [r.name for r in caplog.records] == ["recsys.cache"] and "embeddings.sqlite.damaged" in caplog.text


@pytest.mark.parametrize("command", ["build-index", "recommend"])
def test_a_read_only_cache_folder_is_one_line_that_says_what_to_do(built, tmp_path: Path, command: str) -> None:
    """The OS says only 'Operation not permitted: CACHE/onnx'; the user needs the way out (--cache, the variable)."""
    covers, index, _ = built
    args = {
        "build-index": ["--covers", str(covers), "--index", str(tmp_path / "index"), "--model", "efficientnet-lite0",
                        "--workers", "0", "--no-progress"],
        "recommend": ["--index", str(index), "--cover", str(covers / "rock" / "rock-1.png")],
    }[command]
    with read_only_folder(tmp_path / "cache") as cache:
        result = CliRunner().invoke(main, [command, *args, "--cache", str(cache)])
    assert result.exit_code == 1
    line = _one_line_error(result.stderr)
    assert "is not writable" in line and "--cache DIR or $SLEEVE_CACHE_DIR" in line, line


def test_an_unexpected_error_is_one_line_and_minus_v_shows_the_traceback(
    built, monkeypatch: pytest.MonkeyPatch
) -> None:
    covers, index, cache = built

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("recsys.recommend.Recommender.similar_to_cover", boom)
    args = ["recommend", "--index", str(index), "--cache", str(cache), "--cover", str(covers / "rock" / "rock-1.png")]
    quiet = CliRunner().invoke(main, args)
    assert quiet.exit_code == 1 and _one_line_error(quiet.stderr).startswith("error: RuntimeError: boom")
    verbose = CliRunner().invoke(main, ["-v", *args])
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr


def test_max_pixels_is_the_one_pixel_limit(tmp_path: Path) -> None:
    """A PNG header claiming 20000x20000 (400 Mpx, over Pillow's own bomb limit) and no data."""
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    (tmp_path / "huge.png").write_bytes(png + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    with pytest.raises(BadImageError, match=r"over the limit of 1,000 \(--max-pixels\)"):
        load_cover(tmp_path / "huge.png", max_pixels=1000)
    with pytest.raises(BadImageError) as above_pillows_limit:
        load_cover(tmp_path / "huge.png", max_pixels=10**9)
    assert "corrupt or truncated" in str(above_pillows_limit.value)
    assert "decompression" not in str(above_pillows_limit.value).lower()


def test_an_unreadable_sub_folder_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_cover(tmp_path / "rock" / "a.png", 1)
    make_cover(tmp_path / "secret" / "b.png", 2)
    original = os.scandir

    def scandir(path: object = ".") -> object:  # root ignores chmod 000, so the refusal is simulated
        if str(path).endswith("secret"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return original(path)

    monkeypatch.setattr(os, "scandir", scandir)
    table, skipped = read_collection(tmp_path, None)
    assert list(table["path"]) == [str(tmp_path / "rock" / "a.png")]
    assert skipped["reason"].tolist() == ["folder unreadable: Permission denied"]


def test_build_index_help_states_the_one_writer_rule_and_rebuild() -> None:
    result = CliRunner().invoke(main, ["build-index", "--help"])
    text = " ".join(result.output.split())
    assert "a second one on the same --index fails at once with exit code 1" in text and "--rebuild" in text


def test_a_huge_sparse_file_named_jpg_is_refused_as_a_query_before_it_is_read(built, tmp_path: Path) -> None:
    """Size and header are checked first: a 2 GB sparse '.jpg' is refused without 2 GB being read."""
    from recsys.images import BadImageError, read_cover_bytes

    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as handle:
        handle.truncate(2 << 30)
    refused = _cli(built, "recommend", "--cover", str(huge))
    assert refused.exit_code == 1 and "too large" in _one_line_error(refused.stderr)
    with pytest.raises(BadImageError, match="too large"):
        read_cover_bytes(huge, max_bytes=528 << 20)
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image at all" * 1000)
    with pytest.raises(BadImageError, match="not an image"):
        read_cover_bytes(garbage, sniff=True)
