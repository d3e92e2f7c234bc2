from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recsys.images import BadImageError, load_cover, max_file_bytes, read_cover_bytes
from tests.bad_inputs import gradient, write_bad_files, write_odd_but_valid_files


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("odd")
    return folder, write_odd_but_valid_files(folder)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("bad")
    return folder, write_bad_files(folder)


def test_every_odd_but_valid_file_becomes_upright_rgb(odd_files: tuple[Path, dict]) -> None:
    folder, expected = odd_files
    for name, size in expected.items():
        image = load_cover(folder / name)
        assert image.mode == "RGB", name
        assert image.size == size, name


def test_transparency_is_composited_on_white(odd_files: tuple[Path, dict]) -> None:
    folder, _ = odd_files
    assert np.asarray(load_cover(folder / "alpha.png")).min() == 255
    palette = np.asarray(load_cover(folder / "palette-transparent.gif"))
    assert (palette == 255).all(axis=2).any(), "transparent palette entries should turn white"


def test_sixteen_bit_grey_is_scaled_not_clipped(odd_files: tuple[Path, dict]) -> None:
    folder, _ = odd_files
    row = np.asarray(load_cover(folder / "grey16.png"))[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert 100 < row[20] < 155, "mid-range 16-bit values must map to mid-grey, not saturate"


def test_exif_orientation_is_applied(odd_files: tuple[Path, dict]) -> None:
    folder, _ = odd_files
    upright = np.asarray(load_cover(folder / "rotated-exif.jpg")).astype(int)
    original = np.asarray(gradient()).astype(int)
    rotated = np.rot90(original, k=-1)  # orientation 6 = rotate 90 degrees clockwise
    assert np.abs(upright - rotated).mean() < 10


def test_animated_gif_gives_its_first_frame(odd_files: tuple[Path, dict]) -> None:
    folder, _ = odd_files
    first = np.asarray(load_cover(folder / "animated.gif")).astype(int)
    original = np.asarray(gradient()).astype(int)
    assert np.abs(first - original).mean() < np.abs(first - original[:, ::-1]).mean()


def test_cmyk_becomes_rgb_with_the_same_picture(odd_files: tuple[Path, dict]) -> None:
    folder, _ = odd_files
    rgb = np.asarray(load_cover(folder / "cmyk.jpg")).astype(int)
    assert np.abs(rgb - np.asarray(gradient()).astype(int)).mean() < 20


def test_each_bad_file_is_refused_with_its_reason(bad_files: tuple[Path, dict]) -> None:
    folder, expected = bad_files
    for name, reason in expected.items():
        with pytest.raises(BadImageError, match=reason):
            load_cover(folder / name)


def test_missing_files_and_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadImageError, match="file not found"):
        load_cover(tmp_path / "nope.jpg")
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(BadImageError, match="is a directory"):
        load_cover(tmp_path / "folder.jpg")


def test_pixel_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    assert load_cover(path, max_pixels=10_000).size == (100, 100)
    with pytest.raises(BadImageError, match="too large: 100x100"):
        load_cover(path, max_pixels=9_999)


def test_a_file_longer_than_any_image_within_the_pixel_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as handle:
        handle.truncate(1 << 40)  # sparse: a terabyte that would exhaust memory if it were read
    with pytest.raises(BadImageError, match="too large: over"):
        read_cover_bytes(path, max_bytes=max_file_bytes(64_000_000))
    small = tmp_path / "small.png"
    Image.new("RGB", (10, 10)).save(small)
    assert read_cover_bytes(small, max_bytes=small.stat().st_size) == small.read_bytes()
    with pytest.raises(BadImageError, match="too large"):
        read_cover_bytes(small, max_bytes=small.stat().st_size - 1)


def test_reduce_to_decodes_large_jpegs_smaller_but_never_below_the_target(tmp_path: Path) -> None:
    path = tmp_path / "large.jpg"
    gradient(1600, 1200).save(path)
    reduced = load_cover(path, reduce_to=224)
    assert reduced.size[0] < 1600 and min(reduced.size) >= 224
