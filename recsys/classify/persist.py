"""A fitted genre classifier stored beside its index, safe to load and tied to the index's model.

The estimator is written with skops, which rebuilds objects from an explicit list of trusted types instead
of unpickling: a classifier folder from someone else can at worst fail to load, never run code. Beside it,
``classifier.json`` records the index model it was trained on; vectors of another model mean nothing to it,
so loading it for another index is refused.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from index.atomic import atomic_path, write_json
from index.errors import SleeveError
from recsys import __version__

CLASSIFIER_DIR = "classifier"
MODEL_FILE = "model.skops"
INFO_FILE = "classifier.json"

TRUSTED_TYPES = [
    "recsys.classify.models.FaissKNeighbors",
    "recsys.classify.models.ZeroShotClassifier",
    "recsys.classify.models.ImageTextFusion",
    "recsys.classify.finetune.FineTunedCNN",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
]
"""Types beyond skops' own default-trusted scikit-learn and numpy ones that a sleeve classifier holds."""


class ClassifierError(SleeveError):
    """No usable classifier beside the index; the message says how to make one."""


@dataclasses.dataclass(frozen=True)
class ClassifierInfo:
    """What ``classifier.json`` says about the stored estimator."""

    model: str  # recipe name: linear, svm, knn, cnn, ...
    title: str
    inputs: str  # what it reads of a cover: recsys.classify.catalog.CLASSIFIERS (embeddings, images, text, ...)
    model_key: str  # the index model whose vectors it was trained on
    classes: list[str]
    params: dict[str, Any]
    trained_on: int
    validation_macro_f1: float | None
    created: str = ""
    sleeve_version: str = __version__

    def line(self, index_folder: str | Path) -> str:
        """What train-classifier stored, in one line for a person."""
        return (
            f"stored {self.title} for {len(self.classes)} genres in {classifier_folder(index_folder)} "
            f"(validation macro-F1 {self.validation_macro_f1:.3f}, params {self.params})"
        )


def classifier_folder(index_folder: str | Path) -> Path:
    return Path(index_folder) / CLASSIFIER_DIR


def retrain_hint(index_folder: str | Path) -> str:
    return f"train it again with: sleeve train-classifier --index {index_folder}"


def has_classifier(index_folder: str | Path) -> bool:
    folder = classifier_folder(index_folder)
    return (folder / INFO_FILE).is_file() and (folder / MODEL_FILE).is_file()


def save_classifier(index_folder: str | Path, estimator: Any, info: ClassifierInfo) -> Path:
    """Write the estimator and its info into ``INDEX/classifier/``, replacing any previous one.

    The model file is written first and the info file last, so a reader never pairs new info with an old
    model of a different kind.
    """
    folder = classifier_folder(index_folder)
    folder.mkdir(parents=True, exist_ok=True)
    import skops.io as sio  # seconds to import: only where a classifier is written or read

    with atomic_path(folder / MODEL_FILE) as temporary:
        sio.dump(estimator, temporary)
    stamped = dataclasses.replace(info, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json(folder / INFO_FILE, dataclasses.asdict(stamped))
    return folder


def read_classifier_info(index_folder: str | Path) -> ClassifierInfo:
    path = classifier_folder(index_folder) / INFO_FILE
    if not path.is_file():
        raise ClassifierError(
            f"no genre classifier beside the index in {index_folder}; "
            f"train one with: sleeve train-classifier --index {index_folder}"
        )
    try:
        raw = json.loads(path.read_text())
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, nested too deep
        raise ClassifierError(f"{path} is damaged ({_first_line(error)}); {retrain_hint(index_folder)}") from None
    problem = _info_problem(raw)
    if problem:
        raise ClassifierError(f"{path} is damaged ({problem}); {retrain_hint(index_folder)}")
    return ClassifierInfo(**{field.name: raw[field.name] for field in dataclasses.fields(ClassifierInfo)})


_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "model": str, "title": str, "inputs": str, "model_key": str, "classes": list, "params": dict,
    "trained_on": int, "validation_macro_f1": (float, int, type(None)), "created": str, "sleeve_version": str,
}


def _info_problem(raw: Any) -> str | None:
    """What is wrong with the fields of ``classifier.json`` (missing, of another type, unknown inputs)."""
    from recsys.classify.catalog import CLASSIFIERS

    if not isinstance(raw, dict):
        return f"a {type(raw).__name__}, not an object"
    for name, kind in _INFO_TYPES.items():
        value = raw.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {name!r} is {'missing' if name not in raw else repr(value)[:40]}"
    known_inputs = {CLASSIFIERS[name].inputs for name in CLASSIFIERS}
    if raw["inputs"] not in known_inputs:
        return f"inputs {raw['inputs']!r:.40} is none of {', '.join(sorted(known_inputs))}"
    if not raw["classes"] or not all(isinstance(genre, str) for genre in raw["classes"]):
        return "classes must be a list of genre names"
    return None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:160]


def load_classifier(index_folder: str | Path, model_key: str) -> tuple[Any, ClassifierInfo]:
    """The stored estimator and its info, refused unless it was trained on ``model_key`` vectors."""
    info = read_classifier_info(index_folder)
    if info.model_key != model_key:
        raise ClassifierError(
            f"the classifier in {classifier_folder(index_folder)} was trained on {info.model_key} vectors, "
            f"but this index holds {model_key} vectors; train it again with: sleeve train-classifier "
            f"--index {index_folder}"
        )
    import skops.io as sio

    path = classifier_folder(index_folder) / MODEL_FILE
    try:
        estimator = sio.load(path, trusted=TRUSTED_TYPES)
    except FileNotFoundError:
        raise ClassifierError(f"{path} is missing; {retrain_hint(index_folder)}") from None
    except Exception as error:  # skops refuses untrusted types and damaged archives in several ways
        raise ClassifierError(
            f"cannot load {path} safely ({type(error).__name__}: {_first_line(error)}); {retrain_hint(index_folder)}"
        ) from None
    classes = getattr(estimator, "classes_", None)  # absent on an estimator that was never fitted
    if classes is None or [str(genre) for genre in classes] != info.classes:
        raise ClassifierError(
            f"{path} is damaged (its estimator is not fitted on the genres {INFO_FILE} lists); "
            f"{retrain_hint(index_folder)}"
        )
    return estimator, info
