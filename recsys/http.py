"""A polite HTTP client for public web services that ask to be treated gently.

MusicBrainz allows one request per second per client and answers 503 beyond that; both it and the
Cover Art Archive want a User-Agent that names the application and a way to contact its user. The
client spaces requests per host, retries throttling answers (429, 503), server errors and dropped
connections with exponential backoff, and waits at least as long as a ``Retry-After`` header asks.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from index.errors import SleeveError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses that say "not now" rather than "never": throttling, overload, a gateway hiccup."""

_TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class HttpError(SleeveError):
    """A request that failed for good; ``status`` is the last HTTP status, or None if no answer came."""

    def __init__(self, message: str, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


def user_agent(application: str, version: str, contact: str) -> str:
    """The User-Agent form MusicBrainz asks for: ``application/version ( contact )``."""
    return f"{application}/{version} ( {contact} )"


def origin(url: str) -> str:
    """``host:port`` of a URL, the unit a request interval applies to: ``musicbrainz.org:443``."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
    return f"{(parts.hostname or '').lower()}:{port}"


def retry_after_seconds(value: str | None, now: Callable[[], datetime] | None = None) -> float | None:
    """Read a ``Retry-After`` header, given as delay-seconds or as an HTTP-date; None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


class PoliteClient:
    """GET with a User-Agent, a minimum interval per host, retries with backoff and timeouts.

    ``min_interval`` maps an :func:`origin` (``musicbrainz.org:443``) to the seconds that must pass between
    the end of one response from it and the start of the next request to it; others get ``default_interval``.
    Counting from the end of the previous answer means the server itself never sees two requests closer
    together than the interval, whatever the network latency. Not thread-safe: one client per thread.
    """

    def __init__(
        self,
        user_agent: str,
        *,
        min_interval: Mapping[str, float] | None = None,
        default_interval: float = 0.0,
        retries: int = 5,
        backoff: float = 1.0,
        max_wait: float = 300.0,
        timeout: tuple[float, float] = (10.0, 60.0),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.min_interval = dict(min_interval or {})
        self.default_interval = default_interval
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self._sleep = sleep
        self._clock = clock
        self._ready_at: dict[str, float] = {}

    def get(self, url: str, params: Mapping[str, Any] | None = None, accept: str | None = None) -> requests.Response:
        """Return the response to a GET with its body read; raise :class:`HttpError` once retries run out
        or for a status of 400 and above that retrying cannot fix (the status is on the error)."""
        host = origin(url)
        shown = requests.Request("GET", url, params=params).prepare().url or url
        headers = {"Accept": accept} if accept else None
        attempt = 0
        while True:
            self._wait_for_turn(host)
            retry_after = None
            try:  # without stream=True, requests reads the whole body here: a cut-off body is retried too
                response = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
            except _TRANSIENT_ERRORS as error:
                problem, status = f"{type(error).__name__}: {error}", None
            else:
                if response.status_code < 400:
                    return response
                status = response.status_code
                if status not in RETRY_STATUSES:
                    raise HttpError(f"HTTP {status} for {shown}", shown, status)
                problem = f"HTTP {status}"
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            finally:
                self._ready_at[host] = self._clock() + self.min_interval.get(host, self.default_interval)
            if attempt == self.retries:
                raise HttpError(f"{problem} for {shown}, still failing after {self.retries} retries", shown, status)
            delay = min(self.backoff * 2**attempt, self.max_wait)
            if retry_after is not None:
                if retry_after > self.max_wait:
                    raise HttpError(
                        f"{shown} asked to wait {retry_after:.0f} s (Retry-After), longer than the"
                        f" {self.max_wait:.0f} s sleeve waits; try again later",
                        shown,
                        status,
                    )
                delay = max(delay, retry_after)
            attempt += 1
            log.info("%s for %s; retry %d of %d in %.1f s", problem, shown, attempt, self.retries, delay)
            self._sleep(delay)

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET a JSON document; an answer that is not JSON (an error page from a proxy) is an :class:`HttpError`."""
        response = self.get(url, params=params, accept="application/json")
        try:
            return response.json()
        except ValueError:
            raise HttpError(f"{response.url} did not answer with JSON", response.url, response.status_code) from None

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _wait_for_turn(self, host: str) -> None:
        wait = self._ready_at.get(host, 0.0) - self._clock()
        if wait > 0:
            self._sleep(wait)
