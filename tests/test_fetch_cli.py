"""`cli.py fetch-covers`: options, contact from the config, exit codes, JSON summary, and the whole
fetch-covers -> build-index --manifest -> recommend flow against the local fake services."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.fetch_fakes import Album, FakeServices, jpeg_bytes


@pytest.fixture
def services():
    fake = FakeServices([
        Album("Blue Train", "John Coltrane", ["jazz"], year="1957", front=jpeg_bytes(1)),
        Album("Mingus Ah Um", "Charles Mingus", ["jazz"], year="1959", front=jpeg_bytes(2)),
        Album("Paranoid", "Black Sabbath", ["metal"], year="1970", front=jpeg_bytes(3)),
        Album("Master of Puppets", "Metallica", ["metal"], year="1986", front=jpeg_bytes(4)),
    ])
    yield fake
    fake.close()


@pytest.fixture
def no_user_config(tmp_path, monkeypatch):
    """No SLEEVE_CONFIG and an empty config home, whatever the machine running the tests has."""
    monkeypatch.delenv("SLEEVE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))


def fetch(services: FakeServices, out: Path, *extra: str):
    args = ["fetch-covers", "--genre", "jazz", "--genre", "metal", "--per-genre", "2", "--out", str(out),
            "--musicbrainz-url", services.musicbrainz_url, "--coverart-url", services.coverart_url,
            "--musicbrainz-interval", "0.01", "--no-progress", *extra]
    return CliRunner().invoke(main, args)


def test_without_a_contact_it_stops_with_exit_code_2_and_says_how_to_give_one(tmp_path, services, no_user_config):
    result = fetch(services, tmp_path / "covers")
    assert result.exit_code == 2
    assert "--contact" in result.stderr and "[musicbrainz]" in result.stderr
    assert "Traceback" not in result.output
    assert services.log == []


def test_the_contact_comes_from_the_config_file(tmp_path, services, no_user_config, monkeypatch):
    config = tmp_path / "sleeve.toml"
    config.write_text('[musicbrainz]\ncontact = "https://example.org/me"\n')
    result = fetch(services, tmp_path / "covers", "--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    agents = {headers["User-Agent"] for _, _, headers in services.requests("musicbrainz")}
    assert agents == {"sleeve/0.1.0 ( https://example.org/me )"}

    monkeypatch.setenv("SLEEVE_CONFIG", str(config))
    assert fetch(services, tmp_path / "covers").exit_code == 0


def test_json_summary_on_stdout_and_exit_code_0(tmp_path, services):
    result = fetch(services, tmp_path / "covers", "--contact", "tests@example.org", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is True and summary["failures"] == []
    assert [(g["genre"], g["have"], g["fetched"]) for g in summary["genres"]] == [("jazz", 2, 2), ("metal", 2, 2)]
    assert Path(summary["manifest"]) == tmp_path / "covers" / "manifest.csv"


def test_a_failed_cover_gives_exit_code_1_and_is_listed(tmp_path, services):
    services.albums[0].front = services.albums[0].front[:1000]
    result = fetch(services, tmp_path / "covers", "--contact", "tests@example.org")
    assert result.exit_code == 1
    assert f"failed: jazz {services.albums[0].mbid} front: not a whole image" in result.stdout
    assert "jazz: 1 of 2 covers" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--contact", "me@example.org", "--size", "300"], "'300' is not one of"),
        (["--contact", "me@example.org", "--coverart-url", "ftp://example.org"], "--coverart-url must be an http"),
        (["--config", "missing.toml"], "config file not found"),
        (["--contact", "line one\nline two"], "one-line"),
    ],
)
def test_usage_and_config_errors_give_exit_code_2(tmp_path, services, no_user_config, extra, message):
    result = fetch(services, tmp_path / "covers", *extra)
    assert result.exit_code == 2
    assert message in result.stderr
    assert services.log == []


def test_a_broken_config_file_is_a_config_error(tmp_path, services, no_user_config):
    config = tmp_path / "config.toml"
    config.write_text("[musicbrainz\ncontact = ")
    result = fetch(services, tmp_path / "covers", "--config", str(config))
    assert result.exit_code == 2
    assert "cannot read config file" in result.stderr


@pytest.mark.slow
def test_fetched_covers_build_an_index_and_show_their_metadata_in_recommend(tmp_path, services):
    covers, index, cache = tmp_path / "covers", tmp_path / "index", tmp_path / "cache"
    assert fetch(services, covers, "--contact", "tests@example.org").exit_code == 0
    runner = CliRunner()
    built = runner.invoke(main, ["build-index", "--manifest", str(covers / "manifest.csv"), "--index", str(index),
                                 "--model", "efficientnet-lite0", "--cache", str(cache), "--workers", "0",
                                 "--no-progress"])
    assert built.exit_code == 0, built.output
    query = next((covers / "metal").glob("*-front.jpg"))
    found = runner.invoke(main, ["recommend", "--cover", str(query), "--index", str(index), "--cache", str(cache),
                                 "-k", "3", "--json"])
    assert found.exit_code == 0, found.output
    results = json.loads(found.stdout)["results"]
    assert len(results) == 3
    titles = {"Blue Train", "Mingus Ah Um", "Paranoid", "Master of Puppets"}
    assert {r["title"] for r in results} < titles
    assert all({"artist", "year", "mbid", "source_url"} <= set(r) for r in results)
