"""A corpus of awkward cover files, generated on the fly: each kind a real collection contains."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc
import pytest
from PIL import Image

from index.faiss_index import build_faiss_index
from index.store import IndexFormatError

# name -> reason fragment expected in the skip report
BAD_FILES = {
    "truncated.jpg": "corrupt or truncated",
    "empty.png": "empty file",
    "notes.jpg": "not an image",
    "corrupt.png": "corrupt or truncated",
    "bomb.png": "too large",
}

# files that are odd but valid: name -> expected (width, height) after decoding
ODD_BUT_VALID = {
    "cmyk.jpg": (40, 30),
    "grey16.png": (40, 30),
    "alpha.png": (40, 30),
    "palette-transparent.gif": (40, 30),
    "animated.gif": (40, 30),
    "rotated-exif.jpg": (30, 40),
    "cover.webp": (40, 30),
    "cover.bmp": (40, 30),
    "cover.tiff": (40, 30),
}


def gradient(width: int = 40, height: int = 30) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2))


def write_bad_files(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    gradient(200, 200).save(buffer, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("these are liner notes, not a picture\n")
    png = io.BytesIO()
    gradient().save(png, format="PNG")
    data = bytearray(png.getvalue())
    data[60:90] = b"\x00" * 30  # damage the image data after the header
    (folder / "corrupt.png").write_bytes(bytes(data))
    Image.new("1", (12_000, 12_000)).save(folder / "bomb.png")  # 144 Mpx, a few KB on disk
    return BAD_FILES


def write_odd_but_valid_files(folder: Path) -> dict[str, tuple[int, int]]:
    folder.mkdir(parents=True, exist_ok=True)
    base = gradient()
    base.convert("CMYK").save(folder / "cmyk.jpg")
    grey16 = (np.linspace(0, 65535, 40)[None, :].repeat(30, 0)).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "grey16.png")
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.new("L", base.size, 0))
    rgba.save(folder / "alpha.png")
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    palette.save(folder / "palette-transparent.gif", transparency=0)
    frames = [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    base.save(folder / "rotated-exif.jpg", exif=exif)
    base.save(folder / "cover.webp")
    base.save(folder / "cover.bmp")
    base.save(folder / "cover.tiff")
    return ODD_BUT_VALID


NOT_UTF8 = os.fsdecode(b"caf\xe9-latin1.png")  # a Latin-1 name, as old Windows archives make them
HOSTILE_SKIPS = {
    "pipe.jpg": "named pipe",
    "zero.jpg": "character device",
    "socket.png": "socket",
    "photo.heic": "unsupported image format .heic",
    "dangling.jpg": "file not found",
    NOT_UTF8: "not valid UTF-8",
}
"""Files :func:`write_hostile_files` makes that must be skipped (name -> reason fragment)."""
HOSTILE_VALID = ("wide.png", "tall.png", "dot.png")
"""Files :func:`write_hostile_files` makes that every command must accept: 20000x1, 1x20000, 1x1."""


def write_hostile_files(folder: Path) -> None:
    """Special files that hang a reader that opens them, an unsupported format, a name that is not UTF-8,
    and images of extreme shapes."""
    folder.mkdir(parents=True, exist_ok=True)
    os.mkfifo(folder / "pipe.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "dangling.jpg").symlink_to(folder / "nowhere.jpg")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "socket.png"))
    (folder / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    gradient().save(folder / NOT_UTF8)
    Image.new("RGB", (20000, 1), (200, 30, 30)).save(folder / "wide.png")
    Image.new("RGB", (1, 20000), (30, 30, 200)).save(folder / "tall.png")
    Image.new("RGB", (1, 1), (0, 0, 0)).save(folder / "dot.png")


def files_to_fingerprint(folder: Path) -> tuple[list[str], pd.DataFrame, dict[str, str]]:
    """Paths of every kind fingerprinting meets, with the rows an earlier build would know of them, and the
    reason each unreadable one must get: (paths, known, reasons by file name).

    Among the known rows: ``remembered.png`` unchanged under a wrong hash, which survives only if the file is not
    read again, and ``changed.png`` whose modification time moved on, which must be hashed again."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(["a.png", "b.png", "remembered.png", "changed.png"]):
        gradient(40 + seed, 30).save(folder / name)
    (folder / "copy.png").write_bytes((folder / "a.png").read_bytes())
    (folder / "dir.jpg").mkdir()
    os.mkfifo(folder / "pipe.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "dangling.jpg").symlink_to(folder / "nowhere.jpg")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "socket.png"))
    reasons = {
        "gone.jpg": "file not found",
        "dir.jpg": "is a directory",
        "pipe.jpg": "not a regular file (named pipe)",
        "zero.jpg": "not a regular file (character device)",
        "dangling.jpg": "file not found",
        "socket.png": "not a regular file (socket)",
        "x" * 300 + ".jpg": "unreadable: File name too long",
        "nul\0.jpg": "not a usable path: embedded null byte",
    }
    names = ["a.png", "gone.jpg", "copy.png", "dir.jpg", "remembered.png", "pipe.jpg", "b.png", "zero.jpg",
             "changed.png", "dangling.jpg", "socket.png", "x" * 300 + ".jpg", "nul\0.jpg"]  # fmt: skip
    remembered, changed = (folder / "remembered.png").stat(), (folder / "changed.png").stat()
    known = pd.DataFrame({
        "path": [str(folder / "remembered.png"), str(folder / "changed.png"), str(folder / "vanished.png")],
        "size": [remembered.st_size, changed.st_size, 10],
        "mtime_ns": [remembered.st_mtime_ns, changed.st_mtime_ns - 1_000_000_000, 1],
        "content_hash": ["remembered, not read again", "stale", "vanished"],
    })  # fmt: skip
    return [str(folder / name) for name in names], known, reasons


@contextlib.contextmanager
def raises_repair_error(file_prefix: str) -> Iterator[None]:
    """The block must raise IndexFormatError in one line that names the damaged ``file_prefix`` file and says
    to build again with --rebuild."""
    with pytest.raises(IndexFormatError) as caught:
        yield
    message = str(caught.value)
    assert "\n" not in message and file_prefix in message and "--rebuild" in message, message


def _index_file(folder: Path, kind: str) -> Path:
    return folder / json.loads((folder / "index.json").read_text())["files"][kind]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _fewer_faiss_rows(folder: Path) -> None:
    dim = faiss.read_index(str(_index_file(folder, "faiss"))).d
    index, _ = build_faiss_index(np.eye(3, dim, dtype=np.float32), "flat")
    faiss.write_index(index, str(_index_file(folder, "faiss")))


def rewrite_shown(path: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    """A shown-rows file (index.shown) rewritten with ``change`` applied to its table, still a well-formed Arrow
    file: the damage a writer of another version or a careless edit leaves."""
    table = pa.ipc.open_file(pa.BufferReader(path.read_bytes())).read_all()  # a copy: the file is rewritten
    table = change(table)
    with pa.ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)


def text_offsets_out_of_order(table: pa.Table, column: str = "genre") -> pa.Table:
    """``table`` whose ``column`` (text) has its second value offset past the end of its bytes: an Arrow file
    whose layout checks pass, but whose rows would be read outside the file."""
    values = table.column(column).combine_chunks()
    validity, offsets, data = values.buffers()
    width = np.int64 if values.type in (pa.large_string(), pa.large_binary()) else np.int32
    moved = np.frombuffer(offsets, dtype=width).copy()
    moved[values.offset + 1] = moved[-1] + 4096
    broken = pa.Array.from_buffers(values.type, len(values), [validity, pa.py_buffer(moved.tobytes()), data],
                                   offset=values.offset)
    return table.set_column(table.schema.get_field_index(column), table.schema.field(column), broken)


def _edit_info(**changes: object) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        info = json.loads((folder / "index.json").read_text())
        for key, value in changes.items():
            if value is ...:
                info.pop(key)
            elif key.startswith("files."):
                info["files"][key.removeprefix("files.")] = value
            else:
                info[key] = value
        (folder / "index.json").write_text(json.dumps(info))

    return edit


INDEX_DAMAGES: dict[str, Callable[[Path], None]] = {
    "truncated faiss": lambda f: _truncate(_index_file(f, "faiss")),
    "foreign faiss": lambda f: _index_file(f, "faiss").write_bytes(b"\x89PNG not an index" * 50),
    "fewer faiss rows than metadata": _fewer_faiss_rows,
    "truncated parquet": lambda f: _truncate(_index_file(f, "metadata")),
    "truncated npy": lambda f: _truncate(_index_file(f, "embeddings")),
    "npy of another shape": lambda f: np.save(_index_file(f, "embeddings"), np.zeros((6, 4), np.float32)),
    "metadata without sleeve columns": lambda f: pd.DataFrame({"x": range(6)}).to_parquet(_index_file(f, "metadata")),
    "missing field": _edit_info(dim=...),
    "null field": _edit_info(count=None),
    "null files": _edit_info(files=None),
    "file outside the folder": _edit_info(**{"files.faiss": "../elsewhere.faiss"}),
    "absolute file name": _edit_info(**{"files.embeddings": "/etc/passwd"}),
    "count disagrees": _edit_info(count=7),
    "index.json is a list": lambda f: (f / "index.json").write_text("[]"),
    "index.json deleted data file": lambda f: _index_file(f, "embeddings").unlink(),
    "index.json nested 100,000 deep": lambda f: (f / "index.json").write_text("[" * 100_000 + "]" * 100_000),
    "index.json is a folder": lambda f: ((f / "index.json").unlink(), (f / "index.json").mkdir()),
    "non-integer search parameter": _edit_info(search_params={"efSearch": "many"}),
    "nprobe on a flat index": _edit_info(search_params={"nprobe": 8}),
    "truncated shown rows": lambda f: _truncate(_index_file(f, "shown")),
    "shown rows of another index": lambda f: rewrite_shown(_index_file(f, "shown"), lambda t: t.slice(0, 2)),
    "shown rows without a path": lambda f: rewrite_shown(_index_file(f, "shown"), lambda t: t.drop_columns("path")),
    "shown text offsets out of order": lambda f: rewrite_shown(_index_file(f, "shown"), text_offsets_out_of_order),
}
"""Ways an index folder gets damaged: each must give one line that says how to repair it."""


def faiss_file_on_a_full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the temporary FAISS file of the next index write a link to /dev/full, where every write fails with
    ENOSPC as on a full disk; the other files are written normally.

    The link replaces the file once index.atomic has set its mode (its last step before the write), so
    that the mode change never reaches /dev/full itself.
    """
    change_mode = os.chmod

    def chmod(path: str, mode: int, **kwargs: object) -> None:
        change_mode(path, mode, **kwargs)
        if Path(path).name.startswith(".vectors-"):
            os.unlink(path)
            os.symlink("/dev/full", path)

    monkeypatch.setattr(os, "chmod", chmod)


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[Path]:
    """``folder`` (made if absent), refusing every write inside it while the block runs: mode 555, or for root,
    whom modes do not stop, the immutable attribute (skipped where the filesystem or the process lacks it)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield folder
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a folder read-only for root here (no chattr +i)")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def rewrite_npz(path: Path, **changes: np.ndarray | None) -> None:
    """An index .npz file with some arrays replaced (or removed, given None), otherwise well formed: the
    damage a writer of another version or a careless edit leaves."""
    with open(path, "rb") as handle:
        arrays = {name: np.array(values) for name, values in np.load(handle).items()}
    arrays.update(changes)
    np.savez(path, **{name: values for name, values in arrays.items() if values is not None})
