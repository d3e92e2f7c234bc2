"""Run the API on uvicorn: ``sleeve serve --index DIR``.

One process with one event loop; queries run in its thread pool and take turns on the loaded model
(api.generations), so one server keeps one core busy with queries. More throughput comes from more servers
on the same index (it is memory-mapped and read-only) behind a load balancer: docs/serve.md. Uvicorn's own
``--workers`` is not offered yet.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from api.app import ApiOptions, create_app
from api.generations import Generations
from index.store import read_info
from recsys.answer import QueryAnswerer
from recsys.settings import Settings

TOKEN_ENV = "SLEEVE_API_TOKEN"
"""The bearer token every query must carry, from the environment so that it is not on a command line."""


def serve(
    index_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: Settings | None = None,
    cors_origins: tuple[str, ...] = (),
    show_paths: bool = False,
    max_upload_mb: int = 20,
) -> None:
    """Serve the index in ``index_dir`` until Ctrl-C; an index that is missing or unreadable is reported
    before the server starts (:class:`index.errors.SleeveError`)."""
    import uvicorn

    folder = Path(index_dir).resolve()
    read_info(folder)  # no index at all: say so now, not at the first request
    settings = settings or Settings(progress=False)
    options = ApiOptions(os.environ.get(TOKEN_ENV) or None, cors_origins, show_paths, max_upload_mb * 1024 * 1024)
    app = create_app(Generations(folder, lambda path: QueryAnswerer.open(path, settings)), options)
    _log_to_stderr()
    logging.getLogger("sleeve.api").info(
        "sleeve API on http://%s:%d (docs /docs); index %s; token %s; Ctrl-C stops it",
        host, port, folder, "required" if options.token else f"off (set {TOKEN_ENV} to require one)",
    )
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info", server_header=False)


def _log_to_stderr() -> None:
    """The API's own lines (one per request, generation switches) on stderr, whatever -v says."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for name in ("sleeve.api", "api.generations"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
