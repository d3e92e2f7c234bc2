"""bench/editions.py measures one encoder family per work folder: it reads the family an existing index was built
with, so a run for another family is refused rather than scoring one family's cosines as another's."""

from __future__ import annotations

import json

import pytest

from bench.editions import index_family


def test_index_family_reads_the_family_of_an_existing_index(tmp_path):
    assert index_family(tmp_path / "index") is None
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.json").write_text(json.dumps({"model": {"family": "efficientnet-lite2-style"}}))
    assert index_family(tmp_path / "index") == "efficientnet-lite2-style"


def test_a_run_for_another_family_is_refused(tmp_path, monkeypatch, capsys):
    from bench import editions

    (tmp_path / "manifest.csv").write_text("path\n")
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.json").write_text(json.dumps({"model": {"family": "efficientnet-lite0"}}))
    monkeypatch.setattr("sys.argv", ["editions.py", "--work", str(tmp_path), "--model", "efficientnet-lite2-style"])
    with pytest.raises(SystemExit) as stop:
        editions.main()
    assert stop.value.code == 2
    assert "holds efficientnet-lite0 vectors, not efficientnet-lite2-style" in capsys.readouterr().err
