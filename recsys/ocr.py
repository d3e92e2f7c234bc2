"""Read the text printed on covers (artist, title, label marks) once, and keep it by content hash.

Text is a second view of a cover that the image encoders barely see: an artist name or a word such as
"Nashville", "remix" or "mixtape" says much about a genre. The reader is RapidOCR (PP-OCRv4 detection and
recognition), whose models ship inside its PyPI wheel, so it works with no network. Collections are read
with those models on OpenVINO (``OPENVINO``), which reads them as RapidOCR's own ONNX Runtime does at 2.3x the
speed (bench/ocr.py) but takes longer to start, so a few covers are read on ONNX Runtime (``settings_for``);
``FAST`` reads 2.4x faster again, with readings that differ but are worth as much. Reading still costs
about 0.1 s (exact) or 0.04 s (fast) per cover on 2 cores, so every result, empty ones included,
is cached in SQLite by (reader, content hash) and committed per cover: a re-run or an interrupted run only
reads what is new.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
import threading
from collections.abc import Iterable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from recsys.cache import SqliteCache
from recsys.images import DEFAULT_MAX_PIXELS, BadImageError, load_cover, max_file_bytes, read_cover_bytes, to_rgb
from recsys.ingest import bytes_hash, printable_path
from recsys.ocr_readers import OCR_READERS

log = logging.getLogger(__name__)

MIN_SCORE = 0.5
"""Recognised lines below this confidence are dropped (RapidOCR's own default)."""
_MAX_SIDE, _MIN_SIDE, _MAX_ASPECT = 4000, 32, 8


@dataclasses.dataclass(frozen=True)
class TextLine:
    text: str
    score: float


@dataclasses.dataclass(frozen=True)
class ReaderSettings:
    """What RapidOCR and its runtime are asked to do; every field that can change a reading is part of the
    reader's cache key (see ``tag``).

    ``det_side``/``det_limit``: RapidOCR scales the image so that its ``min`` (or ``max``) side is ``det_side``
    before detection (its default, min 736, blows a 256 px cover up to 736 px); ``rec_batch``: text lines
    recognised per model call; ``runtime``: "onnxruntime" (RapidOCR's own) or "openvino"; ``precision``: the
    float type OpenVINO computes in ("f32", or "bf16" where the CPU has it: faster, but readings change);
    ``threads``: inference threads (0: the runtime's default, all cores); ``pinned``: OpenVINO pins its threads to
    cores (off by default, see _compiled_model); ``rec_width_step``: OpenVINO pads each batch of text lines to a
    width that is a multiple of this (0: RapidOCR's own widths), so that a collection's lines come in a few
    dozen shapes rather than hundreds, each of which OpenVINO prepares on first sight (see _OpenVinoModel).
    """

    det_side: int = 736
    det_limit: str = "min"
    rec_batch: int = 6
    runtime: str = "onnxruntime"
    precision: str = "f32"
    threads: int = 0
    pinned: bool = False
    rec_width_step: int = 0

    def tag(self) -> str:
        """The settings that can change a reading. The runtime at float32 is not one of them, as the thread count
        is not: OpenVINO's float32 readings are ONNX Runtime's (all 5,205 shared covers line for line, scores
        within 0.0006; tests/test_ocr.py), so a collection read on one is never read again on the other."""
        tag = f"det{self.det_limit}{self.det_side}:rec{self.rec_batch}"
        if self.rec_width_step:
            tag += f"w{self.rec_width_step}"
        return tag if self.precision == "f32" else f"{tag}:{self.runtime}-{self.precision}"


TODAY = ReaderSettings()
"""RapidOCR's defaults on ONNX Runtime, angle classifier off: it starts fastest, so it reads a few covers."""
OPENVINO = ReaderSettings(runtime="openvino")
"""The same models and settings on OpenVINO float32: the same readings at 2.3x the speed (bench/ocr.py);
sleeve's exact reader for collections."""
FAST = ReaderSettings(runtime="openvino", precision="bf16", det_side=544, rec_width_step=64)
"""Faster readings that differ from the exact ones on two covers in three, but not measurably in what they are
worth: bfloat16 arithmetic, detection at a 544 px side instead of 736, and text lines padded to widths in steps of
64. 5.5x ``TODAY``'s covers per second in one process and 5.9x in two (bench/ocr.py, 2026-12-05); same-artist
precision@10 by words 0.577 against 0.594, text genre macro-F1 0.442 against 0.444, inside issue 10's limits of
0.02 and 0.01 (docs/words.md). On a CPU without bfloat16 units OpenVINO computes in float32 (bench/ocr.py's
"det min 544" rows: 3x, 0.579)."""
FEW_COVERS = 5
"""Below this many covers to read, ONNX Runtime is done first: it starts in about 0.2 s, OpenVINO in about 0.65 s
(it compiles the two models), and OpenVINO saves about 0.1 s a cover (measured on 2 cores, 2026-12-05)."""


def settings_for(covers: int, settings: ReaderSettings = OPENVINO) -> ReaderSettings:
    """The settings that finish ``covers`` covers first with the readings of ``settings``: for exact readings,
    ONNX Runtime for a query and OpenVINO for more; other settings as they are."""
    if settings.tag() != TODAY.tag():
        return settings
    return TODAY if covers < FEW_COVERS else OPENVINO


def reader_name(key: str) -> str | None:
    """The name in OCR_READERS of the reader whose readings carry cache ``key``; None for any other reader."""
    return next((name for name, entry in OCR_READERS.items() if reader_key(settings=entry.load()) == key), None)


class CoverTextReader:
    """RapidOCR with sleeve's settings (by default on OpenVINO, for many covers); ``key`` names the models and
    settings that produced a reading.

    The angle classifier is off: cover text is upright or rotated by 90 degrees, not upside down, and the
    classifier costs a tenth of the time. See ReaderSettings.tag for what the key holds.
    """

    def __init__(self, min_score: float = MIN_SCORE, settings: ReaderSettings = OPENVINO) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.min_score = min_score
        self.settings = settings
        threads = {"intra_op_num_threads": settings.threads} if settings.threads else {}
        self._engine = RapidOCR(
            use_cls=False,
            text_score=min_score,
            det_limit_side_len=settings.det_side,
            det_limit_type=settings.det_limit,
            rec_batch_num=settings.rec_batch,
            **threads,
        )
        if settings.runtime == "openvino":
            _run_on_openvino(self._engine, settings)
        elif settings.runtime != "onnxruntime" or settings.precision != "f32":
            raise ValueError(f"unknown OCR runtime {settings.runtime!r} at {settings.precision}: "
                             "use onnxruntime (f32) or openvino (f32 or bf16)")
        self.key = reader_key(min_score, settings)

    def read(self, path: str | Path | bytes | Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[TextLine]:
        """The text lines on the cover at ``path`` (or in a file's bytes already read, or an image), top to
        bottom; raises BadImageError if it cannot be read."""
        image = to_rgb(path) if isinstance(path, Image.Image) else load_cover(path, max_pixels)
        try:
            lines, _ = self._engine(_readable_shape(image))
        except Exception as error:  # RapidOCR raises its own error types for shapes it cannot handle
            raise BadImageError(f"OCR failed: {type(error).__name__}: {error}") from None
        return [TextLine(str(text), round(float(score), 4)) for _, text, score in lines or []]


class _OpenVinoModel:
    """One of RapidOCR's ONNX models compiled by OpenVINO, called the way RapidOCR calls its ONNX Runtime
    sessions (one input array in, a list of output arrays out)."""

    def __init__(self, model_path: str | Path, settings: ReaderSettings, width_step: int = 0) -> None:
        compiled = _compiled_model(str(model_path), settings.precision, settings.threads, settings.pinned)
        self._request = compiled.create_infer_request()
        self._width_step = width_step

    def __call__(self, batch: np.ndarray) -> list[Any]:
        width = batch.shape[-1]
        if self._width_step and width % self._width_step:
            # OpenVINO prepares its kernels anew for every input shape it has not seen, which makes a bfloat16
            # recogniser's call about 4x slower; padded as RapidOCR pads a batch's shorter lines (zeros, right)
            padded = np.zeros((*batch.shape[:-1], -(-width // self._width_step) * self._width_step), batch.dtype)
            padded[..., :width] = batch
            batch = padded
        self._request.infer([batch], share_inputs=True)  # RapidOCR's batches are fresh contiguous arrays: no copy
        return [self._request.get_output_tensor(0).data.copy()]


class _DetectorInput:
    """RapidOCR's detector input (resized to a multiple of 32, scaled to [-1, 1], channels first) with the
    scaling looked up in a table of the 256 byte values per channel: RapidOCR computes it in float64 over every
    pixel, 6-9 ms of a cover's 50-100 ms on 2 cores, and the table holds the very same float32 values
    (tests/test_ocr.py compares them bit for bit)."""

    def __init__(self, preprocess: Any) -> None:
        self._preprocess = preprocess
        every_byte = np.arange(256, dtype=np.uint8).reshape(1, 256, 1).repeat(3, axis=2)
        self._table = preprocess.normalize(every_byte).astype(np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        import cv2

        resized = self._preprocess.resize(image)
        if resized is None:
            return None
        return np.ascontiguousarray(cv2.LUT(resized, self._table).transpose(2, 0, 1)[np.newaxis])


_COMPILING = threading.Lock()


def _compiled_model(model_path: str, precision: str, threads: int, pinned: bool) -> Any:
    """The model compiled for the CPU once per process, and kept (one thread at a time compiles, so two readers
    built at once in a Dask worker or the app share one model rather than free a second).

    Freeing it is what crashed processes: the CPU plugin gives the compiling thread an alternate signal stack of
    its own and, when the model is freed, puts back the one it found, which may belong to a model freed before;
    the thread is then left with a stack that no longer exists, and the next signal with a handler (SIGCHLD,
    SIGTERM) kills it (SIGSEGV, SI_KERNEL).
    Threads are not pinned to cores (OpenVINO's default is to pin): pinned, two reading processes on one machine
    (two Dask workers) put their threads on the same cores and read 13-15% slower, and a process alone reads
    as fast either way (bench/ocr.py, docs/words.md)."""
    with _COMPILING:
        return _compile(model_path, precision, threads, pinned)


@functools.cache
def _compile(model_path: str, precision: str, threads: int, pinned: bool) -> Any:
    import openvino

    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision, "ENABLE_CPU_PINNING": pinned}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return openvino.Core().compile_model(model_path, "CPU", config)


def _run_on_openvino(engine: Any, settings: ReaderSettings) -> None:
    """Swap the detection and recognition sessions of a built RapidOCR engine for OpenVINO ones compiled from
    the same model files, and its detector's input scaling for a table lookup (_DetectorInput). RapidOCR 1.4's
    OpenVINO variant (rapidocr-openvino) imports an API OpenVINO 2026 no longer has and cannot be told the
    precision, so sleeve replaces the two sessions itself (the attributes are RapidOCR 1.4.4's, pinned;
    tests/test_ocr.py compares the readings with ONNX Runtime's). ONNX Runtime readers stay as RapidOCR ships
    them: they read queries and are bench/ocr.py's baseline."""
    import rapidocr_onnxruntime
    from rapidocr_onnxruntime.utils import read_yaml, update_model_path

    config = update_model_path(read_yaml(str(Path(rapidocr_onnxruntime.__file__).parent / "config.yaml")))
    engine.text_det.infer = _OpenVinoModel(config["Det"]["model_path"], settings)
    engine.text_rec.session = _OpenVinoModel(config["Rec"]["model_path"], settings, settings.rec_width_step)
    preprocess_for = engine.text_det.get_preprocess
    engine.text_det.get_preprocess = lambda longest_side: _DetectorInput(preprocess_for(longest_side))


@functools.cache
def _wheel_version() -> str:
    """RapidOCR's wheel version, looked up once per process: importlib.metadata scans sys.path, which Streamlit's
    script threads modify while they run, so a lookup per query could miss the package (PackageNotFoundError)."""
    return version("rapidocr-onnxruntime")


def reader_key(min_score: float = MIN_SCORE, settings: ReaderSettings = OPENVINO) -> str:
    """The cache key of a reader's readings, known without loading its models (the wheel's version pins them)."""
    key = f"rapidocr-onnxruntime-{_wheel_version()}:cls0:score{min_score:g}"
    return key if settings.tag() == TODAY.tag() else f"{key}:{settings.tag()}"


def _readable_shape(image: Image.Image) -> Image.Image:
    """Shrink a huge image and pad a thin one onto white, so that every image build-index accepts can be
    read: RapidOCR's detector fails on a side that scales to zero pixels (a 1x20000 banner)."""
    if max(image.size) > _MAX_SIDE:
        image = image.copy()
        image.thumbnail((_MAX_SIDE, _MAX_SIDE))
    width, height = image.size
    least = max(_MIN_SIDE, max(width, height) // _MAX_ASPECT)
    if width >= least and height >= least:
        return image
    canvas = Image.new("RGB", (max(width, least), max(height, least)), (255, 255, 255))
    canvas.paste(image, (0, 0))
    return canvas


def cover_text(lines: Iterable[TextLine]) -> str:
    """One string per cover, lines joined by newlines, as the text classifier reads it."""
    return "\n".join(line.text for line in lines)


def read_covers(reader: CoverTextReader, paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Each cover's text lines as plain data, {"cover", "lines": [{"text", "score"}]}, or {"cover", "error"}
    for a file that cannot be read: one bad file never stops the others."""
    results: list[dict[str, Any]] = []
    for path in paths:
        cover = printable_path(str(path))  # a name that is not UTF-8 must still print
        try:
            lines = reader.read(path)
        except BadImageError as error:
            results.append({"cover": cover, "error": str(error)})
            continue
        results.append({"cover": cover, "lines": [dataclasses.asdict(line) for line in lines]})
    return results


class TextCache(SqliteCache):
    """OCR readings keyed by (reader key, content hash) in ``<folder>/cover_text.sqlite``."""

    table, key_column = "readings", "reader"

    def __init__(self, folder: str | Path) -> None:
        schema = "reader TEXT NOT NULL, hash TEXT NOT NULL, lines TEXT NOT NULL, PRIMARY KEY (reader, hash)"
        super().__init__(folder, "cover_text.sqlite", schema)

    def put(self, reader: str, content_hash: str, lines: Sequence[TextLine]) -> None:
        payload = json.dumps([[line.text, line.score] for line in lines], ensure_ascii=False)
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO readings (reader, hash, lines) VALUES (?, ?, ?)",
                (reader, content_hash, payload),
            )

    def get(self, reader: str, hashes: Sequence[str]) -> dict[str, list[TextLine]]:
        """The cached readings among ``hashes`` (absent ones are simply not in the result)."""
        rows = self._select("hash, lines", reader, list(dict.fromkeys(hashes)))
        return {content_hash: [TextLine(*line) for line in json.loads(payload)] for content_hash, payload in rows}


def unread_files(files: pd.DataFrame, cache: TextCache, key: str) -> pd.DataFrame:
    """The rows of ``files`` (columns path, content_hash), one per distinct hash, whose reading by the reader of
    ``key`` is not cached yet."""
    distinct = files.drop_duplicates("content_hash")
    cached = cache.get(key, list(distinct["content_hash"]))
    return distinct[~distinct["content_hash"].isin(cached)]


def read_hashed(
    reader: CoverTextReader, content_hash: str, path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[TextLine]:
    """The text of the cover whose bytes hash to ``content_hash``, read from one read of ``path``: a file rewritten
    since it was hashed is refused (BadImageError), so a reading is never cached under another content's hash."""
    data = read_cover_bytes(path, max_file_bytes(max_pixels))
    if bytes_hash(data) != content_hash:
        raise BadImageError("changed on disk while it was being indexed; build again")
    return reader.read(load_cover(data, max_pixels))


def read_missing(
    files: pd.DataFrame,
    reader: CoverTextReader | None,
    cache: TextCache,
    progress: bool = True,
    settings: ReaderSettings = OPENVINO,
) -> pd.DataFrame:
    """OCR every distinct ``content_hash`` of ``files`` (columns path, content_hash) not yet cached, with
    ``reader`` or, when None, a reader of ``settings`` sized to the work (settings_for), built only if a cover
    is unread.

    Returns the files that could not be read (columns content_hash, reason); the others are all cached.
    """
    todo = unread_files(files, cache, reader.key if reader else reader_key(settings=settings))
    if todo.empty:
        return pd.DataFrame(columns=["content_hash", "reason"])
    reader = reader or CoverTextReader(settings=settings_for(len(todo), settings))
    failures = []
    for content_hash, path in tqdm(
        zip(todo["content_hash"], todo["path"]),
        total=len(todo),
        unit="img",
        desc="reading cover text",
        file=sys.stderr,
        disable=not progress or todo.empty,
    ):
        try:
            lines = read_hashed(reader, content_hash, path)
        except BadImageError as error:
            failures.append((content_hash, str(error)))
            continue
        cache.put(reader.key, content_hash, lines)
    if failures:
        log.warning("%d cover(s) could not be read for text, e.g. %s", len(failures), failures[0][1])
    return pd.DataFrame(failures, columns=["content_hash", "reason"])
