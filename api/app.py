"""The endpoints: each one call of the library (recsys.answer.QueryAnswerer, recsys.recommend.Recommender).

FastAPI rather than bare Starlette because what a shop's developer needs comes with it: an OpenAPI schema and
interactive docs (/docs) to write a PHP, Node or Java client against, query parameters validated and bounded
before any work is done (``k`` from 1 to 100, ``by`` one of three words), and multipart uploads.

Safe by default. Clients name covers by their id in the index, never by a path, so no request can make the
server read a file the index does not list; answers carry a cover's id, file name, genre, manifest columns
and score, and its server path only when the operator turns ``show_paths`` on (messages of the library that
name the index folder or a cover's path are reworded too). With a token every endpoint but /healthz,
/readyz and the docs needs ``Authorization: Bearer <token>``. Uploads over ``max_upload_bytes`` get 413;
uploads the library cannot use (empty, not an image, truncated, a decompression bomb) get 400; every error
is JSON ``{"error": "why"}``. An upload stays in memory until the one library call that needs it as a file
(the words on a cover are read from a file and cached by its content), when it goes to a private temporary
folder (mode 0700) that is deleted as soon as the call returns.

Annotations are evaluated (no ``from __future__ import annotations``): FastAPI reads the parameters' types,
including dependencies declared inside :func:`create_app`, at run time.
"""

import asyncio
import hmac
import io
import json
import logging
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import Depends, FastAPI, File, HTTPException, Path as PathParam, Query, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from PIL import Image
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartParser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.generations import Generation, Generations, NotReadyError
from api.server import DEFAULT_TIMEOUT_S
from index.errors import SleeveError
from recsys.editions import as_records, without_dismissed
from recsys.errors import QueryError
from recsys.filters import parse_where
from recsys.images import IMAGE_SUFFIXES, BadImageError, load_cover
from recsys.textstore import NoTextError

log = logging.getLogger("sleeve.api")

MAX_K = 100
"""Most results one request may ask for: a page of results, never the whole collection."""
DEFAULT_MAX_UPLOAD_MB = 20
"""A cover is rarely over 5 MB; the Streamlit app allows the same."""
THUMBNAIL_PX = 256
PROBES = frozenset({"/healthz", "/readyz"})
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
"""What answers without the token: probes and the API's own description, none of the collection."""


@dataclass(frozen=True)
class ApiOptions:
    """What the operator chose when starting the server (see cli.py serve)."""

    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    show_paths: bool = False
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024
    timeout_s: float = DEFAULT_TIMEOUT_S
    workers: int = 1
    """Processes serving the port (api.server), each with this app."""


class SearchRequest(BaseModel):
    """A search by the words printed on covers (case, accents, spaces and most OCR slips aside)."""

    text: str = Field(min_length=1, max_length=500, examples=["alan jackson"])
    k: int = Field(10, ge=1, le=MAX_K)
    genre: str | None = None
    where: dict[str, str] = Field(default_factory=dict, examples=[{"artist": "Alan Jackson"}])


By = Literal["look", "words", "both"]
K = Annotated[int, Query(ge=1, le=MAX_K, description="Number of results.")]
ByParam = Annotated[
    By | None,
    Query(description="Rank by the cover's look, the words printed on it, or both fused [default: both when "
                      "the index holds text, else look]."),
]
Genre = Annotated[str | None, Query(description="Only covers of this genre.")]
Where = Annotated[
    list[str], Query(description="COLUMN=VALUE: only covers whose manifest column equals VALUE (case aside); "
                                 "repeatable.", examples=["artist=Alan Jackson"]),
]
Explain = Annotated[bool, Query(description="Add each result's relative score and the words it shares.")]
CoverId = Annotated[int, PathParam(ge=0, description="The cover's id in the index (the results' `id`).")]


def create_app(generations: Generations, options: ApiOptions = ApiOptions()) -> FastAPI:
    """The API over the index that ``generations`` follows."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        if options.workers > 1:
            # A worker takes no connection before it can answer: they go to the workers that can, so the
            # /readyz of whichever worker a probe reaches speaks for every worker that answers.
            await asyncio.to_thread(_quietly, generations.current)
        else:  # /healthz answers at once and /readyz says when queries can be made
            threading.Thread(target=_quietly, args=(generations.current,), daemon=True).start()
        yield

    app = FastAPI(
        title="sleeve",
        summary="Look-alike album covers, search by printed words and genre guesses from one index.",
        version=_version(),
        lifespan=lifespan,
    )
    # Starlette writes a multipart file over 1 MB to a temporary file; within the limit it stays in memory.
    MultiPartParser.spool_max_size = options.max_upload_bytes
    if options.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(options.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(UploadLimit, max_bytes=options.max_upload_bytes)
    app.add_middleware(RequestTimeout, seconds=options.timeout_s)  # inside the log line: a 504 is logged
    _add_logging_and_errors(app)

    def authorised(request: Request) -> None:
        if options.token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), options.token.encode()):
            raise HTTPException(401, "missing or wrong token: send Authorization: Bearer <token>",
                                headers={"WWW-Authenticate": "Bearer"})

    def generation() -> Generation:
        try:
            return generations.current()
        except NotReadyError as error:
            raise HTTPException(503, f"not ready: {_hidden(str(error), generations.folder)}") from None

    Current = Annotated[Generation, Depends(generation)]
    guarded = [Depends(authorised)]

    @app.get("/healthz", tags=["probes"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["probes"], responses={503: {"description": "No index loaded yet, or it cannot be."}})
    def readyz(current: Current) -> dict[str, Any]:
        """Readiness: an index generation is loaded and queries can be made."""
        return {"status": "ready", "generation": current.created}

    @app.get("/info", tags=["index"], dependencies=guarded)
    def info(current: Current) -> dict[str, Any]:
        """What the index holds: its encoder, number of covers, generation, genres, columns, text and
        classifier."""
        answerer = current.answerer
        index = answerer.recommender.index
        return {
            "encoder": index.info.model_key,
            "count": index.info.count,
            "generation": current.created,
            "created": index.info.created,
            "index_type": index.info.index_type,
            "has_text": answerer.recommender.has_text,
            "has_classifier": answerer.predictor is not None,
            "genres": sorted(index.metadata["genre"].dropna().astype(str).unique()),
            "columns": _user_columns(index.metadata),
            "max_k": MAX_K,
            "max_upload_bytes": options.max_upload_bytes,
        }

    @app.post("/look-alikes", tags=["look-alikes"], dependencies=guarded)
    def look_alikes_of_upload(
        current: Current, cover: Annotated[UploadFile, File(description="The query cover (JPEG, PNG, WebP...).")],
        k: K = 10, by: ByParam = None, genre: Genre = None, where: Where = [],  # noqa: B006 - FastAPI copies it
        explain: Explain = False,
    ) -> dict[str, Any]:
        """Covers like an uploaded one, with its predicted genre when the index has a classifier. An upload
        that is itself in the index is left out of its own results, as in ``sleeve recommend``."""
        name = _upload_name(cover)
        filters = _where(where)
        with _upload_file(cover) as path, _answering(current, {str(path): name}, generations.folder):
            answer = current.answerer.answer(path, k=k, genre=genre, by=by, where=filters, explain=explain)
        return _answer(current, {"upload": name}, answer, options, {str(path): name})

    @app.get("/covers/{cover_id}/look-alikes", tags=["look-alikes"], dependencies=guarded)
    def look_alikes_of_cover(
        current: Current, cover_id: CoverId, k: K = 10, by: ByParam = None, genre: Genre = None,
        where: Where = [], explain: Explain = False,  # noqa: B006 - FastAPI copies it
    ) -> dict[str, Any]:
        """Covers like one already in the index (itself left out), with its predicted genre."""
        path = _path_of(current, cover_id)
        filters = _where(where)
        names = {} if options.show_paths else {path: f"cover {cover_id}"}
        with _answering(current, names, generations.folder):
            answer = current.answerer.answer(path, k=k, genre=genre, by=by, where=filters, explain=explain)
        return _answer(current, {"id": cover_id}, answer, options, names)

    @app.post("/search", tags=["search"], dependencies=guarded)
    def search(current: Current, query: SearchRequest) -> dict[str, Any]:
        """Covers whose printed text matches ``text`` (the index must be built with --read-text)."""
        with _answering(current, {}, generations.folder):
            results = current.answerer.recommender.search_text(
                query.text, k=query.k, genre=query.genre, where=query.where
            )
        return {"generation": current.created, "query": query.text, "results": _shown(current, results, options)}

    @app.post("/genre", tags=["genre"], dependencies=guarded,
              responses={404: {"description": "The index has no genre classifier."}})
    def genre_of_upload(
        current: Current, cover: Annotated[UploadFile, File(description="The cover whose genre to guess.")],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="Genres to show.")] = 3,
    ) -> dict[str, Any]:
        """The most probable genres of an uploaded cover, from the classifier stored beside the index."""
        predictor = current.answerer.predictor
        if predictor is None:
            raise HTTPException(404, "this index has no genre classifier; train one with: "
                                     "sleeve train-classifier --index INDEX")
        name = _upload_name(cover)
        with _upload_file(cover) as path, _answering(current, {str(path): name}, generations.folder):
            genres = predictor.top_genres(path, k)
        return {"generation": current.created, "upload": name, "classifier": predictor.info.model, "genres": genres}

    @app.get("/editions", tags=["editions"], dependencies=guarded)
    def editions(current: Current) -> dict[str, Any]:
        """The index's edition groups (recsys.editions: re-scans, crops, reissues with a banner or sticker), less
        those dismissed in the app; found once per generation (seconds, more while perceptual hashes are first
        cached). Members by id and file name, each with why it was joined."""
        with _answering(current, {}, generations.folder):
            recommender = current.answerer.recommender
            groups = without_dismissed(recommender.index, recommender.editions)
        records = as_records(groups)
        for record in records:
            for member in record["members"]:
                path = str(member.pop("path"))
                member.update(id=current.ids[path], file=Path(path).name)
                if options.show_paths:
                    member["path"] = path
        return {"generation": current.created, "groups": records}

    @app.get("/covers/{cover_id}/thumbnail", tags=["covers"], dependencies=guarded,
             response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
    def thumbnail(current: Current, cover_id: CoverId) -> Response:
        """A small JPEG of an indexed cover (at most 256 pixels a side), for showing results."""
        path = _path_of(current, cover_id)
        try:
            image = load_cover(path, current.answerer.recommender.max_pixels, reduce_to=THUMBNAIL_PX)
        except BadImageError as error:
            raise HTTPException(404, f"cover {cover_id} cannot be read any more: {error}") from None
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        return Response(_jpeg(image), media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    return app


class UploadLimit:
    """413 and a JSON error for a request body over ``max_bytes``: at once when its Content-Length says so,
    else as soon as the body streamed so far passes it (FastAPI's own limit answers in plain text)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        why = f"the request is over the upload limit of {self.max_bytes:,} bytes"
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await JSONResponse({"error": why}, 413)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, why)  # raised while the endpoint reads its body: answered as JSON
            return message

        await self.app(scope, limited, send)


class RequestTimeout:
    """504 and a JSON error for a request that has not begun its answer ``seconds`` after it arrived (probes
    aside: they must answer on a busy server). A query cannot be stopped in its thread: it runs to its end in
    the background, holding its generation's lock and a thread of the pool, and its answer is dropped; the
    server goes on serving meanwhile."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self.abandoned: set[asyncio.Future[None]] = set()
        """Requests that got their 504 and still run: held here, as asyncio holds running tasks only weakly."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        started = abandoned = False

        async def send_unless_abandoned(message: Message) -> None:
            nonlocal started
            if not abandoned:
                started = True
                await send(message)

        answering = asyncio.ensure_future(self.app(scope, receive, send_unless_abandoned))
        await asyncio.wait({answering}, timeout=self.seconds)
        if answering.done() or started:  # answered, or its answer is on its way: let it end
            await answering
            return
        abandoned = True
        self.abandoned.add(answering)
        answering.add_done_callback(self.abandoned.discard)
        answering.add_done_callback(_late_failure)
        why = f"no answer within the server's limit of {self.seconds:g} s; try again later"
        await JSONResponse({"error": why}, 504)(scope, receive, send)


def _late_failure(answering: "asyncio.Future[None]") -> None:
    """Log how a request that already got its 504 failed in the background, if it did."""
    if not answering.cancelled() and answering.exception() is not None:
        log.info("a request that timed out failed afterwards: %r", answering.exception())


def _add_logging_and_errors(app: FastAPI) -> None:
    """One log line per request on stderr, and every error as ``{"error": "why"}``."""

    @app.middleware("http")
    async def log_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            client = request.client.host if request.client else "-"
            log.info('%s "%s %s" %d %.1f ms', client, request.method, request.url.path, status,
                     (time.perf_counter() - started) * 1000)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        unrouted = error.status_code == 404 and error.detail == "Not Found"  # Starlette's: no route matched
        why = f"no such endpoint: {request.method} {request.url.path} (see /docs)" if unrouted else str(error.detail)
        return JSONResponse({"error": why}, error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()]
        return JSONResponse({"error": "; ".join(problems)}, 422)


def _quietly(load: Callable[[], Any]) -> None:
    try:
        load()
    except NotReadyError:
        pass  # /readyz says why


def _version() -> str:
    from recsys import __version__

    return __version__


def _where(pairs: list[str]) -> dict[str, str]:
    try:
        return parse_where(pairs)
    except SleeveError as error:
        raise HTTPException(400, str(error).replace("--where", "where")) from None


def _path_of(current: Generation, cover_id: int) -> str:
    metadata = current.answerer.recommender.index.metadata
    rows = metadata.index[metadata["id"] == cover_id]
    if rows.empty:
        raise HTTPException(404, f"no cover with id {cover_id} in this index (ids 0 to {len(metadata) - 1})")
    return str(metadata.at[rows[0], "path"])


def _upload_name(cover: UploadFile) -> str:
    """The upload's file name without any folder a client put in it."""
    return Path(cover.filename or "upload").name or "upload"


@contextmanager
def _upload_file(cover: UploadFile) -> Iterator[Path]:
    """The upload's bytes in a file of a private temporary folder (mode 0700) for one library call."""
    suffix = Path(_upload_name(cover)).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="sleeve-upload-") as folder:
        path = Path(folder) / ("upload" + (suffix if suffix in IMAGE_SUFFIXES else ""))
        path.write_bytes(cover.file.read())
        yield path


@contextmanager
def _answering(current: Generation, names: dict[str, str], folder: Path) -> Iterator[None]:
    """Run one library call on ``current`` (its queries take turns), its errors in the client's words:
    ``names`` rewords server paths, and the index folder is "INDEX". A query that cannot be answered as asked
    is the client's (400); a damaged classifier, cache or index is the server's (503)."""
    try:
        with current.lock:
            yield
    except SleeveError as error:
        message = str(error)
        for path, name in names.items():
            message = message.replace(path, name)
        status = 400 if isinstance(error, (QueryError, BadImageError, NoTextError)) else 503
        raise HTTPException(status, _hidden(message, folder)) from None


def _hidden(message: str, folder: Path) -> str:
    """``message`` without the index folder's path."""
    for shown in {str(folder), str(folder.resolve())}:
        message = message.replace(shown, "INDEX")
    return message


def _answer(
    current: Generation, query: dict[str, Any], answer: Any, options: ApiOptions, names: dict[str, str]
) -> dict[str, Any]:
    """An :class:`recsys.answer.Answer` as JSON: the query as the client named it, its predicted genre,
    the results and any warning."""
    warnings = list(current.answerer.warnings) + list(answer.warnings)
    for path, name in names.items():
        warnings = [warning.replace(path, name) for warning in warnings]
    folder = current.answerer.recommender.index.folder
    warnings = [_hidden(warning, folder) for warning in warnings] if folder is not None else warnings
    return {
        "generation": current.created,
        "query": {**query, **(answer.prediction or {})},
        "results": _shown(current, answer.results, options),
        **({"warnings": warnings} if warnings else {}),
    }


def _shown(current: Generation, results: pd.DataFrame, options: ApiOptions) -> list[dict[str, Any]]:
    """Result rows as JSON: each cover's id and file name, its server path only with ``show_paths``."""
    paths = results["path"]
    shown = results.assign(id=[current.ids[path] for path in paths], file=[Path(path).name for path in paths])
    first = ["rank", "score", "id", "file", "genre"]
    order = first + [column for column in shown.columns if column not in first and column != "path"]
    shown = shown[order + (["path"] if options.show_paths else [])]
    return json.loads(shown.to_json(orient="records", force_ascii=False))  # NaN (a blank cell) becomes null


def _user_columns(metadata: pd.DataFrame) -> list[str]:
    from index.store import shown_name, user_columns

    return [shown_name(column) for column in user_columns(metadata)]


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
