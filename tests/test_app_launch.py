"""``python cli.py app`` as a process: a signal to it stops the Streamlit server it started, never orphans it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_app_command_stops_its_server(tmp_path: Path, signum: int) -> None:
    port = free_port()
    log = tmp_path / "app.log"
    with open(log, "w") as output:
        # Its own session, so that the clean-up below reaches an orphaned server too; the signal goes to the CLI only.
        app = subprocess.Popen(
            [sys.executable, "cli.py", "app", "--index", str(tmp_path / "index"), "--port", str(port)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not answers(port) and time.monotonic() < deadline and app.poll() is None:
            time.sleep(0.25)
        assert answers(port), f"the app never answered: {log.read_text()[-2000:]}"
        app.send_signal(signum)
        assert app.wait(timeout=30) == 0, log.read_text()[-2000:]
        assert not answers(port), "the server still serves after the app command ended"
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server would: TIME_WAIT is no owner
            probe.bind(("127.0.0.1", port))
            probe.listen()  # no process listens on the port any more
        with pytest.raises(ProcessLookupError):
            os.killpg(app.pid, 0)  # and none of the app's processes is left
    finally:
        try:
            os.killpg(app.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
