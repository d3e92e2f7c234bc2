"""Cover text: RapidOCR reads printed words, every reading is cached by content hash, an interrupted run
resumes, and bad files are reported without stopping the others."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFont

from index.errors import SleeveError
from recsys.ingest import content_hash
from recsys.ocr import CoverTextReader, TextCache, TextLine, cover_text, read_missing
from tests.bad_inputs import write_bad_files, write_odd_but_valid_files


def lettered_cover(path: Path, lines: list[str], colour: tuple[int, int, int] = (30, 60, 120)) -> Path:
    """A plain cover with large printed lines, as a title and an artist name would be."""
    image = Image.new("RGB", (256, 256), colour)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((20, 60 + 70 * row), line, fill=(255, 240, 200), font=ImageFont.load_default(size=36))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def reader() -> CoverTextReader:
    return CoverTextReader()


def files(*paths: Path) -> pd.DataFrame:
    return pd.DataFrame({"path": [str(p) for p in paths], "content_hash": [content_hash(p) for p in paths]})


class CountingReader:
    """A reader that counts its calls, to prove what a run reads and what it takes from the cache."""

    def __init__(self, reader: CoverTextReader) -> None:
        self.reader, self.key, self.calls = reader, reader.key, 0

    def read(self, path: str | Path) -> list[TextLine]:
        self.calls += 1
        return self.reader.read(path)


def test_printed_words_are_read_top_to_bottom(reader: CoverTextReader, tmp_path: Path) -> None:
    lines = reader.read(lettered_cover(tmp_path / "c.png", ["NASHVILLE", "RODEO"]))
    assert [line.text for line in lines] == ["NASHVILLE", "RODEO"]
    assert all(reader.min_score <= line.score <= 1.0 for line in lines)
    assert cover_text(lines) == "NASHVILLE\nRODEO"


def test_a_cover_without_text_reads_as_nothing(reader: CoverTextReader, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (200, 30, 30)).save(blank)
    assert reader.read(blank) == []


def test_readings_are_cached_and_a_rerun_reads_only_new_covers(reader: CoverTextReader, tmp_path: Path) -> None:
    first = lettered_cover(tmp_path / "a.png", ["DISCO"])
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (0, 0, 0)).save(blank)
    counting = CountingReader(reader)
    with TextCache(tmp_path / "cache") as cache:
        assert read_missing(files(first, blank), counting, cache, progress=False).empty
    assert counting.calls == 2
    second = lettered_cover(tmp_path / "b.png", ["TECHNO"], colour=(10, 90, 10))
    with TextCache(tmp_path / "cache") as cache:  # reopened: readings, empty ones too, survived
        read_missing(files(first, blank, second), counting, cache, progress=False)
        found = cache.get(counting.key, [content_hash(first), content_hash(blank), content_hash(second)])
    assert counting.calls == 3
    assert [cover_text(found[content_hash(p)]) for p in (first, blank, second)] == ["DISCO", "", "TECHNO"]


def test_an_interrupted_run_keeps_what_it_read(reader: CoverTextReader, tmp_path: Path) -> None:
    covers = [lettered_cover(tmp_path / f"{word}.png", [word]) for word in ("SOUL", "FUNK", "BLUES")]

    class Interrupted(CountingReader):
        def read(self, path: str | Path) -> list[TextLine]:
            if self.calls == 2:
                raise KeyboardInterrupt
            return super().read(path)

    with TextCache(tmp_path / "cache") as cache, pytest.raises(KeyboardInterrupt):
        read_missing(files(*covers), Interrupted(reader), cache, progress=False)
    counting = CountingReader(reader)
    with TextCache(tmp_path / "cache") as cache:
        read_missing(files(*covers), counting, cache, progress=False)
        found = cache.get(reader.key, [content_hash(p) for p in covers])
    assert counting.calls == 1 and len(found) == 3


def test_bad_files_are_reported_and_the_others_read(reader: CoverTextReader, tmp_path: Path) -> None:
    bad = write_bad_files(tmp_path / "bad")
    odd = write_odd_but_valid_files(tmp_path / "odd")  # CMYK, 16-bit, alpha, animated, rotated...
    good = lettered_cover(tmp_path / "good.png", ["HITS"])
    paths = [tmp_path / "bad" / name for name in bad] + [tmp_path / "odd" / name for name in odd] + [good]
    with TextCache(tmp_path / "cache") as cache:
        failed = read_missing(files(*paths), reader, cache, progress=False)
        found = cache.get(reader.key, [content_hash(p) for p in paths])
    assert len(failed) == len(bad) and len(found) == len(odd) + 1
    reasons = dict(zip(failed["content_hash"], failed["reason"]))
    for name, fragment in bad.items():
        assert fragment in reasons[content_hash(tmp_path / "bad" / name)]
    assert cover_text(found[content_hash(good)]) == "HITS"


def test_readings_of_another_reader_are_kept_apart(tmp_path: Path) -> None:
    with TextCache(tmp_path) as cache:
        cache.put("reader-a", "h1", [TextLine("ROCK", 0.9)])
        assert cache.get("reader-b", ["h1"]) == {}
        assert cache.get("reader-a", ["h1", "h2"]) == {"h1": [TextLine("ROCK", 0.9)]}


def test_read_text_command_prints_each_covers_lines_and_reports_bad_files(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli import main

    cover = lettered_cover(tmp_path / "cover.png", ["OUTLAW", "COUNTRY"])
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (200, 30, 30)).save(blank)
    shown = CliRunner().invoke(main, ["read-text", str(cover), str(blank)])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == f"{cover}:" and lines[1].endswith("OUTLAW") and lines[2].endswith("COUNTRY")
    assert lines[3:] == [f"{blank}:", "  (no text found)"]
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture")
    as_json = CliRunner().invoke(main, ["read-text", str(notes), str(cover), "--json"])
    assert as_json.exit_code == 1 and f"cannot read {notes}: not an image" in as_json.stderr
    payload = json.loads(as_json.stdout)
    assert payload[0] == {"cover": str(notes), "error": "not an image (unknown or corrupt format)"}
    assert [line["text"] for line in payload[1]["lines"]] == ["OUTLAW", "COUNTRY"]
    fast = CliRunner().invoke(main, ["read-text", str(cover), "--ocr", "fast", "--json"])
    assert fast.exit_code == 0 and "OUTLAW" in [line["text"] for line in json.loads(fast.stdout)[0]["lines"]]


def test_every_setting_that_can_change_a_reading_gets_its_own_cache_key(
    reader: CoverTextReader, tmp_path: Path
) -> None:
    """The default reader (OpenVINO, float32) keeps sleeve 0.1's key, so caches filled on ONNX Runtime stay valid;
    any setting that can change a reading (bf16, detector size) gets another; threads cannot and do not."""
    from recsys.ocr import OPENVINO, TODAY, ReaderSettings, reader_key

    base = "rapidocr-onnxruntime-1.4.4:cls0:score0.5"
    assert reader.settings == OPENVINO and reader.key == base == reader_key(settings=TODAY)
    bf16 = dataclasses.replace(OPENVINO, precision="bf16")
    assert reader_key(settings=bf16) == f"{base}:detmin736:rec6:openvino-bf16"
    assert reader_key(settings=dataclasses.replace(OPENVINO, threads=1)) == reader_key(settings=OPENVINO)
    native = CoverTextReader(settings=ReaderSettings(det_side=256, rec_batch=24))
    assert native.key == f"{base}:detmin256:rec24"
    assert CoverTextReader(settings=ReaderSettings(threads=1)).key == reader.key
    cover = lettered_cover(tmp_path / "c.png", ["NASHVILLE", "RODEO"])
    assert cover_text(native.read(cover)) == cover_text(reader.read(cover)) == "NASHVILLE\nRODEO"
    with pytest.raises(ValueError, match="onnxruntime"):
        CoverTextReader(settings=dataclasses.replace(TODAY, precision="bf16"))


def test_a_query_is_read_on_the_runtime_that_starts_first_and_a_collection_on_openvino() -> None:
    from recsys.ocr import FAST, FEW_COVERS, OPENVINO, TODAY, settings_for

    assert settings_for(1) == TODAY and settings_for(FEW_COVERS - 1) == TODAY
    assert settings_for(FEW_COVERS) == OPENVINO and settings_for(4450) == OPENVINO
    assert settings_for(1, FAST) == FAST  # only exact readings have a second runtime that gives the same


def test_a_reader_key_does_not_scan_installed_packages_per_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamlit's script threads modify sys.path while they run; a package-metadata scan per query in another
    session's thread could then miss RapidOCR's wheel (a PackageNotFoundError seen in the two-session app test)."""
    from importlib.metadata import PackageNotFoundError

    from recsys import ocr

    first = ocr.reader_key()

    def missing(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(ocr, "version", missing)
    assert ocr.reader_key() == first and ocr.reader_name(first) == "exact"


def test_the_fast_reader_has_its_own_key_and_still_reads_printed_words(tmp_path: Path) -> None:
    from recsys.ocr import FAST, OPENVINO, reader_key, reader_name
    from recsys.ocr_readers import OCR_READERS
    from recsys.textstore import reader_settings_of

    assert {name: entry.load() for name, entry in OCR_READERS.items()} == {"exact": OPENVINO, "fast": FAST}
    assert reader_name(reader_key(settings=FAST)) == "fast" and reader_name(reader_key()) == "exact"
    assert reader_key(settings=FAST) != reader_key(settings=dataclasses.replace(FAST, rec_width_step=0))
    assert reader_name("rapidocr-onnxruntime-1.4.4:cls0:score0.5:detmin480:rec6") is None
    assert reader_settings_of(None) == OPENVINO and reader_settings_of(None, "fast") == FAST
    with pytest.raises(SleeveError, match="exact, fast"):
        reader_settings_of(None, "quick")
    cover = lettered_cover(tmp_path / "cover.png", ["THE BAND", "Live at Home"])
    text = cover_text(CoverTextReader(settings=FAST).read(cover)).lower()
    assert "band" in text and "home" in text


def test_openvino_reads_real_covers_as_onnx_runtime_does(shared_manifest: pd.DataFrame) -> None:
    """The OpenVINO speed-up changes no reading: a fixed set of 40 real covers (every n-th by path, all genres)
    reads line for line the same as by sleeve 0.1's ONNX Runtime reader, scores within 1e-3."""
    from recsys.ocr import OPENVINO, TODAY

    paths = shared_manifest.sort_values("path")["path"]
    sample = list(paths.iloc[:: len(paths) // 40][:40])
    onnx_runtime_reader, openvino_reader = CoverTextReader(settings=TODAY), CoverTextReader(settings=OPENVINO)
    found = 0
    for path in sample:
        onnx_runtime, openvino = onnx_runtime_reader.read(path), openvino_reader.read(path)
        assert [line.text for line in openvino] == [line.text for line in onnx_runtime], path
        assert all(abs(a.score - b.score) < 1e-3 for a, b in zip(openvino, onnx_runtime)), path
        found += bool(openvino)
    assert found >= 25, "the sample should be mostly covers with text"


def test_the_detector_input_table_gives_rapidocrs_values_bit_for_bit(tmp_path: Path) -> None:
    """The OpenVINO reader scales the detector's input by a table of the 256 byte values: the array handed to
    the detector must be RapidOCR's own, every float equal, at sleeve's detector sizes and on odd shapes."""
    import numpy as np
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    from recsys.ocr import _DetectorInput

    image = np.asarray(Image.open(lettered_cover(tmp_path / "cover.png", ["THE BAND", "Live"])).convert("RGB"))
    noise = np.random.default_rng(0).integers(0, 256, (97, 301, 3), dtype=np.uint8)
    for picture in (image, noise):
        for side, limit in ((736, "min"), (544, "min"), (960, "max")):
            theirs = DetPreProcess(side, limit, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
            ours = _DetectorInput(DetPreProcess(side, limit, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]))(picture)
            expected = theirs(picture)
            assert ours.dtype == expected.dtype and ours.flags.c_contiguous
            assert np.array_equal(ours, expected), (picture.shape, side, limit)


_FREE_READERS_THEN_TAKE_A_SIGNAL = """
import gc, signal, subprocess
from recsys.ocr import OPENVINO, CoverTextReader
first, second = CoverTextReader(settings=OPENVINO), CoverTextReader(settings=OPENVINO)
del first; gc.collect()
del second; gc.collect()
signal.signal(signal.SIGCHLD, lambda *_: None)
subprocess.run(["true"], check=True)
print("alive")
"""


def test_readers_freed_in_any_order_leave_the_process_able_to_take_signals() -> None:
    """OpenVINO's CPU plugin gives the thread that compiles a model an alternate signal stack and puts the
    previous one back when the model is freed: two models freed in the order they were made left the thread a
    freed stack, and the next handled signal (here SIGCHLD) killed the process with SIGSEGV. Compiled models
    are kept for the process (recsys.ocr._compiled_model), so freeing readers frees none."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", _FREE_READERS_THEN_TAKE_A_SIGNAL], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "alive"), done.stderr


def test_a_reader_is_built_only_when_a_cover_is_unread_and_sized_to_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recsys.ocr as ocr

    built = []

    class Reader:
        key = ocr.reader_key()

        def __init__(self, settings: ocr.ReaderSettings) -> None:
            built.append(settings)

        def read(self, path: Path) -> list[TextLine]:
            return [TextLine("X", 0.9)]

    monkeypatch.setattr(ocr, "CoverTextReader", Reader)
    one = [lettered_cover(tmp_path / "one.png", ["ONE"])]
    many = [lettered_cover(tmp_path / f"{n}.png", ["MANY", str(n)]) for n in range(ocr.FEW_COVERS)]
    with TextCache(tmp_path / "cache") as cache:
        for covers in (one, one, many):
            assert read_missing(files(*covers), None, cache, progress=False).empty
    assert built == [ocr.TODAY, ocr.OPENVINO]  # the second run found everything cached and built none


def test_a_cover_rewritten_after_it_was_hashed_is_reported_and_its_text_never_cached(
    reader: CoverTextReader, tmp_path: Path
) -> None:
    cover = lettered_cover(tmp_path / "a.png", ["DISCO"])
    hashed = files(cover)  # the build hashed these bytes...
    lettered_cover(cover, ["TECHNO"], colour=(10, 90, 10))  # ...then a sync tool rewrote the file in place
    counting = CountingReader(reader)
    with TextCache(tmp_path / "cache") as cache:
        failed = read_missing(hashed, counting, cache, progress=False)
        assert list(failed["reason"]) == ["changed on disk while it was being indexed; build again"]
        assert cache.get(counting.key, list(hashed["content_hash"])) == {}
    assert counting.calls == 0
