"""Start the web app the way a user would: ``streamlit run webapp/app.py``, in a child process.

Kept free of Streamlit imports so that ``cli.py app`` starts quickly and its --help works anywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

APP_SCRIPT = Path(__file__).with_name("app.py")
MAX_UPLOAD_MB = 20
"""Streamlit refuses bigger uploads itself; a cover is rarely over 5 MB."""


def streamlit_command(index_dir: str | Path, host: str, port: int) -> list[str]:
    """The command line that serves the app, the same one README gives for running it by hand."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",  # print the URL instead of opening a browser
        "--server.maxUploadSize", str(MAX_UPLOAD_MB),
        "--browser.gatherUsageStats", "false",  # sleeve sends nothing anywhere
        "--client.toolbarMode", "viewer",  # no "Deploy" button: this is a tool, not a Streamlit project
        "--",
        "--index", str(Path(index_dir).resolve()),
    ]


def run_app(index_dir: str | Path, host: str = "127.0.0.1", port: int = 8501) -> int:
    """Serve the app until Ctrl-C or SIGTERM, which are passed on to the server, then wait for it to stop;
    returns 0 after such a stop, else Streamlit's exit code.

    The repository root goes on the child's PYTHONPATH so that ``webapp`` imports from this checkout.
    """
    root = str(APP_SCRIPT.parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    print(f"sleeve app on http://{host}:{port} (index {index_dir}); Ctrl-C stops it", flush=True)
    process = subprocess.Popen(streamlit_command(index_dir, host, port), env=env)
    stopped: list[int] = []

    def forward(signum: int, frame: object) -> None:
        stopped.append(signum)
        process.send_signal(signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if stopped else code
