"""A stored classifier loads back with identical predictions, only for its own index model, and never
unpickles anything it does not trust."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from recsys.classify.models import ZeroShotClassifier, image_text_frame
from recsys.classify.persist import (
    ClassifierError,
    ClassifierInfo,
    classifier_folder,
    has_classifier,
    load_classifier,
    read_classifier_info,
    save_classifier,
)
from recsys.classify.train import fit_model
from tests.test_classify_models import covers, worded

KEY = "efficientnet-lite0:efficientnet-lite0:0123456789abcdef"


def _info(name: str, classes: list[str], inputs: str = "embeddings") -> ClassifierInfo:
    return ClassifierInfo(
        model=name, title=name, inputs=inputs, model_key=KEY, classes=classes, params={}, trained_on=10,
        validation_macro_f1=0.5,
    )


@pytest.mark.parametrize("name", ["majority", "1nn", "knn", "linear", "svm"])
def test_round_trip_gives_identical_predictions(tmp_path: Path, name: str) -> None:
    fitted = fit_model(name, covers(20, 1), covers(5, 2))
    test = covers(10, 3)
    assert not has_classifier(tmp_path)
    save_classifier(tmp_path, fitted.estimator, _info(name, fitted.classes))
    assert has_classifier(tmp_path)
    loaded, info = load_classifier(tmp_path, KEY)
    assert info.model == name and info.created  # stamped when saved
    assert np.array_equal(loaded.predict_proba(test.embeddings), fitted.estimator.predict_proba(test.embeddings))
    assert np.array_equal(loaded.predict(test.embeddings), fitted.estimator.predict(test.embeddings))


@pytest.mark.parametrize("name", ["text", "svm+text"])
def test_text_models_round_trip_with_identical_predictions(tmp_path: Path, name: str) -> None:
    fitted = fit_model(name, worded(20, 1), worded(5, 2))
    test = worded(10, 3)
    save_classifier(tmp_path, fitted.estimator, _info(name, fitted.classes, inputs=fitted.inputs))
    loaded, info = load_classifier(tmp_path, KEY)
    assert info.inputs == fitted.inputs
    X = test.texts if name == "text" else image_text_frame(test.embeddings, test.texts)
    assert np.array_equal(loaded.predict_proba(X), fitted.estimator.predict_proba(X))


def test_zero_shot_is_stored_without_its_text_encoder(tmp_path: Path) -> None:
    train = covers(5, 1)
    model = ZeroShotClassifier(encode_text=lambda texts: np.eye(len(texts), 32)).fit(train.embeddings, train.genres)
    model.set_params(encode_text=None)
    save_classifier(tmp_path, model, _info("zero-shot", list(model.classes_)))
    loaded, _ = load_classifier(tmp_path, KEY)
    assert np.array_equal(loaded.predict_proba(train.embeddings), model.predict_proba(train.embeddings))


def test_another_models_index_is_refused(tmp_path: Path) -> None:
    fitted = fit_model("linear", covers(20, 1), covers(5, 2))
    save_classifier(tmp_path, fitted.estimator, _info("linear", fitted.classes))
    with pytest.raises(ClassifierError, match="trained on efficientnet-lite0.* but this index holds clip"):
        load_classifier(tmp_path, "clip:ViT-B-32:fedcba9876543210")


class Payload:
    """A type no sleeve classifier holds: loading it would mean trusting arbitrary code."""

    def __init__(self) -> None:
        self.value = 1


def test_untrusted_types_and_damage_are_refused_not_loaded(tmp_path: Path) -> None:
    fitted = fit_model("linear", covers(20, 1), covers(5, 2))
    save_classifier(tmp_path, fitted.estimator, _info("linear", fitted.classes))
    model_file = classifier_folder(tmp_path) / "model.skops"
    sio.dump(Payload(), model_file)
    with pytest.raises(ClassifierError, match="cannot load .* safely .*Payload"):
        load_classifier(tmp_path, KEY)
    info_file = classifier_folder(tmp_path) / "classifier.json"
    info_file.write_text("{not json")
    with pytest.raises(ClassifierError, match="damaged"):
        read_classifier_info(tmp_path)
    info_file.unlink()
    with pytest.raises(ClassifierError, match="sleeve train-classifier"):
        load_classifier(tmp_path, KEY)


def _edited_info(**changes: object) -> str:
    raw = {**dataclasses.asdict(_info("linear", ["jazz", "rock"])), **changes}
    return json.dumps(raw)


_ODD_INFO = {
    "nested too deep": "[" * 100_000 + "]" * 100_000,
    "a list": "[]",
    "unknown inputs": _edited_info(inputs="bogus"),
    "classes not a list": _edited_info(classes="rock"),
    "null count": _edited_info(trained_on=None),
    "not UTF-8": b"\xff\xfe{}",
}


@pytest.mark.parametrize("odd", _ODD_INFO)
def test_an_odd_info_file_is_one_line_naming_it_and_the_fix(tmp_path: Path, odd: str) -> None:
    """Odd fields must be refused at load, where the file can be named, not fail later inside a query."""
    fitted = fit_model("linear", covers(20, 1), covers(5, 2))
    save_classifier(tmp_path, fitted.estimator, _info("linear", fitted.classes))
    info_file = classifier_folder(tmp_path) / "classifier.json"
    content = _ODD_INFO[odd]
    info_file.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ClassifierError) as caught:
        load_classifier(tmp_path, KEY)
    message = str(caught.value)
    assert "\n" not in message and f"{info_file} is damaged" in message
    assert message.endswith(f"train it again with: sleeve train-classifier --index {tmp_path}")


def test_an_estimator_that_was_never_fitted_is_refused_at_load(tmp_path: Path) -> None:
    """An unfitted estimator would otherwise fail only at the first query (NotFittedError)."""
    fitted = fit_model("linear", covers(20, 1), covers(5, 2))
    save_classifier(tmp_path, fitted.estimator, _info("linear", fitted.classes))
    sio.dump(LogisticRegression(), classifier_folder(tmp_path) / "model.skops")
    with pytest.raises(ClassifierError, match="model.skops is damaged .*sleeve train-classifier --index"):
        load_classifier(tmp_path, KEY)


def test_info_file_is_plain_json(tmp_path: Path) -> None:
    fitted = fit_model("knn", covers(20, 1), covers(5, 2))
    save_classifier(tmp_path, fitted.estimator, _info("knn", fitted.classes))
    raw = json.loads((classifier_folder(tmp_path) / "classifier.json").read_text())
    assert raw["model_key"] == KEY and raw["classes"] == fitted.classes and raw["inputs"] == "embeddings"
