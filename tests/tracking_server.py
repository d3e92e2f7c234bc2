"""A throwaway PostgreSQL cluster and a real `mlflow server` on it, started as a user would start them.

PostgreSQL comes from Debian's package (scripts/setup.sh installs it); the cluster is created with initdb as
a non-root user in a temporary folder, listens on a free loopback port, and is removed afterwards. The full
MLflow server lives in its own environment (.venv-tracking, made by scripts/setup.sh): its pins differ from
sleeve's (it needs pyarrow<26), as a team's tracking server would run apart from its clients.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVER_ENV = REPO / ".venv-tracking"


def requirement(what: str, found: bool, how: str) -> None:
    """Skip with the reason on a developer's machine; fail in CI, which installs everything."""
    if found:
        return
    message = f"needs {what}; {how}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (scripts/setup.sh installs it in CI)")
    pytest.skip(message)


def postgres_bin() -> Path | None:
    """The newest Debian PostgreSQL server binaries folder, if installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


def mlflow_server_command() -> Path:
    return Path(os.environ.get("SLEEVE_MLFLOW_SERVER", SERVER_ENV / "bin" / "mlflow"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cluster_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as Debian's postgres user (or nobody)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise RuntimeError("running as root and no postgres or nobody user to run PostgreSQL as")


def _run_as(user: str | None, *argv: str | Path) -> None:
    prefix = ["runuser", "-u", user, "--"] if user else []
    subprocess.run([*prefix, *map(str, argv)], check=True, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def postgres_cluster(bin_dir: Path) -> Iterator[str]:
    """Yield the SQLAlchemy URI of database ``mlflow`` on a fresh cluster; stop and delete it afterwards."""
    user = _cluster_user()
    folder = Path(tempfile.mkdtemp(prefix="sleeve-postgres-"))
    if user:
        shutil.chown(folder, user)
    data, port = folder / "data", free_port()
    try:
        _run_as(user, bin_dir / "initdb", "-D", data, "-U", "sleeve", "--auth=trust", "-E", "UTF8", "--no-locale")
        _run_as(user, bin_dir / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "-t", "120",
                "-o", f"-h 127.0.0.1 -p {port} -k {folder}", "start")
        try:
            _run_as(user, bin_dir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "sleeve", "mlflow")
            yield f"postgresql+psycopg2://sleeve@127.0.0.1:{port}/mlflow"
        finally:
            _run_as(user, bin_dir / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(command: Path, backend_store_uri: str) -> Iterator[str]:
    """Yield the URL of `mlflow server` on ``backend_store_uri`` once /health answers; stop it afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="sleeve-mlflow-server-"))
    port = free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [command, "server", "--backend-store-uri", backend_store_uri, "--artifacts-destination",
         folder / "artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(url, process, folder / "server.log")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the server and its uvicorn worker
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_health(url: str, process: subprocess.Popen, log: Path, limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        time.sleep(0.5)
    raise RuntimeError(f"mlflow server did not answer {url}/health in {limit:.0f} s:\n{log.read_text()[-3000:]}")
