"""bench/words_fit.py: its synthetic texts print real lines only, and each stage runs in a child process of the
checkout it names, whose models it compares array for array."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.words_fit import REPO, run_stage, same_model, synthetic_texts


def test_synthetic_texts_print_as_many_real_lines_as_a_source_cover_does() -> None:
    source = ["Greatest Hits\nVol 2\n!!", "LIVE", ""]
    texts = synthetic_texts(source, 50)
    lines = [text.splitlines() for text in texts]
    assert len(texts) == 50 and {len(found) for found in lines} <= {0, 1, 2}
    assert {line for found in lines for line in found} <= {"Greatest Hits", "Vol 2", "LIVE"}


def test_stages_run_in_a_child_and_equal_fits_compare_equal(tmp_path: Path) -> None:
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(["PETER TOSH\nMystic Man", "", "Sepultura\nRoots"]))
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    for model in (first, second):
        run = run_stage(REPO, "model", texts_file, model)
        assert run["seconds"] > 0 and run["peak_mb"] >= run["inputs_mb"] > 0
    assert same_model(first, second)
    engine = run_stage(REPO, "engine", texts_file, first)
    assert engine["seconds"] > 0 and not first.with_suffix(".tantivy").exists()
    with np.load(first) as arrays:
        np.savez(second, **{name: arrays[name] for name in arrays.files} | {"idf": arrays["idf"] * 2})
    assert not same_model(first, second)
