"""The CNN fine-tune runs end to end on a handful of covers (one tiny epoch); the full run is bench/finetune.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recsys.classify.finetune import FineTunedCNN
from recsys.classify.persist import ClassifierInfo, load_classifier, save_classifier
from recsys.encoders.efficientnet import load_network


def tinted_cover(path: Path, seed: int, colour: tuple[int, int, int]) -> str:
    """A cover of one dominant colour with a few random grey shapes on it."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (96, 96), colour)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y = (int(v) for v in rng.integers(0, 70, 2))
        grey = int(rng.integers(60, 200))
        draw.rectangle([x, y, x + 20, y + 20], fill=(grey, grey, grey))
    image.save(path)
    return str(path)


@pytest.fixture(scope="module")
def red_and_blue(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    folder = tmp_path_factory.mktemp("tinted")
    paths, genres = [], []
    for seed in range(16):
        genre, colour = ("red", (200, 30, 30)) if seed % 2 else ("blue", (30, 30, 200))
        paths.append(tinted_cover(folder / f"{seed}.png", seed, colour))
        genres.append(genre)
    return np.array(paths, dtype=object), np.array(genres, dtype=object)


@pytest.fixture(scope="module")
def tiny(red_and_blue) -> FineTunedCNN:
    """One epoch on eight covers, early-stopping on four."""
    paths, genres = red_and_blue
    model = FineTunedCNN(trainable_blocks=1, views=2, max_epochs=1, batch_size=4)
    return model.fit(paths[:8], genres[:8], eval_set=(paths[8:12], genres[8:12]))


def test_one_tiny_epoch_trains_the_last_block_and_predicts(tiny: FineTunedCNN, red_and_blue) -> None:
    paths, _ = red_and_blue
    model = tiny
    assert [sorted(r) for r in model.history_] == [["epoch", "seconds", "train_loss", "validation_macro_f1"]]
    assert model.best_epoch_ == 1
    assert {name.split(".")[0] for name in model.weights_} == {"_blocks", "_conv_head", "_bn1", "_fc"}
    assert {name.split(".")[1] for name in model.weights_ if name.startswith("_blocks.")} == {"15"}
    pretrained = load_network().state_dict()
    changed = [
        name for name, value in model.weights_.items()
        if name.startswith("_blocks.") and value.dtype.kind == "f" and not np.allclose(value, pretrained[name].numpy())
    ]
    assert any(name.startswith("_blocks.15.") for name in changed)  # the unfrozen block learned, not just the head
    proba = model.predict_proba(paths[12:])
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(paths[12:])) <= {"red", "blue"}


def test_stored_and_loaded_it_predicts_the_same(tiny: FineTunedCNN, red_and_blue, tmp_path: Path) -> None:
    paths, _ = red_and_blue
    info = ClassifierInfo(model="cnn", title="cnn", inputs="images", model_key="k", classes=["blue", "red"],
                          params={}, trained_on=8, validation_macro_f1=None)
    save_classifier(tmp_path, tiny, info)
    loaded, _ = load_classifier(tmp_path, "k")
    assert np.array_equal(loaded.predict_proba(paths[12:]), tiny.predict_proba(paths[12:]))


def test_a_few_epochs_separate_an_easy_pair_of_genres(red_and_blue) -> None:
    paths, genres = red_and_blue
    model = FineTunedCNN(trainable_blocks=1, views=2, max_epochs=4, batch_size=4, head_learning_rate=1e-2)
    model.fit(paths[:12], genres[:12])
    assert len(model.history_) == 4 and model.best_epoch_ == 4  # no eval_set: every epoch, no early stopping
    assert list(model.predict(paths[12:])) == list(genres[12:])


def test_rejects_impossible_settings(red_and_blue) -> None:
    paths, genres = red_and_blue
    with pytest.raises(ValueError, match="trainable_blocks"):
        FineTunedCNN(trainable_blocks=0).fit(paths, genres)
