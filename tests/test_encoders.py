from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from recsys.encoders import (
    EncoderError,
    TextNotSupportedError,
    WeightsUnavailableError,
    create_encoder,
    encoder_for_spec,
    pretrained,
)
from recsys.encoders.efficientnet import EfficientNetLite0Encoder
from tests.bad_inputs import gradient


def _batch(encoder, images: list[Image.Image]) -> torch.Tensor:
    return torch.stack([encoder.preprocess(image) for image in images])


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [gradient(64, 48), gradient(64, 48).transpose(Image.Transpose.FLIP_TOP_BOTTOM), Image.new("RGB", (30, 30))]


@pytest.fixture(scope="module")
def effnet() -> EfficientNetLite0Encoder:
    return EfficientNetLite0Encoder()


def test_efficientnet_gives_deterministic_unit_vectors(effnet, images) -> None:
    vectors = effnet.encode_images(_batch(effnet, images))
    assert vectors.shape == (3, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors, effnet.encode_images(_batch(effnet, images)))
    assert vectors[0] @ vectors[1] < 0.999, "different pictures must give different vectors"
    assert effnet.spec.dim == 1280 and effnet.spec.family == "efficientnet-lite0"


def test_efficientnet_has_no_text_tower(effnet) -> None:
    assert not effnet.supports_text
    with pytest.raises(TextNotSupportedError, match="CLIP"):
        effnet.encode_text(["a skull"])


def test_onnx_runtime_agrees_with_pytorch_and_int8_is_another_model(effnet, images, tmp_path: Path) -> None:
    from recsys.encoders import with_runtime

    onnx = with_runtime(effnet, "onnx", tmp_path)
    batch = _batch(effnet, images)
    agreement = np.sum(onnx.encode_images(batch) * effnet.encode_images(batch), axis=1)
    assert agreement.min() > 0.9999
    assert onnx.spec == effnet.spec, "fp32 ONNX vectors are interchangeable with PyTorch ones"
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1
    int8 = with_runtime(effnet, "onnx-int8", tmp_path)
    assert int8.spec.key != effnet.spec.key and int8.spec.quantization == "int8"
    int8_vectors = int8.encode_images(batch)
    np.testing.assert_allclose(np.linalg.norm(int8_vectors, axis=1), 1.0, atol=1e-5)
    agreement = np.sum(int8_vectors * effnet.encode_images(batch), axis=1)
    assert (agreement > 0.3).all() and (agreement < 0.9999).any(), "int8 approximates fp32, it does not equal it"


def test_tiny_clip_checkpoint_loads_through_the_weights_path(tiny_clip, images) -> None:
    """Proves the CLIP plumbing with random weights (shapes, normalisation, determinism, text), not quality."""
    config, checkpoint = tiny_clip
    encoder = create_encoder("clip", arch=str(config), weights=str(checkpoint), runtime="torch")
    assert encoder.spec.family == "clip" and encoder.spec.dim == 32 and encoder.spec.weights == str(checkpoint)
    vectors = encoder.encode_images(_batch(encoder, images))
    assert vectors.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors, encoder.encode_images(_batch(encoder, images)))
    texts = encoder.encode_text(["a dark cover with a skull", "a sunny beach"])
    assert encoder.supports_text and texts.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)
    assert texts[0] @ texts[1] < 0.9999


def test_a_checkpoint_of_another_architecture_is_refused(tiny_clip, tmp_path: Path) -> None:
    config, checkpoint = tiny_clip
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    state["ln_final.weight"] = torch.ones(7)
    wrong = tmp_path / "wrong.pt"
    torch.save({"state_dict": state}, wrong)
    with pytest.raises(EncoderError, match="does not fit"):
        create_encoder("clip", arch=str(config), weights=str(wrong))
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("hello")
    with pytest.raises(EncoderError, match="does not fit"):
        create_encoder("clip", arch=str(config), weights=str(not_a_checkpoint))


def test_missing_clip_weights_give_instructions_not_a_traceback(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(pretrained, "_reachable", lambda host, timeout=3.0: False)
    with pytest.raises(WeightsUnavailableError) as caught:
        pretrained.resolve_checkpoint("ViT-B-32", "laion2b_s34b_b79k", None, cache_dir=str(tmp_path))
    message = str(caught.value)
    assert "--weights" in message and "efficientnet-lite0" in message and "open_clip.create_model" in message
    with pytest.raises(WeightsUnavailableError, match="known tags"):
        pretrained.resolve_checkpoint("ViT-B-32", "no-such-tag", None)
    with pytest.raises(WeightsUnavailableError, match="not found"):
        pretrained.resolve_checkpoint("ViT-B-32", None, str(tmp_path / "missing.pt"))


def test_auto_falls_back_to_the_offline_encoder_with_a_notice(monkeypatch, caplog) -> None:
    def unavailable(*args, **kwargs):
        raise WeightsUnavailableError("CLIP weights ViT-B-32/laion2b_s34b_b79k are not in the local cache.\nmore")

    monkeypatch.setattr("recsys.encoders.clip.resolve_checkpoint", unavailable)
    with caplog.at_level(logging.WARNING):
        encoder = create_encoder("auto", runtime="torch")
    assert encoder.spec.family == "efficientnet-lite2-style"
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 1 and "efficientnet-lite2-style" in notices[0] and "\n" not in notices[0]


def test_auto_falls_back_to_lite0_when_the_style_pca_is_missing(monkeypatch, caplog, tmp_path: Path) -> None:
    def unavailable(*args, **kwargs):
        raise WeightsUnavailableError("CLIP weights ViT-B-32/laion2b_s34b_b79k are not in the local cache.")

    monkeypatch.setattr("recsys.encoders.clip.resolve_checkpoint", unavailable)
    monkeypatch.setattr("recsys.encoders.lite_style.PCA_FILE", tmp_path / "missing.npz")
    with caplog.at_level(logging.WARNING):
        encoder = create_encoder("auto", runtime="torch")
    assert encoder.spec.family == "efficientnet-lite0"
    notices = [r.getMessage() for r in caplog.records]
    assert len(notices) == 2 and "style PCA" in notices[1] and "efficientnet-lite0" in notices[1]


def test_index_model_is_rebuilt_and_other_weights_are_refused(effnet) -> None:
    assert encoder_for_spec(effnet.spec, runtime="torch").spec == effnet.spec
    other = dataclasses.replace(effnet.spec, weights_sha256="0" * 64)
    with pytest.raises(EncoderError, match="differ"):
        encoder_for_spec(other, runtime="torch")
    with pytest.raises(EncoderError, match="unknown model family"):
        encoder_for_spec(dataclasses.replace(effnet.spec, family="resnet"), runtime="torch")


def test_unknown_model_runtime_and_misplaced_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="unknown model"):
        create_encoder("resnet")
    with pytest.raises(EncoderError, match="unknown runtime"):
        create_encoder("efficientnet-lite0", runtime="tensorrt")
    with pytest.raises(EncoderError, match="--weights applies to CLIP"):
        create_encoder("efficientnet-lite0", weights=str(tmp_path / "w.pt"))


def test_decoding_workers_receive_a_small_transform_not_the_model(effnet, tiny_clip, tmp_path: Path) -> None:
    """Workers started with 'spawn' (macOS, or inside another process pool) pickle what they are given."""
    import pickle

    from recsys.encoders import with_runtime

    config, checkpoint = tiny_clip
    clip = create_encoder("clip", arch=str(config), weights=str(checkpoint), runtime="onnx", cache_dir=tmp_path)
    for encoder in (with_runtime(effnet, "onnx", tmp_path), clip):
        assert len(pickle.dumps(encoder.transform)) < 10_000
