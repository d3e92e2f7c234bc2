"""The tour notebook runs top to bottom (on 60 real covers), so what it shows stays true."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "tour.ipynb"


def test_the_tour_runs_top_to_bottom(shared_subset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    assert code, "the notebook has no code"
    monkeypatch.setenv("SLEEVE_COVERS", str(shared_subset))
    monkeypatch.setenv("SLEEVE_WORK", str(tmp_path / "tour"))
    monkeypatch.chdir(NOTEBOOK.parent)
    namespace: dict = {}
    for source in code:
        exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    assert len(namespace["results"]) == 5
    # the in-memory index and the folder built from the same covers answer alike
    assert list(namespace["from_folder"]["path"]) == list(namespace["results"]["path"])
    assert set(namespace["guesses"]["genre"]) <= set(namespace["genres"]) and len(namespace["guesses"]) == 3
    assert set(namespace["genre_map"].separability.index) == set(namespace["genres"])
    assert "from recsys.recommend" not in "".join(code) and "from recsys.build" not in "".join(code)
    assert namespace["contact_sheet"]([namespace["query"]]).size == (128, 128)
    assert set(namespace["metrics"]["models"]) >= {"majority", "linear"}
    assert (tmp_path / "tour" / "analysis.html").is_file()
