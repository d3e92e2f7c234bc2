"""Find release groups (albums) by genre tag through the MusicBrainz web service, ``/ws/2/`` in JSON.

Search rather than browse: browsing lists the release groups of a related entity (an artist, a release),
while a Lucene query on the release-group search index can ask for a tag directly. The search answers in
pages of at most 100 (``limit``, ``offset``) and says in ``count`` how many matches there are in all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from recsys.http import PoliteClient

log = logging.getLogger(__name__)

DEFAULT_URL = "https://musicbrainz.org/ws/2"
MAX_PAGE_SIZE = 100
"""The most results the search API returns for one request."""


@dataclass(frozen=True)
class ReleaseGroup:
    """What sleeve keeps of a release group: enough to label a cover and to show it in ``recommend``."""

    mbid: str
    title: str
    artist: str
    year: str
    """First-release year, "" when MusicBrainz does not know it."""
    tags: tuple[str, ...]
    """Folksonomy tags, lower case, as MusicBrainz users applied them."""


def normalize_genre(genre: str) -> str:
    """MusicBrainz tags are lower case with single spaces: "Hip  Hop" means the tag "hip hop"."""
    return " ".join(genre.split()).lower()


def tag_query(genre: str, primary_type: str | None = "album") -> str:
    """The Lucene query for release groups tagged ``genre``, optionally of one primary type (album, ep...)."""
    phrase = normalize_genre(genre).replace("\\", "\\\\").replace('"', '\\"')
    query = f'tag:"{phrase}"'
    if primary_type:
        query += f" AND primarytype:{primary_type}"
    return query


def parse_release_group(item: dict[str, Any]) -> ReleaseGroup:
    """Turn one entry of a search answer's ``release-groups`` list into a :class:`ReleaseGroup`."""
    credit = "".join(
        (part.get("name") or part.get("artist", {}).get("name", "")) + (part.get("joinphrase") or "")
        for part in item.get("artist-credit") or []
    )
    date = item.get("first-release-date") or ""
    year = date[:4] if date[:4].isdigit() else ""
    tags = tuple(normalize_genre(tag["name"]) for tag in item.get("tags") or [] if tag.get("name"))
    return ReleaseGroup(mbid=item["id"], title=item.get("title") or "", artist=credit, year=year, tags=tags)


def search_release_groups(
    client: PoliteClient,
    genre: str,
    *,
    base_url: str = DEFAULT_URL,
    primary_type: str | None = "album",
    page_size: int = MAX_PAGE_SIZE,
) -> Iterator[ReleaseGroup]:
    """Yield release groups tagged exactly ``genre``, best matches first, asking for one page at a time.

    Lucene matches words, so ``tag:"jazz"`` also finds "acid jazz"; only results that carry the tag itself
    are yielded, to keep the labels clean. Pages are requested lazily: stop iterating and no more are asked.
    """
    genre = normalize_genre(genre)
    url = f"{base_url.rstrip('/')}/release-group"
    query = tag_query(genre, primary_type)
    offset = 0
    seen: set[str] = set()
    while True:
        params = {"query": query, "fmt": "json", "limit": min(page_size, MAX_PAGE_SIZE), "offset": offset}
        answer = client.get_json(url, params=params)
        items = answer.get("release-groups") or []
        total = answer.get("count", answer.get("release-group-count", 0))
        log.debug("%s: %d results from offset %d of %d", query, len(items), offset, total)
        for item in items:
            group = parse_release_group(item)
            # Rankings can shift between pages while the index updates; never yield a group twice.
            if group.mbid in seen or (group.tags and genre not in group.tags):
                continue
            seen.add(group.mbid)
            yield group
        offset += len(items)
        if not items or offset >= total:
            return
