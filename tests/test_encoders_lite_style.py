"""The efficientnet-lite2-style encoder: unit, deterministic vectors; ONNX Runtime equal to PyTorch; its shipped
PCA part of the model's identity; and indexes built with it or with efficientnet-lite0 each answer with their own."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli import main
from index.store import load_index
from recsys.encoders import EncoderError, ModelSpec, WeightsUnavailableError, create_encoder, encoder_for_spec
from recsys.encoders import lite_style
from recsys.encoders.lite_style import EfficientNetLite2StyleEncoder
from tests.conftest import make_cover

FAMILY = "efficientnet-lite2-style"


@pytest.fixture(scope="module")
def encoder() -> EfficientNetLite2StyleEncoder:
    return create_encoder(FAMILY, runtime="torch")


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    rng = np.random.default_rng(5)
    images = [Image.fromarray(rng.integers(0, 256, (150 + 40 * i, 200, 3), dtype=np.uint8)) for i in range(3)]
    images.append(Image.new("RGB", (40, 40), (200, 30, 30)))
    return np.stack([lite_style.PREPROCESS(image) for image in images])


def test_vectors_are_unit_length_deterministic_and_distinct(encoder, pixels) -> None:
    vectors = encoder.encode_images(pixels)
    assert vectors.shape == (4, encoder.spec.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors, encoder.encode_images(pixels))
    assert vectors[0] @ vectors[3] < 0.99, "a noise picture and a flat red one must differ"
    content = encoder.spec.dim - lite_style.read_pca()[1].shape[0]
    style_share = np.linalg.norm(vectors[:, content:], axis=1) ** 2
    expected = lite_style.STYLE_WEIGHT**2 / (1 + lite_style.STYLE_WEIGHT**2)
    np.testing.assert_allclose(style_share, expected, atol=1e-5)  # both parts unit, the style one weighted


def test_onnx_runtime_equals_pytorch(encoder, pixels, tmp_path: Path) -> None:
    onnx = create_encoder(FAMILY, runtime="onnx", cache_dir=tmp_path)
    assert type(onnx).__name__ == "OnnxEncoder" and onnx.spec == encoder.spec
    agreement = np.sum(onnx.encode_images(pixels) * encoder.encode_images(pixels), axis=1)
    assert agreement.min() > 0.9999
    assert encoder_for_spec(encoder.spec, runtime="auto", cache_dir=tmp_path).spec == encoder.spec


def test_the_shipped_pca_is_part_of_the_model(encoder, monkeypatch, tmp_path: Path) -> None:
    assert encoder.spec.family == FAMILY and encoder.spec.key.startswith(f"{FAMILY}:")
    mean, components = lite_style.read_pca()
    other = tmp_path / "other.npz"
    lite_style.write_pca(other, mean, components[::-1])
    monkeypatch.setattr(lite_style, "PCA_FILE", other)
    assert EfficientNetLite2StyleEncoder().spec.weights_sha256 != encoder.spec.weights_sha256
    with pytest.raises(EncoderError, match="differ"):
        encoder_for_spec(encoder.spec, runtime="torch")
    monkeypatch.setattr(lite_style, "PCA_FILE", tmp_path / "missing.npz")
    with pytest.raises(WeightsUnavailableError, match="style PCA"):
        create_encoder(FAMILY, runtime="torch")


def test_auto_tries_it_after_clip_and_before_lite0() -> None:
    from recsys.encoders import ENCODERS

    names = ENCODERS.names()
    assert names.index("clip") < names.index(FAMILY) < names.index("efficientnet-lite0")


def test_the_stored_pca_round_trips_within_int8_precision(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    mean, components = rng.standard_normal(50), rng.standard_normal((8, 50))
    components[3] = 0.0
    lite_style.write_pca(tmp_path / "pca.npz", mean, components)
    read_mean, read_components = lite_style.read_pca(tmp_path / "pca.npz")
    assert read_components.dtype == np.float32 and not read_components[3].any()
    step = np.abs(components).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(read_components - components) <= step / 2 + 1e-6)
    assert np.allclose(read_mean, mean, atol=2e-3)


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Covers, and one cache that an efficientnet-lite0 index and an efficientnet-lite2-style index share."""
    root = tmp_path_factory.mktemp("lite2style")
    for g, genre in enumerate(["rock", "jazz"]):
        for i in range(3):
            make_cover(root / "covers" / genre / f"{genre}-{i}.png", seed=90 + 10 * g + i)
    for model in ("efficientnet-lite0", FAMILY):
        result = CliRunner().invoke(main, [
            "build-index", "--covers", str(root / "covers"), "--index", str(root / model), "--cache",
            str(root / "cache"), "--model", model, "--workers", "0", "--json", "--no-progress",
        ])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["embedded"] == 6
    return root, root / "cache"


def _recommend(index: Path, cache: Path, cover: Path) -> list[dict]:
    result = CliRunner().invoke(
        main, ["recommend", "--index", str(index), "--cache", str(cache), "--cover", str(cover), "-k", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["results"]


def test_each_index_answers_with_its_own_family(indexes) -> None:
    root, cache = indexes
    query = root / "covers" / "rock" / "rock-1.png"
    for model, dim in (("efficientnet-lite0", 1280), (FAMILY, 1864)):
        info = load_index(root / model).info
        spec = ModelSpec.from_dict(info.model)
        assert spec.family == model and info.dim == dim and info.model_key == spec.key
        rows = _recommend(root / model, cache, query)
        assert len(rows) == 3 and str(query) not in {row["path"] for row in rows}
        assert all(-1.0 <= row["score"] <= 1.0001 for row in rows)


def test_a_copy_of_the_query_is_its_nearest_cover(indexes, tmp_path: Path) -> None:
    root, cache = indexes
    copy = tmp_path / "copy.png"
    shutil.copy(root / "covers" / "jazz" / "jazz-2.png", copy)
    rotated = tmp_path / "query.png"
    Image.open(copy).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(rotated)
    rows = _recommend(root / FAMILY, cache, rotated)
    assert rows[0]["path"].endswith("jazz-2.png")

