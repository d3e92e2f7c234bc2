"""fetch_covers against the local fake services: layout, manifest, politeness, resume, nothing partial."""

from __future__ import annotations

import csv
from itertools import pairwise
from pathlib import Path

import pytest

from recsys import fetch
from recsys.fetch import MANIFEST_COLUMNS, FetchError, fetch_covers
from recsys.http import PoliteClient
from tests.fetch_fakes import Album, FakeServices, jpeg_bytes

FAST = 0.01
"""Seconds between MusicBrainz requests in tests that are not about the interval."""


@pytest.fixture
def albums() -> dict[str, Album]:
    half = jpeg_bytes(3)[:2000]
    return {
        "blue": Album("Blue Train", "John Coltrane", ["jazz"], year="1957", front=jpeg_bytes(1)),
        "lost": Album("Lost Session", "Nobody", ["jazz"]),  # no cover art: 404
        "cut": Album("Cut Short", "Truncated Trio", ["jazz"], front=half),  # always arrives truncated
        "both": Album("Torture Garden", [("John Zorn", " & "), ("Naked City", "")], ["jazz", "metal"],
                      year="1989", front=jpeg_bytes(4), back=jpeg_bytes(5)),
        "acid": Album("Acid Test", "Groove Unit", ["acid jazz"], front=jpeg_bytes(6)),  # not tagged "jazz"
        "time": Album("Time Out", "The Dave Brubeck Quartet", ["jazz"], year="1959", front=jpeg_bytes(7)),
        "paranoid": Album("Paranoid", "Black Sabbath", ["metal"], year="1970", front=jpeg_bytes(8)),
        "puppets": Album("Master of Puppets", "Metallica", ["metal"], year="1986", front=jpeg_bytes(9),
                         back=jpeg_bytes(10)),
        "reign": Album("Reign in Blood", "Slayer", ["metal"], year="1986", front=jpeg_bytes(11)),
    }


@pytest.fixture
def services(albums):
    fake = FakeServices(list(albums.values()), page_size=3)
    yield fake
    fake.close()


def run(services: FakeServices, out: Path, genres: list[str], per_genre: int, **options):
    options = {"musicbrainz_interval": FAST, "retry_backoff": 0.01, **options}
    return fetch_covers(out, genres, per_genre, contact="tests@example.org", musicbrainz_url=services.musicbrainz_url,
                        coverart_url=services.coverart_url, **options)


def read_manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        return list(reader)


def files_under(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def row(album: Album, genre: str, kind: str = "front", size: int = 250, note: str = "", services=None) -> dict:
    image_id = 1 if kind == "front" else 2
    return {
        "path": f"{genre}/{album.mbid}-{kind}.jpg", "genre": genre, "mbid": album.mbid,
        "artist": album.artist if isinstance(album.artist, str) else "".join(n + j for n, j in album.artist),
        "title": album.title, "year": album.year, "image_type": kind,
        "source_url": f"{services.coverart_url}/release/{album.release}/{image_id}-{size}.jpg", "note": note,
    }


def test_fetch_writes_folders_per_genre_and_a_manifest_of_exactly_what_is_on_disk(tmp_path, services, albums):
    out = tmp_path / "covers"
    summary = run(services, out, ["jazz", "Metal"], 2)

    a = albums
    assert read_manifest(out) == [
        row(a["blue"], "jazz", services=services),
        row(a["both"], "jazz", note="also tagged: metal", services=services),
        row(a["paranoid"], "metal", services=services),
        row(a["puppets"], "metal", services=services),
    ]
    assert files_under(out) == {"manifest.csv"} | {r["path"] for r in read_manifest(out)}
    assert (out / "jazz" / f"{a['blue'].mbid}-front.jpg").read_bytes() == a["blue"].front
    # The truncated image was tried twice and never kept; the release group without art cost one request.
    assert not list(out.rglob(f"{a['cut'].mbid}*"))
    assert sum(a["cut"].release in path for path in services.image_requests()) == 4  # 2 x (redirect + bytes)
    assert services.listing_requests().count(f"/release-group/{a['lost'].mbid}") == 1

    jazz, metal = summary.genres
    assert (jazz.genre, jazz.fetched, jazz.no_art, jazz.failed, jazz.shared) == ("jazz", 2, 1, 1, 0)
    assert (metal.genre, metal.fetched, metal.no_art, metal.failed, metal.shared) == ("metal", 2, 0, 0, 1)
    assert not summary.ok
    [failure] = summary.failures
    assert (failure.mbid, failure.image_type) == (a["cut"].mbid, "front")
    assert "not a whole image" in failure.reason


def test_musicbrainz_is_never_asked_faster_than_the_interval(tmp_path, services):
    interval = 0.05
    run(services, tmp_path, ["jazz", "metal"], 3, musicbrainz_interval=interval)
    arrivals = [at for _, at, _ in services.requests("musicbrainz")]
    assert len(arrivals) >= 4
    assert all(later - earlier >= interval for earlier, later in pairwise(arrivals))
    user_agents = {headers["User-Agent"] for _, _, headers in services.requests("musicbrainz")}
    assert len(user_agents) == 1 and user_agents.pop().endswith("( tests@example.org )")


def test_a_503_with_retry_after_is_waited_out(tmp_path, services):
    services.fail_next("/ws/2/release-group", ("status", 503, {"Retry-After": "1"}))
    summary = run(services, tmp_path, ["metal"], 1)
    assert summary.genres[0].fetched == 1
    first, retry = [at for _, at, _ in services.requests("musicbrainz")][:2]
    assert retry - first >= 1.0


def test_back_covers_and_larger_thumbnails(tmp_path, services, albums):
    run(services, tmp_path, ["metal"], 2, back=True, size=500)
    a = albums
    assert read_manifest(tmp_path) == [
        row(a["both"], "metal", "front", 500, services=services),  # jazz was not asked for: no note
        row(a["both"], "metal", "back", 500, services=services),
        row(a["paranoid"], "metal", "front", 500, services=services),
    ]
    assert (tmp_path / "metal" / f"{a['both'].mbid}-back.jpg").read_bytes() == a["both"].back


def test_a_second_run_skips_what_is_on_disk_and_continues(tmp_path, services, albums):
    run(services, tmp_path, ["jazz", "metal"], 2)
    before = len(services.log)

    again = run(services, tmp_path, ["jazz", "metal"], 2)
    assert len(services.log) == before  # quota met: not one request to either service
    assert [(g.on_disk, g.fetched) for g in again.genres] == [(2, 0), (2, 0)]

    more = run(services, tmp_path, ["jazz", "metal"], 3)
    new_requests = [path for _, path, _, _ in services.log[before:]]
    for name in ("blue", "both", "paranoid", "puppets"):
        assert not any(albums[name].mbid in p or albums[name].release in p for p in new_requests), name
    assert [(g.on_disk, g.fetched) for g in more.genres] == [(2, 1), (2, 1)]
    assert {r["title"] for r in read_manifest(tmp_path)} == {
        "Blue Train", "Torture Garden", "Time Out", "Paranoid", "Master of Puppets", "Reign in Blood"}


def test_an_interrupted_run_leaves_a_valid_manifest_and_the_next_one_continues(tmp_path, services, albums, monkeypatch):
    real_get = PoliteClient.get
    image_downloads = []

    def get_then_interrupt(self, url, *args, **kwargs):
        if "/release/" in url:
            image_downloads.append(url)
            if len(image_downloads) == 3:
                raise KeyboardInterrupt
        return real_get(self, url, *args, **kwargs)

    monkeypatch.setattr(PoliteClient, "get", get_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        run(services, tmp_path, ["jazz", "metal"], 2)
    monkeypatch.undo()

    # Blue Train was stored, Cut Short failed twice, the third download was interrupted.
    assert [r["title"] for r in read_manifest(tmp_path)] == ["Blue Train"]
    assert files_under(tmp_path) == {"manifest.csv", f"jazz/{albums['blue'].mbid}-front.jpg"}

    before = len(services.log)
    summary = run(services, tmp_path, ["jazz", "metal"], 2)
    assert not any(albums["blue"].release in path for _, path, _, _ in services.log[before:])
    assert [(g.on_disk, g.fetched) for g in summary.genres] == [(1, 1), (0, 2)]
    assert len(read_manifest(tmp_path)) == 4


def test_leftovers_of_a_killed_run_are_cleaned_or_adopted(tmp_path, services, albums):
    jazz = tmp_path / "jazz"
    jazz.mkdir()
    (jazz / f".{albums['time'].mbid}-front.jpg.k3j4h5.tmp").write_bytes(b"half an image")
    (tmp_path / ".manifest.csv.a1b2c3.tmp").write_text("path,gen")
    # Written whole, killed before the manifest was rewritten: kept without downloading it again.
    (jazz / f"{albums['blue'].mbid}-front.jpg").write_bytes(albums["blue"].front)

    run(services, tmp_path, ["jazz"], 2)
    assert not list(tmp_path.rglob("*.tmp"))
    assert not any(albums["blue"].release in path for path in services.image_requests())
    assert [r["title"] for r in read_manifest(tmp_path)] == ["Blue Train", "Torture Garden"]


def test_a_cover_deleted_by_hand_is_fetched_again(tmp_path, services, albums):
    run(services, tmp_path, ["metal"], 2, back=True)
    both = albums["both"]
    (tmp_path / "metal" / f"{both.mbid}-front.jpg").unlink()
    before = len(services.log)
    summary = run(services, tmp_path, ["metal"], 2, back=True)
    assert (summary.genres[0].on_disk, summary.genres[0].fetched) == (1, 1)
    assert (tmp_path / "metal" / f"{both.mbid}-front.jpg").read_bytes() == both.front
    refetched = [path for _, path, _, _ in services.log[before:] if path.startswith("/download/")]
    assert refetched == [f"/download/mbid-{both.release}-1_thumb250.jpg"]  # the back on disk is reused
    assert [(r["mbid"], r["image_type"]) for r in read_manifest(tmp_path)] == [
        (albums["paranoid"].mbid, "front"), (both.mbid, "front"), (both.mbid, "back")]


def test_an_image_truncated_once_is_downloaded_again(tmp_path, services, albums):
    whole = albums["blue"].front
    services.fail_next(f"/download/mbid-{albums['blue'].release}-1_thumb250.jpg", ("cut", whole[:1500], 1500))
    summary = run(services, tmp_path, ["jazz"], 1)
    assert summary.ok
    assert (tmp_path / "jazz" / f"{albums['blue'].mbid}-front.jpg").read_bytes() == whole


def test_a_cover_stored_earlier_under_another_genre_gets_a_note_not_a_copy(tmp_path, services, albums):
    run(services, tmp_path, ["jazz"], 2)
    summary = run(services, tmp_path, ["metal"], 2)
    rows = read_manifest(tmp_path)
    both = [r for r in rows if r["mbid"] == albums["both"].mbid]
    assert [(r["genre"], r["note"]) for r in both] == [("jazz", "also tagged: metal")]
    assert not (tmp_path / "metal" / f"{albums['both'].mbid}-front.jpg").exists()
    assert summary.genres[0].shared == 1 and summary.genres[0].fetched == 2


def test_the_manifest_is_what_build_index_reads(tmp_path, services):
    from recsys.ingest import read_manifest as ingest_manifest

    run(services, tmp_path / "covers", ["jazz", "metal"], 2)
    table = ingest_manifest(tmp_path / "covers" / "manifest.csv")
    assert len(table) == 4
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in table["path"])
    assert list(table["genre"]) == ["jazz", "jazz", "metal", "metal"]
    assert {"artist", "title", "year", "mbid", "image_type", "source_url", "note"} <= set(table.columns)


def test_musicbrainz_down_stops_the_run_and_keeps_what_was_saved(tmp_path, services):
    run(services, tmp_path, ["jazz"], 1)
    services.fail_next("/ws/2/release-group", *[("status", 503, {})] * 6)
    with pytest.raises(FetchError, match="run the same command again"):
        run(services, tmp_path, ["metal"], 1)
    assert [r["genre"] for r in read_manifest(tmp_path)] == ["jazz"]


def test_a_foreign_manifest_is_not_overwritten(tmp_path, services):
    (tmp_path / "manifest.csv").write_text("path,genre\na.jpg,jazz\n")
    with pytest.raises(FetchError, match="not a fetch-covers manifest"):
        run(services, tmp_path, ["jazz"], 1)
    assert (tmp_path / "manifest.csv").read_text() == "path,genre\na.jpg,jazz\n"


def test_genre_folders_are_safe_names():
    assert fetch.genre_folder("r&b") == "r&b"
    assert fetch.genre_folder("hip hop") == "hip hop"
    assert fetch.genre_folder("../etc/passwd") == "-etc-passwd"
    assert fetch.genre_folder(".hidden") == "hidden"
