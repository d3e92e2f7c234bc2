"""Real build-index processes: two writers on one index, SIGTERM and SIGINT in the middle of a build, and a build
killed with its decoding processes still running."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from index.store import load_index
from tests.conftest import make_cover

REPO = Path(__file__).resolve().parents[1]
BUSY = "another sleeve process is writing"


def _start(*args: str, ignore_sigint: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(REPO / "cli.py"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None,
    )


def _covers(root: Path, count: int) -> Path:
    for i in range(count):
        make_cover(root / ("rock" if i % 2 else "jazz") / f"c{i}.png", seed=500 + i)
    return root


def _build_args(covers: Path, index: Path, cache: Path, batch_size: int = 2, workers: int = 0) -> list[str]:
    return ["build-index", "--covers", str(covers), "--index", str(index), "--cache", str(cache),
            "--model", "efficientnet-lite0", "--runtime", "torch", "--workers", str(workers),
            "--batch-size", str(batch_size), "--no-progress", "--json"]


@pytest.mark.slow
def test_two_writers_on_one_index_never_destroy_it(tmp_path: Path) -> None:
    covers = _covers(tmp_path / "covers", 12)
    args = _build_args(covers, tmp_path / "index", tmp_path / "cache")
    writers = [_start(*args), _start(*args)]
    outcomes = [(w.wait(timeout=300), *w.communicate()) for w in writers]
    for code, stdout, stderr in outcomes:
        assert "Traceback" not in stderr
        assert code == 0 or (code == 1 and BUSY in stderr), stderr
    assert any(code == 0 for code, _, _ in outcomes)
    index = load_index(tmp_path / "index")
    assert index.info.count == 12 and not list((tmp_path / "index").glob(".*.tmp"))


@pytest.mark.slow
def test_sigterm_stops_a_build_at_once_and_the_next_run_resumes(tmp_path: Path) -> None:
    # Many one-cover batches, so that the build is still embedding when the signal lands: a SIGTERM that arrives
    # while Python is already shutting down (its handlers reset) would kill the process instead of stopping it.
    total = 64
    covers = _covers(tmp_path / "covers", total)
    args = _build_args(covers, tmp_path / "index", tmp_path / "cache", batch_size=1)
    build = _start(*args)
    database = tmp_path / "cache" / "embeddings.sqlite"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and build.poll() is None and _embedded(database) < 2:
        time.sleep(0.05)
    assert build.poll() is None, "the build ended before it could be interrupted"
    build.send_signal(signal.SIGTERM)
    code = build.wait(timeout=60)
    stderr = build.communicate()[1]
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr, (code, stderr)
    kept = _embedded(database)
    assert 2 <= kept < total
    resumed = _start(*args)
    assert resumed.wait(timeout=300) == 0
    summary = json.loads(resumed.communicate()[0])
    assert summary["covers"] == total and summary["embedded"] == total - kept, "finished batches were kept"


@pytest.mark.slow
def test_sigint_stops_a_build_with_decoding_workers_and_the_next_run_equals_a_clean_build(tmp_path: Path) -> None:
    # Started as a shell starts a background job (`sleeve build-index ... &` in a script): with SIGINT ignored,
    # which Python keeps unless sleeve sets its own handler; `kill -INT` then went unnoticed and the build ran on.
    total = 64
    covers = _covers(tmp_path / "covers", total)
    args = _build_args(covers, tmp_path / "index", tmp_path / "cache", batch_size=1, workers=2)
    build = _start(*args, ignore_sigint=True)
    _wait_until_embedding(build, tmp_path / "cache" / "embeddings.sqlite")
    build.send_signal(signal.SIGINT)
    code = build.wait(timeout=60)
    stderr = build.communicate()[1]
    assert code == 130 and "interrupted" in stderr and "Traceback" not in stderr, (code, stderr)
    assert _embedded(tmp_path / "cache" / "embeddings.sqlite") < total
    resumed = _start(*args)
    assert resumed.wait(timeout=300) == 0, resumed.communicate()[1]
    clean = _start(*_build_args(covers, tmp_path / "clean", tmp_path / "clean-cache", batch_size=1, workers=2))
    assert clean.wait(timeout=300) == 0, clean.communicate()[1]
    got, want = load_index(tmp_path / "index"), load_index(tmp_path / "clean")
    columns = ["id", "path", "content_hash", "genre"]
    assert got.metadata[columns].equals(want.metadata[columns]) and len(got.metadata) == total
    np.testing.assert_allclose(got.embeddings, want.embeddings, atol=1e-5)


@pytest.mark.slow
def test_decoding_workers_end_at_once_when_the_build_is_killed(tmp_path: Path) -> None:
    covers = _covers(tmp_path / "covers", 64)
    build = _start(*_build_args(covers, tmp_path / "index", tmp_path / "cache", batch_size=1, workers=2))
    _wait_until_embedding(build, tmp_path / "cache" / "embeddings.sqlite")
    workers = psutil.Process(build.pid).children(recursive=True)
    assert workers, "the build started no decoding process"
    build.kill()
    build.wait(timeout=30)
    deadline = time.monotonic() + 3  # PR_SET_PDEATHSIG: the kernel kills them with their parent
    while (alive := [p for p in workers if _running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for process in alive:
        process.kill()
    assert not alive, f"{len(alive)} decoding processes outlived the killed build"


def _running(process: psutil.Process) -> bool:
    """Still running: a zombie has ended, whether or not its new parent has reaped it yet."""
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_until_embedding(build: subprocess.Popen, database: Path) -> None:
    """Return once ``build`` has committed two vectors (its decoding processes are running), still running."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and build.poll() is None and _embedded(database) < 2:
        time.sleep(0.05)
    assert build.poll() is None, "the build ended before it could be interrupted"


def _embedded(database: Path) -> int:
    """Vectors the build has committed so far (0 until it has created the cache and its table)."""
    if not database.is_file():
        return 0
    db = sqlite3.connect(database, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        db.close()


def test_train_classifier_takes_the_writer_lock(tmp_path: Path) -> None:
    """A classifier is never trained on (or stored into) an index another process is rewriting."""
    import numpy as np
    import pandas as pd

    from recsys.memory_index import index_vectors
    from index.store import IndexBusyError, writer_lock
    from recsys.classify.train import train_classifier

    vectors = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
    index_vectors(vectors, pd.DataFrame({"genre": ["a", "b"] * 6})).save(tmp_path / "index")
    with writer_lock(tmp_path / "index"), pytest.raises(IndexBusyError, match="another sleeve process"):
        train_classifier(tmp_path / "index", classifier="majority")
    assert not (tmp_path / "index" / "classifier").exists()
