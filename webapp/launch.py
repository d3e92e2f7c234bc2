"""Start the web app the way a user would: ``streamlit run webapp/app.py``, in a child process.

Kept free of Streamlit imports so that ``cli.py app`` starts quickly and its --help works anywhere.
"""

from __future__ import annotations

import os
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
    """Serve the app until Ctrl-C; returns Streamlit's exit code (0 after Ctrl-C).

    The repository root goes on the child's PYTHONPATH so that ``webapp`` imports from this checkout.
    """
    root = str(APP_SCRIPT.parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    print(f"sleeve app on http://{host}:{port} (index {index_dir}); Ctrl-C stops it", flush=True)
    process = subprocess.Popen(streamlit_command(index_dir, host, port), env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        return 0
