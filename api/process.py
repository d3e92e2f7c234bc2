"""A ``python cli.py serve`` in a subprocess on a free 127.0.0.1 port, and how to call it: what the tests and
the benches (bench/serve.py, bench/serve_memory.py) run against, so that both measure the server a user starts.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from api.server import TOKEN_ENV

REPO = Path(__file__).resolve().parents[1]


class ServerStartError(RuntimeError):
    """The server stopped, or did not get ready in time; the message ends with its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """``cli.py serve --index INDEX --cache CACHE *options`` on a free port, its output in ``log``, ready once its
    /readyz answers 200. With ``token`` it requires that bearer token (and :meth:`call` sends it); without,
    none, whatever this process's environment says."""

    def __init__(self, index: Path, cache: Path, log: Path, *options: str, token: str | None = None,
                 ready_within: float = 300) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.log = log
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop(TOKEN_ENV, None)
        if token:
            env[TOKEN_ENV] = token
        command = [sys.executable, str(REPO / "cli.py"), "serve", "--index", str(index), "--port", str(self.port),
                   "--cache", str(cache), *options]
        with log.open("wb") as out:
            self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.process.pid)
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(f"the server stopped ({self.process.returncode}): {self._log_tail()}")
            try:
                if self.call("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise ServerStartError(f"the server was not ready in {ready_within:g} s: {self._log_tail()}")

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
        token: str | None = "default",
    ) -> tuple[int, Any]:
        """(status, the JSON answer or the bytes of another) of one request on a new connection, with the
        server's token unless ``token`` names another (None: none)."""
        headers = dict(headers or {})
        token = self.token if token == "default" else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            try:
                connection.request(method, path, body, headers)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (413) before the whole body was sent: read its answer
            response = connection.getresponse()
            data, kind = response.read(), response.getheader("content-type", "")
        finally:
            connection.close()
        return response.status, json.loads(data) if kind.startswith("application/json") else data

    def processes(self) -> list[psutil.Process]:
        """The server and the processes it started (its workers)."""
        return [self.ps, *self.ps.children(recursive=True)]

    def rss_mb(self) -> float:
        """Resident memory of the server and its workers, summed: pages they share count once per process."""
        return sum(p.memory_info().rss for p in self.processes()) / 2**20

    def cpu_seconds(self) -> float:
        """CPU seconds of the server and its workers so far."""
        return sum(sum(p.cpu_times()[:2]) for p in self.processes())

    def stop(self) -> None:
        """SIGTERM, which stops every worker; SIGKILL if it has not ended within 20 s."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]
