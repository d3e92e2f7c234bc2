"""Local stand-ins for MusicBrainz and the Cover Art Archive, for the fetch-covers tests.

Two stdlib HTTP servers on 127.0.0.1 (port 0), one per service, so that the per-host request interval
can be told apart. Their answers follow the services' documented JSON formats:

* MusicBrainz ``GET /ws/2/release-group?query=tag:"jazz" AND primarytype:album&fmt=json&limit&offset``
  answers ``{"created", "count", "offset", "release-groups": [...]}``; this fake serves at most
  ``page_size`` results per page whatever ``limit`` asks, so that paging is exercised with few fixtures.
* Cover Art Archive ``GET /release-group/{mbid}`` answers ``{"images": [...], "release": url}`` or 404;
  the thumbnail URLs it lists redirect (307) to the "Internet Archive" path that serves the bytes.

Tests script one-off failures per path (``fail_next``): a status with headers, a dropped connection,
or a body cut short of its Content-Length. Every request is logged with its arrival time.
"""

from __future__ import annotations

import io
import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image


def jpeg_bytes(seed: int, size: int = 64) -> bytes:
    """A real, small JPEG of its own: noise, so most of its bytes are image data that truncation cuts."""
    pixels = random.Random(seed).randbytes(size * size * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (size, size), pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@dataclass
class Album:
    """One release group as both services know it."""

    title: str
    artist: str | list[tuple[str, str]]
    """A name, or [(name, joinphrase), ...] for a credit of several artists."""
    tags: list[str]
    year: str = "1971"
    front: bytes | None = None
    """JPEG served as the front thumbnail; None: the archive has no art (404)."""
    back: bytes | None = None
    mbid: str = field(default_factory=lambda: str(uuid.uuid4()))
    release: str = field(default_factory=lambda: str(uuid.uuid4()))

    def musicbrainz_json(self) -> dict:
        credits = [(self.artist, "")] if isinstance(self.artist, str) else self.artist
        return {
            "id": self.mbid,
            "type-id": "f529b476-6e62-324f-b0aa-1f3e33d313fc",
            "score": 100,
            "count": 1,
            "title": self.title,
            "first-release-date": f"{self.year}-03-01" if self.year else "",
            "primary-type": "Album",
            "artist-credit": [
                {"name": name, "joinphrase": join, "artist": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                                                              "name": name, "sort-name": name}}
                for name, join in credits
            ],
            "releases": [{"id": self.release, "title": self.title, "status": "Official"}],
            "tags": [{"count": 2, "name": tag} for tag in self.tags],
        }


class FakeServices:
    """Both fake services; ``musicbrainz_url`` and ``coverart_url`` are the base URLs to hand to sleeve."""

    def __init__(self, albums: list[Album], page_size: int = 3) -> None:
        self.albums = albums
        self.page_size = page_size
        self.log: list[tuple[str, str, float, dict[str, str]]] = []
        """(service, path with query, arrival time.monotonic(), headers) per request."""
        self.scripted: dict[str, list[tuple]] = {}
        self._lock = threading.Lock()
        self._servers = [self._serve("musicbrainz"), self._serve("coverart")]
        self.musicbrainz_url = f"http://127.0.0.1:{self._servers[0].server_port}/ws/2"
        self.coverart_url = f"http://127.0.0.1:{self._servers[1].server_port}"

    # -- scripting and inspection -------------------------------------------------------------------

    def fail_next(self, path: str, *failures: tuple) -> None:
        """Answer the next requests to ``path`` (no query) with ``failures``, in order, then normally.

        A failure is ``("status", code, headers)``, ``("drop",)`` or ``("cut", body, claimed_length)``.
        """
        self.scripted.setdefault(path, []).extend(failures)

    def requests(self, service: str, prefix: str = "") -> list[tuple[str, float, dict[str, str]]]:
        with self._lock:
            return [(path, at, headers) for name, path, at, headers in self.log
                    if name == service and path.startswith(prefix)]

    def image_requests(self) -> list[str]:
        """Requests for image bytes: the archive's thumbnail URLs and the downloads they redirect to."""
        return [path for path, _, _ in self.requests("coverart") if not path.startswith("/release-group/")]

    def listing_requests(self) -> list[str]:
        return [path for path, _, _ in self.requests("coverart", "/release-group/")]

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # -- the services -------------------------------------------------------------------------------

    def _serve(self, service: str) -> ThreadingHTTPServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                with fake._lock:
                    fake.log.append((service, self.path, time.monotonic(), dict(self.headers)))
                    queue = fake.scripted.get(urlsplit(self.path).path)
                    failure = queue.pop(0) if queue else None
                if failure is not None:
                    return fake._fail(self, failure)
                if service == "musicbrainz":
                    return fake._musicbrainz(self)
                return fake._coverart(self)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return server

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None, length: int | None = None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def _fail(self, handler: BaseHTTPRequestHandler, failure: tuple) -> None:
        handler.close_connection = True
        if failure[0] == "status":
            _, status, headers = failure
            headers = {**headers, "Connection": "close"}
            self._send(handler, status, b'{"error": "scripted failure"}', "application/json", headers)
        elif failure[0] == "cut":
            _, body, claimed = failure
            self._send(handler, 200, body, "image/jpeg", {"Connection": "close"}, length=claimed)
        # "drop": close the connection without an answer

    def _musicbrainz(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        params = {name: values[0] for name, values in parse_qs(url.query).items()}
        tag = re.search(r'tag:"((?:[^"\\]|\\.)*)"', params.get("query", ""))
        if url.path != "/ws/2/release-group" or params.get("fmt") != "json" or not tag:
            return self._send(handler, 400, b'{"error": "bad request"}', "application/json")
        genre = tag.group(1)
        # Like Lucene, a word query also matches longer tags ("jazz" finds "acid jazz").
        matches = [a for a in self.albums if any(genre in t.split() or genre == t for t in a.tags)]
        offset, limit = int(params.get("offset", 0)), min(int(params.get("limit", 25)), self.page_size)
        answer = {
            "created": "2026-01-01T00:00:00.000Z",
            "count": len(matches),
            "offset": offset,
            "release-groups": [a.musicbrainz_json() for a in matches[offset:offset + limit]],
        }
        self._send(handler, 200, json.dumps(answer).encode(), "application/json")

    def _coverart(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        base = self.coverart_url
        if match := re.fullmatch(r"/release-group/([0-9a-f-]{36})", path):
            album = next((a for a in self.albums if a.mbid == match.group(1)), None)
            if album is None or album.front is None:
                return self._send(handler, 404, b"No cover art found for release group", "text/plain")
            return self._send(handler, 200, json.dumps(self._listing(album)).encode(), "application/json")
        if match := re.fullmatch(r"/release/([0-9a-f-]{36})/(\d+)-(\d+)\.jpg", path):
            location = f"{base}/download/mbid-{match.group(1)}-{match.group(2)}_thumb{match.group(3)}.jpg"
            return self._send(handler, 307, b"", "text/plain", {"Location": location})
        if match := re.fullmatch(r"/download/mbid-([0-9a-f-]{36})-(\d+)_thumb\d+\.jpg", path):
            album = next((a for a in self.albums if a.release == match.group(1)), None)
            data = album and (album.front if match.group(2) == "1" else album.back)
            if data:
                return self._send(handler, 200, data, "image/jpeg")
        self._send(handler, 404, b"not found", "text/plain")

    def _listing(self, album: Album) -> dict:
        def image(image_id: int, kind: str) -> dict:
            stem = f"{self.coverart_url}/release/{album.release}/{image_id}"
            return {
                "approved": True, "back": kind == "Back", "comment": "", "edit": 1000 + image_id,
                "front": kind == "Front", "id": image_id, "image": f"{stem}.jpg", "types": [kind],
                "thumbnails": {"250": f"{stem}-250.jpg", "500": f"{stem}-500.jpg", "1200": f"{stem}-1200.jpg",
                               "small": f"{stem}-250.jpg", "large": f"{stem}-500.jpg"},
            }

        images = [image(1, "Front")] + ([image(2, "Back")] if album.back else [])
        return {"images": images, "release": f"https://musicbrainz.org/release/{album.release}"}
