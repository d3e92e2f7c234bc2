"""Reading the two services: MusicBrainz release-group search with paging, Cover Art Archive listings."""

from __future__ import annotations

import itertools
from urllib.parse import parse_qs, urlsplit

import pytest

from recsys import coverart, musicbrainz
from recsys.http import PoliteClient, user_agent
from tests.fetch_fakes import Album, FakeServices, jpeg_bytes


@pytest.fixture
def client():
    with PoliteClient(user_agent("sleeve", "test", "tests@example.org"), backoff=0.01) as polite:
        yield polite


def serve(albums: list[Album], page_size: int = 3):
    return FakeServices(albums, page_size=page_size)


def test_tag_query_quotes_the_genre_and_limits_the_type():
    assert musicbrainz.tag_query("Hip  Hop") == 'tag:"hip hop" AND primarytype:album'
    assert musicbrainz.tag_query('say "hi"', primary_type=None) == r'tag:"say \"hi\""'


def test_parse_release_group_joins_the_artist_credit_and_keeps_the_year():
    album = Album("Hot Rats", [("Frank Zappa", " & "), ("The Mothers", "")], ["Rock", "jazz fusion"], year="1969")
    group = musicbrainz.parse_release_group(album.musicbrainz_json())
    assert group == musicbrainz.ReleaseGroup(
        mbid=album.mbid, title="Hot Rats", artist="Frank Zappa & The Mothers", year="1969",
        tags=("rock", "jazz fusion"),
    )
    assert musicbrainz.parse_release_group({"id": "x", "title": "T", "first-release-date": ""}).year == ""


def test_search_pages_through_every_result_and_keeps_only_the_exact_tag(client):
    jazz = [Album(f"Jazz {i}", f"Artist {i}", ["jazz"]) for i in range(7)]
    acid = Album("Acid", "Someone", ["acid jazz"])
    services = serve(jazz[:4] + [acid] + jazz[4:], page_size=3)
    try:
        found = list(musicbrainz.search_release_groups(client, "jazz", base_url=services.musicbrainz_url))
        offsets = [parse_qs(urlsplit(path).query)["offset"][0] for path, _, _ in services.requests("musicbrainz")]
    finally:
        services.close()
    assert [group.title for group in found] == [album.title for album in jazz]
    assert offsets == ["0", "3", "6"]  # 8 matches in pages of 3


def test_search_asks_for_pages_only_as_they_are_needed(client):
    services = serve([Album(f"Metal {i}", "Band", ["metal"]) for i in range(9)], page_size=3)
    try:
        first_four = list(itertools.islice(
            musicbrainz.search_release_groups(client, "metal", base_url=services.musicbrainz_url), 4))
        assert len(first_four) == 4
        assert len(services.requests("musicbrainz")) == 2
        query = parse_qs(urlsplit(services.requests("musicbrainz")[0][0]).query)
        assert query["query"] == ['tag:"metal" AND primarytype:album']
        assert query["limit"] == ["100"] and query["fmt"] == ["json"]
    finally:
        services.close()


def test_list_images_reads_the_listing_and_treats_404_as_no_art(client):
    with_art = Album("Blue Train", "John Coltrane", ["jazz"], front=jpeg_bytes(1), back=jpeg_bytes(2))
    without = Album("Lost", "Nobody", ["jazz"])
    services = serve([with_art, without])
    try:
        images = coverart.list_images(client, with_art.mbid, base_url=services.coverart_url)
        assert coverart.list_images(client, without.mbid, base_url=services.coverart_url) == []
    finally:
        services.close()
    assert [image["types"] for image in images] == [["Front"], ["Back"]]
    assert coverart.choose_image(images, "front", 500).url.endswith("/1-500.jpg")
    assert coverart.choose_image(images, "back", 1200).url.endswith("/2-1200.jpg")
    assert coverart.choose_image(images[:1], "back", 250) is None


def test_thumbnail_falls_back_to_the_nearest_size_and_the_old_names():
    old = {"thumbnails": {"small": "s.jpg", "large": "l.jpg"}}
    assert coverart.thumbnail_url(old, 250) == "s.jpg"
    assert coverart.thumbnail_url(old, 500) == "l.jpg"
    assert coverart.thumbnail_url(old, 1200) == "l.jpg"
    assert coverart.thumbnail_url({"thumbnails": {"1200": "xl.jpg"}}, 250) == "xl.jpg"
    assert coverart.thumbnail_url({"image": "original.png", "thumbnails": {}}, 250) is None


def test_an_image_only_typed_front_is_still_the_front():
    images = [{"front": False, "types": ["Medium"], "thumbnails": {"250": "m.jpg"}},
              {"front": False, "types": ["Front", "Spine"], "thumbnails": {"250": "f.jpg"}}]
    assert coverart.choose_image(images, "front", 250).url == "f.jpg"


def test_check_image_refuses_truncated_and_non_images():
    whole = jpeg_bytes(3)
    coverart.check_image(whole)
    with pytest.raises(coverart.InvalidImage):
        coverart.check_image(whole[: len(whole) // 2])
    with pytest.raises(coverart.InvalidImage):
        coverart.check_image(b"<html>503 Service Unavailable</html>")
