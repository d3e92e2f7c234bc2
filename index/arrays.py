"""Files of named flat arrays that a reader maps in place: an uncompressed ``.npz`` (``numpy.load`` reads it)
written so that each array's data starts on a 64-byte boundary. A query process then pays for the pages it
touches, not for the whole file. The words model (index.words), the covers' texts (index.rowtext) and the
look statistics (index.lookstats) use it.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np

_ALIGN = 64
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then name and extra-field lengths
_ZIP64_EXTRA = 20  # what zipfile adds to a local header written with force_zip64
_PADDING_ID = 0xA220  # an extra-field id zip readers skip (Android's zipalign uses one the same way)


class ArrayFileError(ValueError):
    """A file of arrays that cannot be read; the message says what is wrong."""


def write_arrays(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (flat, in this order) to ``path`` as an uncompressed .npz with aligned data."""
    with open(path, "wb") as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, values in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            fixed = handle.tell() + _LOCAL_HEADER.size + len(member.filename.encode()) + _ZIP64_EXTRA + 4
            padding = -fixed % _ALIGN
            member.extra = struct.pack("<HH", _PADDING_ID, padding) + bytes(padding)
            with archive.open(member, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.ascontiguousarray(values), allow_pickle=False)


def member_names(handle: IO[bytes]) -> dict[str, zipfile.ZipInfo]:
    """The members of an open file of arrays, by array name."""
    try:
        with zipfile.ZipFile(handle) as archive:
            return {Path(info.filename).stem: info for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise ArrayFileError(f"not an .npz of arrays ({error})") from None


def map_member(handle: IO[bytes], info: zipfile.ZipInfo) -> np.ndarray:
    """Memory-map one stored .npy member of the archive in place."""
    if info.compress_type != zipfile.ZIP_STORED:
        raise ArrayFileError(f"{info.filename} is compressed, so it cannot be mapped")
    handle.seek(info.header_offset)
    try:
        signature, name_length, extra_length = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
        if signature != b"PK\x03\x04":
            raise ValueError("no local header")
        start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        handle.seek(start)
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)
    except (ValueError, OSError, EOFError, SyntaxError, struct.error) as error:
        raise ArrayFileError(f"{info.filename} is not a .npy array ({error})") from None
    if fortran or dtype.hasobject or len(shape) != 1:
        raise ArrayFileError(f"{info.filename} is not a flat array of numbers or strings")
    offset, size = handle.tell(), shape[0] * dtype.itemsize
    if offset + size != start + info.file_size:
        raise ArrayFileError(f"{info.filename}: {shape[0]} {dtype} values do not fill its {info.file_size} bytes")
    if size == 0:
        return np.zeros(shape, dtype)  # an empty file region cannot be mapped
    return np.asarray(np.memmap(handle, dtype=dtype, mode="r", offset=offset, shape=shape))
