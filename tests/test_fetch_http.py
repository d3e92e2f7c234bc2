"""The polite HTTP client: User-Agent, spacing per host, retries, backoff and Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise

import pytest

from recsys.http import HttpError, PoliteClient, origin, retry_after_seconds, user_agent
from tests.fetch_fakes import Album, FakeServices, jpeg_bytes

UA = user_agent("sleeve", "0.1.0", "tests@example.org")


@pytest.fixture
def services():
    fake = FakeServices([Album("Kind of Blue", "Miles Davis", ["jazz"], front=jpeg_bytes(1))])
    yield fake
    fake.close()


class RecordingSleep:
    """Stands in for time.sleep: remembers the delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def search_url(services: FakeServices) -> str:
    return f"{services.musicbrainz_url}/release-group"


SEARCH = {"query": 'tag:"jazz"', "fmt": "json"}


def test_user_agent_names_application_version_and_contact(services):
    assert UA == "sleeve/0.1.0 ( tests@example.org )"
    with PoliteClient(UA) as client:
        client.get(search_url(services), params=SEARCH)
    [(_, _, headers)] = services.requests("musicbrainz")
    assert headers["User-Agent"] == UA


def test_requests_to_one_host_are_spaced_by_the_interval_as_the_server_sees_them(services):
    interval = 0.05
    with PoliteClient(UA, min_interval={origin(services.musicbrainz_url): interval}) as client:
        for _ in range(5):
            client.get(search_url(services), params=SEARCH)
            client.get(f"{services.coverart_url}/release-group/{services.albums[0].mbid}")
    arrivals = [at for _, at, _ in services.requests("musicbrainz")]
    assert len(arrivals) == 5
    assert all(later - earlier >= interval for earlier, later in pairwise(arrivals))


def test_origin_tells_ports_apart_and_fills_in_default_ports():
    assert origin("https://MusicBrainz.org/ws/2") == "musicbrainz.org:443"
    assert origin("http://127.0.0.1:8080/x") == "127.0.0.1:8080"
    assert origin("http://127.0.0.1/x") == "127.0.0.1:80"


def test_503_is_retried_after_the_seconds_retry_after_asks(services):
    services.fail_next("/ws/2/release-group", ("status", 503, {"Retry-After": "7"}))
    sleep = RecordingSleep()
    with PoliteClient(UA, backoff=0.01, sleep=sleep) as client:
        answer = client.get_json(search_url(services), params=SEARCH)
    assert answer["count"] == 1
    assert len(services.requests("musicbrainz")) == 2
    assert sleep.delays == [7.0]


def test_retry_after_as_an_http_date_is_honoured(services):
    later = datetime.now(UTC) + timedelta(seconds=30)
    services.fail_next("/ws/2/release-group", ("status", 429, {"Retry-After": format_datetime(later, usegmt=True)}))
    sleep = RecordingSleep()
    with PoliteClient(UA, backoff=0.01, sleep=sleep) as client:
        client.get(search_url(services), params=SEARCH)
    [delay] = sleep.delays
    assert 25 <= delay <= 30


def test_retry_after_parsing():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:10 GMT", now=lambda: now) == 10.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=lambda: now) == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None


def test_server_errors_back_off_exponentially_then_succeed(services):
    services.fail_next("/ws/2/release-group", *[("status", 500, {})] * 3)
    sleep = RecordingSleep()
    with PoliteClient(UA, backoff=0.5, sleep=sleep) as client:
        client.get(search_url(services), params=SEARCH)
    assert sleep.delays == [0.5, 1.0, 2.0]


def test_a_dropped_connection_and_a_body_cut_short_are_retried(services):
    album = services.albums[0]
    image_path = f"/download/mbid-{album.release}-1_thumb250.jpg"
    services.fail_next(image_path, ("drop",), ("cut", album.front[:100], len(album.front)))
    sleep = RecordingSleep()
    with PoliteClient(UA, backoff=0.01, sleep=sleep) as client:
        data = client.get(f"{services.coverart_url}{image_path}").content
    assert data == album.front
    assert len(services.requests("coverart", image_path)) == 3
    assert len(sleep.delays) == 2


def test_giving_up_after_the_retries_reports_the_last_status(services):
    services.fail_next("/ws/2/release-group", *[("status", 503, {})] * 3)
    client = PoliteClient(UA, retries=2, backoff=0.01, sleep=RecordingSleep())
    with client, pytest.raises(HttpError, match="503.*2 retries") as raised:
        client.get(search_url(services), params=SEARCH)
    assert raised.value.status == 503
    assert len(services.requests("musicbrainz")) == 3


def test_client_errors_are_not_retried(services):
    sleep = RecordingSleep()
    with PoliteClient(UA, sleep=sleep) as client, pytest.raises(HttpError) as raised:
        client.get(f"{services.coverart_url}/release-group/{'0' * 8}-0000-0000-0000-{'0' * 12}")
    assert raised.value.status == 404
    assert sleep.delays == []
    assert len(services.requests("coverart")) == 1


def test_a_retry_after_beyond_the_longest_wait_fails_at_once(services):
    services.fail_next("/ws/2/release-group", ("status", 503, {"Retry-After": "3600"}))
    sleep = RecordingSleep()
    with PoliteClient(UA, max_wait=60, sleep=sleep) as client, pytest.raises(HttpError, match="3600 s"):
        client.get(search_url(services), params=SEARCH)
    assert sleep.delays == []


def test_an_answer_that_is_not_json_is_an_http_error(services):
    album = services.albums[0]
    with PoliteClient(UA) as client, pytest.raises(HttpError, match="JSON"):
        client.get_json(f"{services.coverart_url}/download/mbid-{album.release}-1_thumb250.jpg")
