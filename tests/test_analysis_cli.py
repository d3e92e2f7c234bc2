"""`sleeve analyze` on a small index of real covers, with the real UMAP + HDBSCAN defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli import main


def sleeve(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def real_index(shared_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("real-index")
    built = sleeve("build-index", "--covers", str(shared_subset), "--index", str(folder / "index"),
                   "--cache", str(folder / "cache"), "--model", "efficientnet-lite0", "--workers", "0",
                   "--no-progress")
    assert built.exit_code == 0, built.output
    return folder / "index"


@pytest.mark.shared
@pytest.mark.slow
def test_analyze_writes_report_and_png_then_reuses_the_cached_layout(real_index: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    args = ["analyze", "--index", str(real_index), "--out", str(out), "--format", "html", "--format", "png",
            "--no-progress", "--json"]
    first = sleeve(*args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["covers"] == 60 and summary["genres"] == 5
    assert sorted(summary["ranking"]) == ["country", "electronic", "hip-hop", "pop", "rock"]
    assert len(summary["sentences"]) == 5
    assert summary["written"] == {"html": str(out), "png": str(out.with_suffix(".png"))}
    assert out.stat().st_size > 1_000_000 and out.with_suffix(".png").stat().st_size > 10_000
    assert not summary["layout_from_cache"]
    assert list((real_index / "analysis").glob("reduced-*.npz"))

    again = sleeve("analyze", "--index", str(real_index), "--out", str(out), "--no-progress")
    assert again.exit_code == 0, again.output
    assert "layout from cache" in again.stdout
    assert f"wrote {out}" in again.stdout
    assert "best to worst separated: " + ", ".join(summary["ranking"]) in again.stdout

    other_size = sleeve("analyze", "--index", str(real_index), "--out", str(out), "--no-progress",
                        "--min-cluster-size", "3")
    assert other_size.exit_code == 0, other_size.output
    cache = real_index / "analysis"
    assert len(list(cache.glob("reduced-*.npz"))) == 1  # UMAP reused
    assert len(list(cache.glob("clusters-*.npz"))) == 2  # only the clustering was redone


def test_analyze_without_an_index_says_how_to_build_one(tmp_path: Path) -> None:
    result = sleeve("analyze", "--index", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # a handled error, not a crash
    assert "build-index" in result.stderr
    assert not (tmp_path / "r.html").exists()


def test_analyze_with_a_broken_metrics_file_is_a_one_line_error(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text("{")
    result = sleeve("analyze", "--index", str(tmp_path), "--metrics", str(metrics))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot read metrics file {metrics}")
    assert result.stderr.count("\n") == 1 and isinstance(result.exception, SystemExit)


def test_metrics_model_without_metrics_is_a_usage_error(tmp_path: Path) -> None:
    result = sleeve("analyze", "--index", str(tmp_path), "--metrics-model", "svm")
    assert result.exit_code == 2 and "--metrics-model needs --metrics" in result.stderr
