from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from tests.conftest import make_cover


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("cli")
    for g, genre in enumerate(["rock", "jazz"]):
        for i in range(4):
            make_cover(root / "covers" / genre / f"{genre}-{i}.png", seed=50 + 10 * g + i)
    result = CliRunner().invoke(
        main,
        ["build-index", "--covers", str(root / "covers"), "--index", str(root / "index"), "--cache",
         str(root / "cache"), "--model", "efficientnet-lite0", "--workers", "0", "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["covers"] == 8 and summary["embedded"] == 8 and summary["index_type"] == "flat"
    return root / "covers", root / "index", root / "cache"


def _recommend(built: tuple[Path, Path, Path], *args: str):
    _, index, cache = built
    return CliRunner().invoke(main, ["recommend", "--index", str(index), "--cache", str(cache), *args])


def test_recommend_prints_a_table_and_json(built) -> None:
    covers = built[0]
    table = _recommend(built, "--cover", str(covers / "rock" / "rock-1.png"), "-k", "3")
    assert table.exit_code == 0, table.output
    header = table.stdout.splitlines()[0].split()
    assert header == ["rank", "score", "genre", "path", "match"] and len(table.stdout.splitlines()) == 4
    as_json = _recommend(built, "--cover", str(covers / "rock" / "rock-1.png"), "-k", "7", "--json")
    payload = json.loads(as_json.stdout)
    assert payload["query"] == {"cover": str(covers / "rock" / "rock-1.png")}
    rows = payload["results"]
    assert [row["rank"] for row in rows] == list(range(1, 8))
    assert str(covers / "rock" / "rock-1.png") not in {row["path"] for row in rows}


def test_errors_are_one_line_with_exit_code_1(built, tmp_path: Path) -> None:
    not_an_image = tmp_path / "x.jpg"
    not_an_image.write_text("hi")
    result = _recommend(built, "--cover", str(not_an_image))
    assert result.exit_code == 1 and result.stderr.startswith("error: cannot use") and "Traceback" not in result.output
    text = _recommend(built, "--text", "a skull")
    assert text.exit_code == 1 and "no text tower" in text.stderr
    missing = CliRunner().invoke(main, ["recommend", "--index", str(tmp_path / "none"), "--cover", str(not_an_image)])
    assert missing.exit_code == 1 and "build-index" in missing.stderr


def test_usage_errors_exit_2(built) -> None:
    assert _recommend(built).exit_code == 2
    both = CliRunner().invoke(main, ["build-index", "--covers", "a", "--manifest", "b"])
    assert both.exit_code == 2 and "exactly one" in both.output


def test_help_explains_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("build-index", "recommend"):
        assert command in result.output
        sub = CliRunner().invoke(main, [command, "--help"])
        assert sub.exit_code == 0 and "Example:" in sub.output
