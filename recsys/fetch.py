"""Grow a cover collection from MusicBrainz and the Cover Art Archive, resumably.

Layout: ``<out>/<genre>/<mbid>-front.jpg`` (and ``-back.jpg``) plus ``<out>/manifest.csv``, which
``build-index --manifest`` reads. Two rules keep a collection trustworthy however a run ends:

* a file appears under its final name only once it has been downloaded whole and decoded by Pillow
  (written to a temporary file beside it, then renamed), so nothing partial is ever left behind;
* the manifest is rewritten the same way after every cover, so it always lists what is on disk.

A second run reads the manifest, skips every release group it lists (no Cover Art Archive request at all)
and carries on until each genre has its number of covers. A release group tagged with two requested
genres is stored once, under the first genre that found it, and its ``note`` says which others it has.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from index.atomic import atomic_path
from index.errors import SleeveError
from recsys import __version__, coverart, musicbrainz
from recsys.http import HttpError, PoliteClient, origin, user_agent
from recsys.user_config import ConfigError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("path", "genre", "mbid", "artist", "title", "year", "image_type", "source_url", "note")
MUSICBRAINZ_MIN_INTERVAL = 1.0
"""musicbrainz.org allows one request per second per client; sleeve never asks it faster."""

_ALSO_TAGGED = "also tagged: "
_IMAGE_ATTEMPTS = 2
"""Downloads of one image before giving up on bytes that do not decode (transport errors retry apart)."""


class FetchError(SleeveError):
    """The run cannot go on (MusicBrainz unreachable, a manifest that is not ours); what is saved stays."""


@dataclass
class GenreReport:
    genre: str
    wanted: int
    on_disk: int = 0
    """Covers of this genre already in the manifest when the run started."""
    fetched: int = 0
    no_art: int = 0
    """Release groups skipped because the Cover Art Archive has no front image for them."""
    shared: int = 0
    """Release groups skipped because they are already stored under another genre."""
    failed: int = 0
    """Images (front or back) that could not be fetched; listed in :attr:`FetchSummary.failures`."""

    @property
    def have(self) -> int:
        return self.on_disk + self.fetched


@dataclass
class Failure:
    genre: str
    mbid: str
    image_type: str
    reason: str


@dataclass
class FetchSummary:
    out: str
    manifest: str
    genres: list[GenreReport] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        genres = [asdict(report) | {"have": report.have} for report in self.genres]
        return {"out": self.out, "manifest": self.manifest, "ok": self.ok, "genres": genres,
                "failures": [asdict(failure) for failure in self.failures]}

    def lines(self) -> list[str]:
        lines = [
            f"{r.genre}: {r.have} of {r.wanted} covers ({r.on_disk} already on disk, {r.fetched} fetched;"
            f" skipped {r.no_art} without cover art and {r.shared} stored under another genre; {r.failed} failed)"
            for r in self.genres
        ]
        lines += [f"failed: {f.genre} {f.mbid} {f.image_type}: {f.reason}" for f in self.failures]
        return lines + [f"manifest: {self.manifest}"]


def genre_folder(genre: str) -> str:
    """A folder name for ``genre`` that is safe on every file system and not hidden ("r&b" stays "r&b")."""
    name = re.sub(r"[^\w &+'.-]", "-", genre).strip(" .")
    if not name:
        raise ConfigError(f"genre {genre!r} cannot name a folder")
    return name


class Manifest:
    """The manifest's rows, keyed by path, kept in step with the files on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, str]] = {}
        self._genre_of: dict[str, str] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                missing = set(MANIFEST_COLUMNS) - set(reader.fieldnames or ())
                if missing:
                    raise FetchError(
                        f"{self.path} is not a fetch-covers manifest (no column {', '.join(sorted(missing))});"
                        " choose another --out folder"
                    )
                rows = [{column: row[column] or "" for column in MANIFEST_COLUMNS} for row in reader]
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise FetchError(f"cannot read {self.path}: {error}") from None
        # A release group whose front image was deleted is forgotten as a whole, so that it can be fetched
        # again; a back image still on disk is then reused without a download.
        gone = {row["mbid"] for row in rows
                if row["image_type"] == "front" and not (self.path.parent / row["path"]).is_file()}
        self.add(row for row in rows if row["mbid"] not in gone and (self.path.parent / row["path"]).is_file())
        if gone:
            log.info("%d covers listed in %s are gone; they will be fetched again if needed", len(gone), self.path)

    def genre_of(self, mbid: str) -> str | None:
        """The genre ``mbid`` is stored under, None if it is not in the collection."""
        return self._genre_of.get(mbid)

    def count(self, genre: str) -> int:
        """Covers (front images) stored under ``genre``."""
        return sum(1 for row in self.rows.values() if row["genre"] == genre and row["image_type"] == "front")

    def add(self, rows: Iterable[dict[str, str]]) -> None:
        for row in rows:
            self.rows[row["path"]] = row
            self._genre_of[row["mbid"]] = row["genre"]

    def note_also_tagged(self, mbid: str, genre: str) -> bool:
        """Add ``genre`` to the "also tagged" note of ``mbid``'s rows; True if a note changed."""
        changed = False
        for row in self.rows.values():
            if row["mbid"] == mbid and genre not in _also_tagged(row["note"]):
                row["note"] = _ALSO_TAGGED + ", ".join([*_also_tagged(row["note"]), genre])
                changed = True
        return changed

    def save(self) -> None:
        with atomic_path(self.path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows.values())


def _also_tagged(note: str) -> list[str]:
    return note[len(_ALSO_TAGGED):].split(", ") if note.startswith(_ALSO_TAGGED) else []


def fetch_covers(
    out_dir: str | Path,
    genres: Iterable[str],
    per_genre: int,
    *,
    contact: str,
    back: bool = False,
    size: int = 250,
    primary_type: str | None = "album",
    musicbrainz_url: str | None = None,
    coverart_url: str | None = None,
    musicbrainz_interval: float = MUSICBRAINZ_MIN_INTERVAL,
    retry_backoff: float = 1.0,
    progress: bool = False,
) -> FetchSummary:
    """Make sure ``out_dir`` holds ``per_genre`` covers of each genre, fetching only what is missing.

    ``size`` is the thumbnail size (250, 500 or 1200 pixels); ``back`` also stores back covers where the
    archive has them. ``primary_type`` limits the search to albums, EPs, singles... (None: any).
    The service URLs default to the real ones (:data:`musicbrainz.DEFAULT_URL`, :data:`coverart.DEFAULT_URL`).
    ``musicbrainz_interval`` may be lowered for a local mirror, never below one second for musicbrainz.org.
    Raises :class:`ConfigError` for unusable genres or URLs and :class:`FetchError` when MusicBrainz cannot be searched.
    """
    musicbrainz_url = musicbrainz_url or musicbrainz.DEFAULT_URL
    coverart_url = coverart_url or coverart.DEFAULT_URL
    genres = list(dict.fromkeys(musicbrainz.normalize_genre(g) for g in genres))
    if not genres or not all(genres):
        raise ConfigError("give at least one non-empty genre")
    for genre in genres:
        genre_folder(genre)
    if per_genre < 1 or size not in coverart.SIZES:
        raise ValueError(f"per_genre must be at least 1 and size one of {coverart.SIZES}")
    mb_host, caa_host = _host(musicbrainz_url, "--musicbrainz-url"), _host(coverart_url, "--coverart-url")
    if mb_host == "musicbrainz.org" or mb_host.endswith(".musicbrainz.org"):
        musicbrainz_interval = max(musicbrainz_interval, MUSICBRAINZ_MIN_INTERVAL)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _remove_temporaries(out)
    manifest = Manifest(out / MANIFEST_NAME)
    summary = FetchSummary(out=str(out), manifest=str(manifest.path))
    client = PoliteClient(
        user_agent("sleeve", __version__, contact),
        min_interval={origin(musicbrainz_url): musicbrainz_interval},
        backoff=retry_backoff,
    )
    log.info("fetching %d covers each of %s into %s (MusicBrainz %s, Cover Art Archive %s)",
             per_genre, ", ".join(genres), out, mb_host, caa_host)
    bar = tqdm(total=per_genre * len(genres), unit="cover", disable=not progress)
    with client, bar, logging_redirect_tqdm():  # log lines above the bar, not through it
        run = _Run(client, out, manifest, genres, summary.failures, bar, musicbrainz_url, coverart_url,
                   primary_type, back, size)
        for genre in genres:
            report = GenreReport(genre=genre, wanted=per_genre, on_disk=manifest.count(genre))
            summary.genres.append(report)
            try:
                run.fill(report)
            except HttpError as error:
                raise FetchError(
                    f"MusicBrainz search for {genre!r} failed: {error}. Everything fetched so far is saved;"
                    " run the same command again to resume"
                ) from None
    return summary


@dataclass
class _Run:
    """One fetch-covers run: the open client and collection, and what every release group needs."""

    client: PoliteClient
    out: Path
    manifest: Manifest
    genres: list[str]
    failures: list[Failure]
    bar: tqdm
    musicbrainz_url: str
    coverart_url: str
    primary_type: str | None
    back: bool
    size: int

    def fill(self, report: GenreReport) -> None:
        """Go down the genre's search results until it has ``report.wanted`` covers or the results end."""
        genre = report.genre
        self.bar.update(min(report.on_disk, report.wanted))
        if report.have >= report.wanted:
            return  # not even a search
        groups = musicbrainz.search_release_groups(
            self.client, genre, base_url=self.musicbrainz_url, primary_type=self.primary_type
        )
        for group in groups:
            owner = self.manifest.genre_of(group.mbid)
            if owner == genre:
                continue
            if owner is not None:
                report.shared += 1
                if self.manifest.note_also_tagged(group.mbid, genre):
                    self.manifest.save()
                continue
            failed_before = len(self.failures)
            outcome = self.fetch_group(group, genre)
            report.failed += len(self.failures) - failed_before
            if outcome == "fetched":
                report.fetched += 1
                self.bar.update(1)
                if report.have >= report.wanted:
                    return
            elif outcome == "no_art":
                report.no_art += 1
        log.warning("%s: %d of %d covers; MusicBrainz has no more release groups with this tag",
                    genre, report.have, report.wanted)

    def fetch_group(self, group: musicbrainz.ReleaseGroup, genre: str) -> str:
        """Store one release group's images and record them; return "fetched", "no_art" or "failed"."""
        try:
            images = coverart.list_images(self.client, group.mbid, base_url=self.coverart_url)
        except HttpError as error:
            self.failures.append(Failure(genre, group.mbid, "front", str(error)))
            return "failed"
        wanted = [coverart.choose_image(images, "front", self.size)]
        if wanted[0] is None:
            return "no_art"
        if self.back:
            wanted.append(coverart.choose_image(images, "back", self.size))
        others = [g for g in self.genres if g != genre and g in group.tags]
        note = (_ALSO_TAGGED + ", ".join(others)) if others else ""
        rows = []
        for image in filter(None, wanted):
            relative = f"{genre_folder(genre)}/{group.mbid}-{image.kind}.jpg"
            try:
                _store(self.client, image.url, self.out / relative)
            except (HttpError, coverart.InvalidImage) as error:
                self.failures.append(Failure(genre, group.mbid, image.kind, str(error)))
                if image.kind == "front":
                    return "failed"
                continue
            rows.append({
                "path": relative, "genre": genre, "mbid": group.mbid, "artist": group.artist,
                "title": group.title, "year": group.year, "image_type": image.kind, "source_url": image.url,
                "note": note,
            })
        self.manifest.add(rows)
        self.manifest.save()
        return "fetched"


def _store(client: PoliteClient, url: str, target: Path) -> None:
    """Put the image at ``url`` at ``target``, whole or not at all. A file already there from a run that
    stopped before recording it is kept if it decodes, without downloading it again."""
    if target.is_file():
        try:
            coverart.check_image(target.read_bytes())
            return
        except coverart.InvalidImage:
            log.info("replacing %s, which does not decode", target)
    for attempt in range(1, _IMAGE_ATTEMPTS + 1):
        data = client.get(url, accept="image/*").content
        try:
            coverart.check_image(data)
            break
        except coverart.InvalidImage:
            if attempt == _IMAGE_ATTEMPTS:
                raise
            log.info("%s did not decode (%d bytes arrived); downloading it again", url, len(data))
    with atomic_path(target) as temporary:
        temporary.write_bytes(data)


def _host(url: str, option: str) -> str:
    """The host name of a service URL given as ``option``; a :class:`ConfigError` if it is no http(s) URL."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port != 0
    except ValueError:  # a port that is not a number
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ConfigError(f"{option} must be an http(s) URL, not {url!r}")
    return parts.hostname


def _remove_temporaries(out: Path) -> None:
    """Delete temporary files a killed run left behind (atomic writes name them ".<name>.<random>.tmp")."""
    for folder in [out, *(p for p in out.iterdir() if p.is_dir())]:
        for stale in folder.glob(".*.tmp"):
            log.info("removing %s, left by an interrupted run", stale)
            stale.unlink(missing_ok=True)
