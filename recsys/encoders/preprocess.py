"""An encoder's image preprocessing in numpy and Pillow alone, so that an ONNX Runtime query never imports torch.

Each :class:`Preprocess` reproduces one torch-side transform exactly (same Pillow resize, same crop offsets,
same float32 arithmetic): EfficientNet-Lite's ``ImageOps.fit`` + ``(x - 127) / 128``, and open_clip's
``Resize(shortest side) + CenterCrop`` (or ``squash``) + ``ToTensor`` + ``Normalize``. It is a small frozen
dataclass: picklable for decoding workers, and stored as plain data beside an ONNX export.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from PIL import Image, ImageOps

_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """One RGB image to a (3, size, size) float32 array.

    ``resize``: "fit" (centre square crop then resize, as ``ImageOps.fit``), "shortest" (shorter side to
    ``size``, then centre crop, as torchvision's ``Resize(int)`` + ``CenterCrop``) or "squash" (both sides to
    ``size``). ``unit_scale``: divide pixels by 255 before normalising (torchvision's ``ToTensor``).
    """

    size: int
    resize: str
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    unit_scale: bool

    def __call__(self, image: Image.Image) -> np.ndarray:
        resample = _RESAMPLING[self.interpolation]
        if self.resize == "fit":
            image = ImageOps.fit(image, (self.size, self.size), method=resample)
        elif self.resize == "squash":
            image = image.resize((self.size, self.size), resample)
        else:
            image = _centre_crop(_resize_shortest(image, self.size, resample), self.size)
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
        if self.unit_scale:
            pixels = pixels / np.float32(255)
        pixels = (pixels - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocess:
        return cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})

    @classmethod
    def from_open_clip(cls, config: dict[str, Any]) -> Preprocess | None:
        """open_clip's inference transform for a model's ``preprocess_cfg``, or None for the modes not
        reproduced here (``longest`` with padding, non-square inputs): those keep the torch transform."""
        size = config["size"]
        size = size[0] if isinstance(size, (tuple, list)) and size[0] == size[-1] else size
        mode = config.get("resize_mode") or "shortest"
        interpolation = "bilinear" if config.get("interpolation") == "bilinear" else "bicubic"
        if not isinstance(size, int) or mode not in ("shortest", "squash"):
            return None
        mean, std = config["mean"], config["std"]
        return cls(
            size=size,
            resize=mode,
            interpolation=interpolation,
            mean=tuple(mean) if isinstance(mean, (tuple, list)) else (mean,) * 3,
            std=tuple(std) if isinstance(std, (tuple, list)) else (std,) * 3,
            unit_scale=True,
        )


def _resize_shortest(image: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """torchvision ``Resize(size)`` on a PIL image: the shorter side becomes ``size``, the longer one is
    truncated (``int``), as in ``_compute_resized_output_size``."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    target = (new_short, new_long) if width <= height else (new_long, new_short)
    return image if target == (width, height) else image.resize(target, resample)


def _centre_crop(image: Image.Image, size: int) -> Image.Image:
    """torchvision ``CenterCrop(size)`` on an image at least ``size`` on each side (offsets rounded)."""
    width, height = image.size
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))
