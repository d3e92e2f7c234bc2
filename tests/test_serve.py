"""sleeve serve: a real uvicorn server in a subprocess on a free 127.0.0.1 port, called over HTTP with urllib.

Each endpoint answers as the library does on the same index; each hostile request gets its 4xx and a JSON
error and the server goes on answering; a rebuild while queries run fails none of them.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
from PIL import Image

from api.process import ServerProcess
from recsys import Settings, build_index, train_classifier
from recsys.answer import QueryAnswerer
from tests.conftest import make_cover
from tests.editions_helpers import EditedIndex, edited_index  # noqa: F401 - a fixture

REPO = Path(__file__).resolve().parents[1]
ARTIST_COVERS = REPO.parent / "shared" / "artist-covers"
ARTISTS = {"Sepultura": "metal", "Peter Tosh": "reggae", "Sonny Rollins": "jazz"}
TOKEN = "s3cret-token"
START_TIMEOUT = 180


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(index, cache, manifest) of 18 real covers of three artists whose names are printed on most of them,
    with their text and a linear genre classifier."""
    if not (ARTIST_COVERS / "MANIFEST.csv").is_file():
        pytest.skip(f"real artist covers not found at {ARTIST_COVERS} (the ../shared folder beside the repo)")
    table = pd.read_csv(ARTIST_COVERS / "MANIFEST.csv")
    table = table[table["artist"].isin(list(ARTISTS))].sort_values("path").groupby("artist").head(6)
    table = table.assign(path=[str(ARTIST_COVERS / p) for p in table["path"]], genre=table["artist"].map(ARTISTS))
    root = tmp_path_factory.mktemp("serve")
    table[["path", "genre", "artist", "album"]].to_csv(root / "manifest.csv", index=False)
    settings = Settings(cache_dir=root / "cache", progress=False)
    build_index(root / "index", manifest=root / "manifest.csv", encoder="efficientnet-lite0", workers=0,
                settings=settings, read_text=True)
    train_classifier(root / "index", classifier="linear", settings=settings)
    return root / "index", root / "cache", root / "manifest.csv"


@pytest.fixture(scope="module")
def answerer(built: tuple[Path, Path, Path]) -> QueryAnswerer:
    index, cache, _ = built
    return QueryAnswerer.open(index, Settings(cache_dir=cache, progress=False))


class Server(ServerProcess):
    """The server every test runs against (api.process), with a token of the test's choosing (None: none)."""

    def __init__(self, index: Path, cache: Path, log: Path, token: str | None, *options: str) -> None:
        super().__init__(index, cache, log, *options, token=token, ready_within=START_TIMEOUT)

    def upload(self, path: str, data: bytes, name: str = "cover.jpg", **kwargs: Any) -> tuple[int, Any]:
        body, kind = multipart(name, data)
        return self.call("POST", path, body, {"Content-Type": kind}, **kwargs)


def multipart(name: str, data: bytes, field: str = "cover") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def server(built: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    index, cache, _ = built
    running = Server(index, cache, tmp_path_factory.mktemp("log") / "server.log", TOKEN, "--max-upload-mb", "1")
    yield running
    running.stop()


def cover_bytes(path: str | Path, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


def ids_of(answer: QueryAnswerer, results: pd.DataFrame) -> list[int]:
    metadata = answer.recommender.index.metadata.set_index("path")
    return [int(metadata.at[path, "id"]) for path in results["path"]]


# -- every endpoint answers as the library does ----------------------------------------------------------------


def test_probes_and_info(server: Server, answerer: QueryAnswerer) -> None:
    assert server.call("GET", "/healthz", token=None) == (200, {"status": "ok"})
    status, ready = server.call("GET", "/readyz", token=None)
    created = answerer.recommender.index.info.created
    assert status == 200 and ready == {"status": "ready", "generation": created}
    status, info = server.call("GET", "/info")
    assert status == 200
    assert info["count"] == 18 and info["encoder"] == answerer.recommender.index.info.model_key
    assert info["generation"] == created and info["has_text"] and info["has_classifier"]
    assert info["genres"] == ["jazz", "metal", "reggae"] and info["columns"] == ["artist", "album"]
    status, schema = server.call("GET", "/openapi.json", token=None)
    assert status == 200 and "/covers/{cover_id}/look-alikes" in schema["paths"]


@pytest.mark.parametrize("by", ["look", "words", "both"])
def test_look_alikes_of_an_indexed_cover_are_the_librarys(server: Server, answerer: QueryAnswerer, by: str) -> None:
    metadata = answerer.recommender.index.metadata
    row = metadata.iloc[3]
    status, answer = server.call("GET", f"/covers/{int(row['id'])}/look-alikes?k=5&by={by}")
    expected = answerer.answer(row["path"], k=5, by=by)
    assert status == 200, answer
    assert [r["id"] for r in answer["results"]] == ids_of(answerer, expected.results)
    assert [r["score"] for r in answer["results"]] == pytest.approx(list(expected.results["score"]), abs=1e-4)
    assert answer["query"]["id"] == int(row["id"])
    assert answer["query"]["predicted_genre"] == expected.prediction["predicted_genre"]
    first = answer["results"][0]
    assert first["file"] == Path(expected.results["path"][0]).name and "path" not in first
    assert {"artist", "album", "genre", "match"} <= set(first)
    assert str(ARTIST_COVERS) not in json.dumps(answer)


def test_filters_reach_the_library(server: Server, answerer: QueryAnswerer) -> None:
    status, answer = server.call("GET", "/covers/0/look-alikes?k=10&by=look&where=artist%3DPeter%20Tosh")
    assert status == 200 and {r["artist"] for r in answer["results"]} == {"Peter Tosh"}
    status, answer = server.call("GET", "/covers/0/look-alikes?k=10&genre=jazz")
    assert status == 200 and {r["genre"] for r in answer["results"]} == {"jazz"}
    status, answer = server.call("GET", "/covers/0/look-alikes?genre=polka")
    assert status == 400 and "genres: jazz, metal, reggae" in answer["error"]
    status, answer = server.call("GET", "/covers/0/look-alikes?where=label%3DEMI")
    assert status == 400 and "no column 'label'" in answer["error"]


def test_look_alikes_and_genre_of_an_upload(server: Server, answerer: QueryAnswerer, tmp_path: Path) -> None:
    original = answerer.recommender.index.metadata.iloc[7]["path"]
    query = tmp_path / "query.jpg"
    Image.open(original).convert("RGB").resize((200, 200)).save(query, quality=80)
    status, answer = server.upload("/look-alikes?k=4&by=look", query.read_bytes(), name="my scan.jpg")
    expected = answerer.answer(query, k=4, by="look")
    assert status == 200, answer
    assert answer["query"]["upload"] == "my scan.jpg"
    assert [r["id"] for r in answer["results"]] == ids_of(answerer, expected.results)
    assert answer["results"][0]["file"] == Path(original).name
    status, genre = server.upload("/genre?k=2", query.read_bytes())
    assert status == 200 and genre["genres"] == answerer.predictor.top_genres(query, 2)


def test_search_by_printed_words(server: Server, answerer: QueryAnswerer) -> None:
    status, answer = server.call("POST", "/search", json.dumps({"text": "sepultura", "k": 5}).encode(),
                                 {"Content-Type": "application/json"})
    expected = answerer.recommender.search_text("sepultura", k=5)
    assert status == 200 and len(answer["results"]) == len(expected) > 0
    assert [r["id"] for r in answer["results"]] == ids_of(answerer, expected)
    assert [r["text"] for r in answer["results"]] == list(expected["text"])


def test_edition_groups_are_the_librarys_by_id_without_paths(
    edited_index: EditedIndex, tmp_path: Path  # noqa: F811 - a fixture
) -> None:
    from index.store import load_index
    from recsys.editions import editions_of

    expected = editions_of(edited_index.folder, cache_dir=edited_index.cache)
    family = {str(edited_index.original), *map(str, edited_index.copies)}
    assert family <= set(expected["path"])  # the fixture's cover and its 3 edited copies are one group
    ids = load_index(edited_index.folder).metadata.set_index("path")["id"]
    running = Server(edited_index.folder, edited_index.cache, tmp_path / "server.log", None)
    try:
        status, answer = running.call("GET", "/editions")
    finally:
        running.stop()
    members = [member for group in answer["groups"] for member in group["members"]]
    assert status == 200 and [member["id"] for member in members] == [int(ids[path]) for path in expected["path"]]
    assert [member["reason"] for member in members] == list(expected["reason"])
    assert all("path" not in member and member["file"] for member in members)


def test_thumbnail_of_an_indexed_cover(server: Server) -> None:
    status, data = server.call("GET", "/covers/2/thumbnail")
    assert status == 200 and isinstance(data, bytes)
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and max(image.size) <= 256


def test_one_log_line_per_request(server: Server) -> None:
    server.call("GET", "/covers/5/thumbnail")
    time.sleep(0.2)
    lines = [line for line in server.log.read_text().splitlines() if '"GET /covers/5/thumbnail"' in line]
    assert len(lines) == 1 and " 200 " in lines[0]


# -- hostile requests ------------------------------------------------------------------------------------------


def bomb() -> bytes:
    """A PNG of 9,000 x 9,000 pixels (over the 64 million limit) that is a few hundred KB."""
    buffer = io.BytesIO()
    Image.new("L", (9000, 9000)).save(buffer, format="PNG")
    return buffer.getvalue()


def hostile_requests(original: str) -> list[tuple[str, Any, int, str]]:
    """(name, request as a function of the server, status, words of the error)."""
    jpeg = cover_bytes(original)
    return [
        ("empty body", lambda s: s.call("POST", "/look-alikes", b""), 422, "cover"),
        ("empty file", lambda s: s.upload("/look-alikes", b""), 400, "empty file"),
        ("text as image", lambda s: s.upload("/look-alikes", b"not the pixels you are looking for"), 400,
         "not an image"),
        ("truncated JPEG", lambda s: s.upload("/look-alikes", jpeg[: len(jpeg) // 2]), 400, "truncated"),
        ("pixel bomb", lambda s: s.upload("/look-alikes", bomb(), name="bomb.png"), 400, "too large"),
        ("over the upload limit", lambda s: s.upload("/look-alikes", os.urandom(2 * 1024 * 1024)), 413, ""),
        ("huge k", lambda s: s.call("GET", f"/covers/0/look-alikes?k={10**12}"), 422, "k"),
        ("negative k", lambda s: s.call("GET", "/covers/0/look-alikes?k=-1"), 422, "k"),
        ("unknown id", lambda s: s.call("GET", "/covers/999/look-alikes"), 404, "no cover with id 999"),
        ("path as id", lambda s: s.call("GET", "/covers/..%2F..%2Fetc%2Fpasswd/thumbnail"), 404, "no such endpoint"),
        ("path in the URL", lambda s: s.call("GET", "/covers/../../etc/passwd"), 404, "no such endpoint"),
        ("name as id", lambda s: s.call("GET", "/covers/passwd/thumbnail"), 422, "cover_id"),
        ("wrong token", lambda s: s.call("GET", "/info", token="guess"), 401, "token"),
        ("no token", lambda s: s.call("GET", "/covers/0/thumbnail", token=None), 401, "token"),
        ("malformed JSON", lambda s: s.call("POST", "/search", b'{"text": "sep', {"Content-Type": "application/json"}),
         422, "JSON"),
        ("search without text", lambda s: s.call("POST", "/search", b'{"text": "!!"}',
                                                 {"Content-Type": "application/json"}), 400, "letter or digit"),
    ]


def test_hostile_requests_get_a_json_error_and_the_server_goes_on(server: Server, answerer: QueryAnswerer) -> None:
    original = answerer.recommender.index.metadata.iloc[1]["path"]
    for name, request, expected_status, words in hostile_requests(original):
        status, answer = request(server)
        assert status == expected_status, (name, answer)
        assert isinstance(answer, dict) and words.lower() in answer["error"].lower(), (name, answer)
        assert "/tmp/" not in answer["error"] and str(ARTIST_COVERS) not in answer["error"], (name, answer)
        assert server.call("GET", "/covers/1/look-alikes?k=2&by=look")[0] == 200, name


# -- options of the operator, and generations ------------------------------------------------------------------


def test_without_a_token_paths_and_cors_are_the_operators_choice(
    built: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    index, cache, _ = built
    open_server = Server(index, cache, tmp_path / "server.log", None, "--show-paths",
                         "--cors-origin", "https://shop.example")
    try:
        status, answer = open_server.call("GET", "/covers/0/look-alikes?k=2&by=look")
        assert status == 200 and Path(answer["results"][0]["path"]).is_file()
        request = urllib.request.Request(open_server.url + "/info", headers={"Origin": "https://shop.example"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["access-control-allow-origin"] == "https://shop.example"
        request = urllib.request.Request(open_server.url + "/info", headers={"Origin": "https://evil.example"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert "access-control-allow-origin" not in response.headers
    finally:
        open_server.stop()


def test_a_new_generation_is_served_without_restart_and_no_request_fails(
    server: Server, built: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    index, cache, manifest = built
    before = server.call("GET", "/info")[1]
    failures: list[Any] = []
    generations: set[str] = set()
    done = threading.Event()

    def query() -> None:
        while not done.is_set():
            status, answer = server.call("GET", "/covers/2/look-alikes?k=3&by=look")
            if status != 200:
                failures.append(answer)
            else:
                generations.add(answer["generation"])

    worker = threading.Thread(target=query)
    worker.start()
    try:
        table = pd.read_csv(manifest)
        extra = make_cover(tmp_path / "new.png", seed=3)
        table = pd.concat([table, pd.DataFrame([{"path": str(extra), "genre": "jazz", "artist": "Nobody"}])])
        table.to_csv(tmp_path / "more.csv", index=False)
        time.sleep(1.1)  # index.json's created has one-second steps; the server tells generations apart anyway
        build_index(index, manifest=tmp_path / "more.csv", workers=0, read_text=True,
                    settings=Settings(cache_dir=cache, progress=False))
        deadline = time.monotonic() + 120
        while server.call("GET", "/info")[1]["count"] != 19 and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)  # the client goes on querying the new generation for a while
    finally:
        done.set()
        worker.join()
    after = server.call("GET", "/info")[1]
    assert failures == []
    assert after["count"] == 19 and after["generation"] != before["generation"]
    assert generations == {before["generation"], after["generation"]}  # the client was answered from both


def test_a_replaced_generation_gives_its_memory_back_once_its_last_request_ends(
    built: tuple[Path, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import shutil

    from api import generations as module

    released: list[bool] = []
    monkeypatch.setattr(module, "release_freed_memory", lambda: released.append(True))
    index, cache, manifest = built
    shutil.copytree(index, tmp_path / "index")
    settings = Settings(cache_dir=cache, progress=False)
    generations = module.Generations(tmp_path / "index", lambda path: QueryAnswerer.open(path, settings))
    first = generations.current()
    fewer = pd.read_csv(manifest).iloc[1:]
    fewer.to_csv(tmp_path / "fewer.csv", index=False)
    build_index(tmp_path / "index", manifest=tmp_path / "fewer.csv", workers=0, read_text=True, settings=settings)
    second = generations.current()
    assert second is not first and len(second.ids) == len(fewer)
    gc.collect()
    assert released == []  # a request still holds the first generation
    del first
    gc.collect()
    assert released == [True]
    module.release_freed_memory()  # the real one runs here, whatever the C library


def test_a_query_that_cannot_be_answered_is_400_and_damage_on_the_server_is_503(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from fastapi import HTTPException

    from api.app import _answering
    from recsys.classify.persist import ClassifierError
    from recsys.errors import QueryError

    current = SimpleNamespace(lock=threading.Lock())
    for error, status in ((QueryError(f"cannot use {tmp_path}/x.jpg"), 400), (ClassifierError("damaged"), 503)):
        with pytest.raises(HTTPException) as raised, _answering(current, {}, tmp_path):  # type: ignore[arg-type]
            raise error
        assert raised.value.status_code == status and str(tmp_path) not in raised.value.detail


# -- worker processes and timeouts -----------------------------------------------------------------------------


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_workers_answer_concurrent_requests_and_stop_together(
    built: tuple[Path, Path, Path], tmp_path: Path, stop_signal: int
) -> None:
    index, cache, _ = built
    running = Server(index, cache, tmp_path / "server.log", None, "--workers", "2", "--threads", "1")
    try:
        assert "2 workers, 1 thread a query" in running.log.read_text()
        children = psutil.Process(running.process.pid).children()
        workers = {child.pid for child in children if "spawn_main" in " ".join(child.cmdline())}  # not the tracker
        answered_by: set[int] = set()
        deadline = time.monotonic() + 120
        while answered_by != workers and time.monotonic() < deadline:
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda i: running.call("GET", f"/covers/{i % 18}/look-alikes?k=3&by=look")[0],
                                         range(16)))
            assert statuses == [200] * 16
            time.sleep(0.2)
            log = running.log.read_text()
            answered_by = {int(pid) for pid in re.findall(r'\[(\d+)\] 127\.0\.0\.1 "GET /covers/', log)}
        assert len(workers) == 2 and answered_by == workers, running.log.read_text()
        running.process.send_signal(stop_signal)
        running.process.wait(timeout=60)
        assert psutil.wait_procs(children, timeout=10)[1] == []  # the workers and uvicorn's helper all ended
    finally:
        running.stop()


def test_a_request_over_the_timeout_gets_504_and_the_server_goes_on(
    built: tuple[Path, Path, Path], answerer: QueryAnswerer, tmp_path: Path
) -> None:
    index, cache, _ = built
    running = Server(index, cache, tmp_path / "server.log", None, "--timeout", "0.001")
    try:
        cover = cover_bytes(answerer.recommender.index.metadata.iloc[4]["path"])
        status, answer = running.upload("/look-alikes?k=3", cover)
        assert status == 504 and "limit of 0.001 s" in answer["error"]
        assert running.call("GET", "/healthz") == (200, {"status": "ok"})
        time.sleep(0.5)
        assert running.process.poll() is None
        assert re.search(r'"POST /look-alikes" 504 ', running.log.read_text())
    finally:
        running.stop()



def test_connections_of_several_workers_have_nagle_off() -> None:
    """uvicorn's supervisor binds its socket with proto 0, so asyncio leaves Nagle on for what it accepts (about
    40 ms on every kept-alive request with --workers 2); the server's protocol turns it off on each connection."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from api.nodelay import NoDelayHTTPProtocol

    class Transport(asyncio.Transport):
        def __init__(self, connection: socket.socket) -> None:
            super().__init__({"socket": connection, "peername": connection.getpeername(),
                              "sockname": connection.getsockname()})

    config = uvicorn.Config(app=lambda scope, receive, send: None, http="api.nodelay:NoDelayHTTPProtocol")
    config.load()
    assert config.http_protocol_class is NoDelayHTTPProtocol
    loop = asyncio.new_event_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:  # proto 0, as uvicorn binds it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()), listener.accept()[0] as accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
            protocol = NoDelayHTTPProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
            protocol.connection_made(Transport(accepted))
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    loop.close()
