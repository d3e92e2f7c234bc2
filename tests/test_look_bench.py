"""bench/look.py's own parts: its ``lite0`` is sleeve's encoder exactly, stopping the network early changes no
map, the precision leaves out covers with the query's content, and whitening whitens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from bench import look
from recsys.encoders.efficientnet import EfficientNetLite0Encoder


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(3)
    return [Image.fromarray(rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)) for _ in range(3)]


def test_lite0_pooled_maps_are_sleeves_encoder(images):
    encoder = EfficientNetLite0Encoder()
    network = look.load_network("lite0")
    pixels = torch.from_numpy(np.stack([look.preprocess_for("lite0")(image) for image in images]))
    ours = look.network_features(network, "lite0", pixels, {"lite0.head_mean"})["lite0.head_mean"]
    theirs = encoder.encode_images(torch.from_numpy(np.stack([encoder.array_transform(i) for i in images])))
    np.testing.assert_allclose(look.unit(ours), theirs, atol=1e-5)


def test_stopping_early_keeps_the_mid_level_maps(images):
    network = look.load_network("lite0")
    pixels = torch.from_numpy(np.stack([look.preprocess_for("lite0")(image) for image in images]))
    early = look.network_features(network, "lite0", pixels, {"lite0.b10.mean", "lite0.b7.gram"})
    full = look.network_features(network, "lite0", pixels, {"lite0.b10.mean", "lite0.b7.gram", "lite0.head_mean"})
    np.testing.assert_allclose(early["lite0.b10.mean"], full["lite0.b10.mean"], atol=1e-6)
    assert early["lite0.b7.gram"].shape == (3, 80 * 81 // 2)


def test_precision_leaves_out_the_querys_content():
    vectors = np.array([[1, 0], [1, 0.01], [0, 1]] + [[0.5, 0.5]] * 10, dtype=np.float32)
    labels = np.array(["a", "a", "b"] + ["c"] * 10)
    hashes = np.array(["x", "x", "y"] + [f"z{i}" for i in range(10)])  # covers 0 and 1 are one content
    hits = look.precision_at_k(vectors, labels, hashes)
    assert hits[0] == 0 and hits[1] == 0  # the copy is not a neighbour
    assert hits[3] == pytest.approx(0.9)  # nine other "c" covers among its ten


def test_whitening_whitens_the_collection():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 20)) @ rng.standard_normal((20, 20))
    white = look.pca_fit(x, 8, 0.5)(x)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(8), atol=1e-4)


def _collection(n: int, genres: np.ndarray) -> look.Collection:
    paths = [look.Path(f"/nowhere/{i}.jpg") for i in range(n)]
    return look.Collection("genre", paths, genres, np.arange(n).astype(str), np.arange(n) % 2 == 0, genres)


def test_svm_macro_f1_separates_what_is_separable_and_is_cached(tmp_path):
    rng = np.random.default_rng(0)
    genres = np.repeat(np.array(["rock", "pop", "jazz"]), 60)
    centres = rng.standard_normal((3, 16)) * 4
    x = centres[np.repeat(np.arange(3), 60)] + rng.standard_normal((180, 16))
    split = np.array(["train", "train", "train", "validation", "test"] * 36, dtype=object)
    collection = _collection(180, genres)
    separable = look.svm_macro_f1(x, collection, split, tmp_path)
    assert separable[0] == pytest.approx(1.0) and len(list(tmp_path.glob("svm-*.json"))) == 1
    assert look.svm_macro_f1(x, collection, split, tmp_path) == pytest.approx(separable)
    noise = look.svm_macro_f1(rng.standard_normal((180, 16)), collection, split, tmp_path)
    assert noise[0] < 0.7 and len(list(tmp_path.glob("svm-*.json"))) == 2


def test_the_shipped_candidate_is_sleeves_lite2_style_encoder(images):
    from recsys.encoders import lite_style
    from recsys.encoders.lite_style import EfficientNetLite2StyleEncoder

    look.define_parts()
    network = look.load_network("lite2")
    pixels = np.stack([look.preprocess_for("lite2")(image) for image in images])
    candidate = look.Candidate(look.SHIPPED, [("lite2 multi-layer GeM", 1.0), (
        f"lite2 Gram b{lite_style.GRAM_BLOCK} shipped PCA{look.PROJECTED}", lite_style.STYLE_WEIGHT)])
    features = look.network_features(network, "lite2", torch.from_numpy(pixels), candidate.needs())
    theirs = EfficientNetLite2StyleEncoder().encode_images(pixels)
    cosines = np.sum(look.candidate_matrix(candidate, features) * theirs, axis=1)
    assert cosines.min() > 0.9999  # the bench keeps Gram numbers as float16
