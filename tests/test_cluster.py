"""build-index --cluster against a real Dask scheduler and workers, started as a user starts them.

The vectors, ids, metadata and skipped files of a cluster build equal those of the single-process build, with
every file hashed on the workers, also when a worker is killed in the middle of the build; a driver killed
mid-build leaves finished shards in the cache and a re-run embeds only the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from index.store import load_index
from recsys.build import build_index
from recsys.settings import Settings
from tests.bad_inputs import files_to_fingerprint

distributed = pytest.importorskip("distributed", reason="Dask is the 'cluster' extra: pip install -e '.[cluster]'")

REPO = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).parent / "dask")
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
MODEL = ["--model", "efficientnet-lite0"]

pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.fixture(scope="module")
def covers(tmp_path_factory: pytest.TempPathFactory, shared_subset: Path) -> Path:
    """The 60 real covers plus two files no build can read."""
    folder = tmp_path_factory.mktemp("cluster-covers") / "covers"
    shutil.copytree(shared_subset, folder)
    genre = sorted(p for p in folder.iterdir() if p.is_dir())[0]
    (genre / "not-an-image.jpg").write_bytes(b"this is text, not a JPEG")
    good = next(genre.glob("*.jpg")).read_bytes()
    (genre / "truncated.jpg").write_bytes(good[:200])
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, covers: Path) -> tuple[Path, Path]:
    """(index, cache) of the single-process build; the cache's ONNX export is reused by the other builds."""
    folder = tmp_path_factory.mktemp("reference")
    settings = Settings(cache_dir=folder / "cache", progress=False)
    build_index(folder / "index", covers=covers, encoder="efficientnet-lite0", settings=settings)
    return folder / "index", folder / "cache"


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; (address, worker processes)."""
    folder = tmp_path_factory.mktemp("dask")
    info = folder / "scheduler.json"
    common = {"env": ENV, "cwd": folder, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [
        subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", info],
            **common,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not info.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [DASK, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"], **common
                )
            )
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, processes[1:]
    finally:
        for process in reversed(processes):  # workers first, then the scheduler
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def fresh_cache(folder: Path, reference_cache: Path) -> Path:
    """An empty embedding cache that already holds the ONNX export (exporting costs seconds, not the point)."""
    shutil.copytree(reference_cache / "onnx", folder / "onnx")
    return folder


def build_command(covers: Path, index: Path, cache: Path, cluster: str, shard_size: int) -> list[str]:
    return [
        sys.executable, str(REPO / "cli.py"), "build-index", "--covers", str(covers), "--index", str(index),
        "--cache", str(cache), *MODEL, "--cluster", cluster, "--shard-size", str(shard_size), "--no-progress", "--json",
    ]  # fmt: skip


def run_build(*args: object) -> dict:
    done = subprocess.run(build_command(*args), env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_same_index(built: Path, reference: Path) -> None:
    """Same ids, metadata and skipped files; every vector at cosine >= 1 - 1e-6 from the reference's."""
    got, expected = load_index(built), load_index(reference)
    columns = ["id", "path", "content_hash", "genre"]
    pd.testing.assert_frame_equal(got.metadata[columns], expected.metadata[columns])
    cosine = np.sum(np.asarray(got.embeddings) * np.asarray(expected.embeddings), axis=1)
    assert cosine.min() >= 1 - 1e-6
    skipped = [pd.read_csv(folder / "skipped.csv") for folder in (built, reference)]
    pd.testing.assert_frame_equal(*skipped)
    assert len(skipped[0]) == 2


def cached_vectors(cache: Path) -> int:
    try:
        with sqlite3.connect(f"file:{cache / 'embeddings.sqlite'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def embedding_on(client: distributed.Client, worker: str) -> bool:
    """Whether ``worker`` holds a shard to embed now (its hashing shards take milliseconds, too short to aim at)."""
    return any("encoder:" in str(key) for key in client.processing(workers=[worker]).get(worker, ()))


def test_a_plain_build_never_imports_dask() -> None:
    code = ("import sys, cli, recsys.build; "
            "sys.exit(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], env=ENV, cwd=REPO, timeout=120).returncode == 0


# The tests without the scheduler fixture come first, so that no idle Dask cluster runs beside them.
def test_local_cluster_of_two_workers(tmp_path, covers, reference) -> None:
    cache = fresh_cache(tmp_path / "cache", reference[1])
    summary = run_build(covers, tmp_path / "index", cache, "local:2", 8)
    assert summary["embedded"] == 60
    assert_same_index(tmp_path / "index", reference[0])


@pytest.mark.parametrize("reader", ["exact", "fast"])
def test_local_cluster_reads_cover_text_as_one_process_does(tmp_path, covers, reference, reader) -> None:
    """--read-text with --cluster: the OCR runs on the workers, with the reader asked for (--ocr), and the index
    holds the same texts as one process makes."""
    from recsys.ocr import reader_key
    from recsys.ocr_readers import OCR_READERS

    few = tmp_path / "few" / "rock"
    few.mkdir(parents=True)
    for path in sorted(p for p in covers.rglob("*.jpg") if p.stat().st_size > 1000)[:6]:
        shutil.copy(path, few / path.name)
    single = Settings(cache_dir=fresh_cache(tmp_path / "single-cache", reference[1]), progress=False)
    build_index(tmp_path / "single", covers=few.parent, encoder="efficientnet-lite0", read_text=True, ocr=reader,
                settings=single)
    cache = fresh_cache(tmp_path / "cluster-cache", reference[1])
    command = build_command(few.parent, tmp_path / "cluster", cache, "local:1", 3)
    done = subprocess.run([*command, "--ocr", reader], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    texts = [load_index(tmp_path / name).texts.sort_values("content_hash").reset_index(drop=True)
             for name in ("single", "cluster")]
    pd.testing.assert_frame_equal(*texts)
    assert set(texts[0]["reader"]) == {reader_key(settings=OCR_READERS[reader].load())}
    assert (texts[0]["text"] != "").any(), "these covers print something"


def test_unreachable_scheduler_is_one_line(tmp_path, covers) -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), "build-index", "--covers", str(covers), "--index", str(tmp_path / "i"),
         "--cluster", f"tcp://127.0.0.1:{port}"],
        env=ENV, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}")
    assert not (tmp_path / "i").exists()


def test_cluster_build_equals_single_process(tmp_path, covers, reference, scheduler) -> None:
    cache = fresh_cache(tmp_path / "cache", reference[1])
    summary = run_build(covers, tmp_path / "index", cache, scheduler[0], 8)
    assert summary["embedded"] == 60 and summary["skipped"] == 2
    assert_same_index(tmp_path / "index", reference[0])


def test_workers_fingerprint_as_one_process_does(tmp_path, scheduler) -> None:
    """Real workers hash every kind of path as recsys.ingest.fingerprint does, frames equal column for column and
    in input order; a known unchanged file keeps its known (wrong) hash, so the workers did not read it again."""
    from recsys.dask_cluster import open_distributor
    from recsys.distribute import fingerprint_distributed
    from recsys.ingest import fingerprint

    paths, known, reasons = files_to_fingerprint(tmp_path / "files")
    with open_distributor(scheduler[0]) as distributor:
        distributed = fingerprint_distributed(paths, distributor, known, files_per_shard=2, progress=False)
    for got, expected in zip(distributed, fingerprint(paths, known=known), strict=True):
        pd.testing.assert_frame_equal(got, expected)
    assert "remembered, not read again" in set(distributed[0]["content_hash"])
    assert sorted(distributed[1]["reason"]) == sorted(reasons.values())


def test_cluster_build_fingerprints_nothing_on_the_driver(tmp_path, covers, reference, scheduler, monkeypatch) -> None:
    """The driver's per-file rule fails here, so every file of this build is stat'ed and hashed on the workers;
    the index holds the same hashes, ids and skipped files as the single-process build."""
    import recsys.ingest
    from recsys.dask_cluster import open_distributor

    def on_the_driver(path: str, old: object) -> None:
        raise AssertionError(f"the driver fingerprinted {path}")

    monkeypatch.setattr(recsys.ingest, "fingerprint_file", on_the_driver)
    shutil.copytree(reference[1], tmp_path / "cache")  # every vector cached: the hashing is what is tested here
    settings = Settings(cache_dir=tmp_path / "cache", progress=False)
    with open_distributor(scheduler[0]) as distributor:
        summary = build_index(tmp_path / "index", covers=covers, encoder="efficientnet-lite0", settings=settings,
                              distributor=distributor, files_per_shard=8)  # fmt: skip
    assert summary.embedded == 0 and summary.skipped == 2
    assert_same_index(tmp_path / "index", reference[0])


def test_worker_killed_mid_build_changes_nothing(tmp_path, covers, reference, scheduler) -> None:
    address, _ = scheduler
    cache = fresh_cache(tmp_path / "cache", reference[1])
    with distributed.Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=120)
        victim = sorted(client.scheduler_info(n_workers=-1)["workers"])[0]
        victim_pid = client.run(os.getpid, workers=[victim])[victim]
        build = subprocess.Popen(build_command(covers, tmp_path / "index", cache, address, 2), env=ENV,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 240
            while not (busy := embedding_on(client, victim)) and time.monotonic() < deadline:
                assert build.poll() is None, "the build ended before the worker had a shard to embed"
                time.sleep(0.01)
            assert busy, "the worker never got a shard to embed"
            os.kill(victim_pid, signal.SIGKILL)  # its nanny starts a fresh worker
            stdout, stderr = build.communicate(timeout=300)
        finally:
            if build.poll() is None:
                build.kill()
                build.wait()
        assert build.returncode == 0, stderr
        assert victim not in client.scheduler_info(n_workers=-1)["workers"]
    assert json.loads(stdout)["embedded"] == 60
    assert_same_index(tmp_path / "index", reference[0])


def test_driver_killed_mid_build_resumes(tmp_path, covers, reference, scheduler) -> None:
    address, _ = scheduler
    cache = fresh_cache(tmp_path / "cache", reference[1])
    build = subprocess.Popen(build_command(covers, tmp_path / "index", cache, address, 2), env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while cached_vectors(cache) < 2 and build.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        build.kill()
        build.wait()
    kept = cached_vectors(cache)
    assert 0 < kept < 60, "the driver was not killed in the middle of the build"

    summary = run_build(covers, tmp_path / "index", cache, address, 8)
    assert summary["embedded"] == 60 - kept
    assert_same_index(tmp_path / "index", reference[0])
