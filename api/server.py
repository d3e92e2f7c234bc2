"""Run the API on uvicorn: ``sleeve serve --index DIR``.

Each worker process has one event loop; its queries run in its thread pool and take turns on its loaded model
(api.generations), so one worker keeps about one core busy with queries. ``workers`` starts that many processes
on one port (uvicorn's supervisor shares the listening socket; the kernel hands each new connection to one of
them): each loads its own model and FAISS index and follows generation switches by itself, while the index's
embeddings are memory-mapped and shared. Measured on the 4,450 shared covers: a worker takes about 220 MB, and
with several the supervisor about 80 MB more once; at concurrency 8, 2 workers answered 1.3 to 1.5 times the
queries of 1 on a 2-core machine loaded by other jobs (docs/serve.md, which also says how to scale past one
machine).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: with several workers the supervisor that starts them needs neither
    from fastapi import FastAPI

    from recsys.settings import Settings

TOKEN_ENV = "SLEEVE_API_TOKEN"
"""The bearer token every query must carry, from the environment so that it is not on a command line."""
DEFAULT_TIMEOUT_S = 30.0
"""Longest a request may take (a query by upload with text takes well under a second on 2 cores, queued ones
longer); past it the client gets 504 rather than waiting on a server that is overloaded or stuck."""
OPTIONS_ENV = "SLEEVE_SERVE_OPTIONS"
"""How :func:`serve` hands its options to the worker processes, which uvicorn starts from an import string."""
HEALTHCHECK_S = 30
"""How long uvicorn's supervisor waits for a busy worker's answer before it kills and replaces it (uvicorn's
5 s default is short on a loaded machine while a worker loads a generation)."""

log = logging.getLogger("sleeve.api")
_HANDLER = logging.StreamHandler(sys.stderr)
_HANDLER.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(message)s"))


def serve(
    index_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: Settings | None = None,
    cors_origins: tuple[str, ...] = (),
    show_paths: bool = False,
    max_upload_mb: int = 20,
    workers: int = 1,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> None:
    """Serve the index in ``index_dir`` with ``workers`` processes until Ctrl-C or SIGTERM (which stop them
    all); an index that is missing or unreadable is reported before the server starts
    (:class:`index.errors.SleeveError`). A request not answered within ``timeout`` seconds gets 504.

    The options reach the workers through ``$SLEEVE_SERVE_OPTIONS``, which this sets in this process's
    environment."""
    import uvicorn

    from index.store import read_info
    from recsys.settings import Settings

    folder = Path(index_dir).resolve()
    read_info(folder)  # no index at all: say so now, not at the first request
    settings = settings or Settings(progress=False)
    os.environ[OPTIONS_ENV] = json.dumps({
        "index": str(folder),
        "settings": {**dataclasses.asdict(settings), "cache_dir": str(settings.cache)},
        "cors_origins": list(cors_origins),
        "show_paths": show_paths,
        "max_upload_bytes": max_upload_mb * 1024 * 1024,
        "timeout_s": timeout,
        "workers": workers,
    })
    _log_to_stderr()
    token = "required" if os.environ.get(TOKEN_ENV) else f"off (set {TOKEN_ENV} to require one)"
    threads = f"{settings.threads} thread{'' if settings.threads == 1 else 's'}" if settings.threads else "all cores"
    log.info("sleeve API on http://%s:%d (docs /docs); index %s; %d worker%s, %s a query; timeout %g s; token %s; "
             "Ctrl-C stops it", host, port, folder, workers, "" if workers == 1 else "s", threads, timeout, token)
    uvicorn.run("api.server:app_from_environment", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="info", server_header=False, timeout_worker_healthcheck=HEALTHCHECK_S,
                http="api.nodelay:NoDelayHTTPProtocol")


def app_from_environment() -> FastAPI:
    """The app of one worker, from the options :func:`serve` put in ``$SLEEVE_SERVE_OPTIONS`` and the token in
    ``$SLEEVE_API_TOKEN`` (uvicorn calls this in each worker process)."""
    from api.app import ApiOptions, create_app
    from api.generations import Generations
    from recsys.answer import QueryAnswerer
    from recsys.settings import Settings

    chosen: dict[str, Any] = json.loads(os.environ[OPTIONS_ENV])
    settings = Settings(**{**chosen["settings"], "cache_dir": Path(chosen["settings"]["cache_dir"])})
    options = ApiOptions(os.environ.get(TOKEN_ENV) or None, tuple(chosen["cors_origins"]), chosen["show_paths"],
                         chosen["max_upload_bytes"], chosen["timeout_s"], chosen["workers"])
    _log_to_stderr()
    return create_app(Generations(chosen["index"], lambda path: QueryAnswerer.open(path, settings)), options)


def _log_to_stderr() -> None:
    """The API's own lines (one per request, generation switches), each with the process id of the worker that
    wrote it, on stderr, whatever -v says."""
    for name in ("sleeve.api", "api.generations"):
        logger = logging.getLogger(name)
        if _HANDLER not in logger.handlers:
            logger.addHandler(_HANDLER)
        logger.setLevel(logging.INFO)
        logger.propagate = False
