"""Fit any sleeve genre model by name: hyper-parameters chosen on the validation covers, never the test ones.

Every model learns from the training covers only. The validation covers choose among each recipe's
hyper-parameter values by macro-F1 (the headline metric, which weighs every genre equally) and give the
fine-tuned CNN its early-stopping epoch. ``train_classifier`` does the same on a whole index and stores the
result beside it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import f1_score

from index.errors import SleeveError
from index.store import load_index, one_writer
from recsys.classify.data import LabelledCovers, from_index, model_inputs, with_cover_text
from recsys.classify.finetune import FineTunedCNN
from recsys.classify.catalog import CLASSIFIERS, FUSION
from recsys.classify.models import (
    RECIPES,
    ImageTextFusion,
    ModelUnavailableError,
    Recipe,
    ZeroShotClassifier,
)
from recsys.classify.persist import ClassifierInfo, save_classifier
from recsys.classify.split import dhashes, near_duplicate_groups, train_validation
from recsys.encoders import Encoder, ModelSpec
from recsys.settings import Settings

log = logging.getLogger(__name__)



@dataclasses.dataclass
class FittedModel:
    """A fitted estimator with what chose it: its hyper-parameters and validation macro-F1."""

    name: str
    estimator: Any
    params: dict[str, Any]
    validation_macro_f1: float
    seconds: float

    @property
    def title(self) -> str:
        return CLASSIFIERS[self.name].summary

    @property
    def inputs(self) -> str:
        return CLASSIFIERS[self.name].inputs

    def predict_proba(self, covers: LabelledCovers) -> np.ndarray:
        """Probabilities with columns in ``classes`` order."""
        return self.estimator.predict_proba(model_inputs(covers, self.inputs))

    @property
    def classes(self) -> list[str]:
        return [str(genre) for genre in self.estimator.classes_]


def fit_model(
    name: str,
    train: LabelledCovers,
    validation: LabelledCovers,
    encoder: Encoder | None = None,
    cnn_params: dict[str, Any] | None = None,
    progress: bool = False,
) -> FittedModel:
    """Fit model ``name`` on ``train``, choosing its hyper-parameters on ``validation``.

    ``encoder`` is the index's encoder, needed only by zero-shot (for its text tower); models that read
    cover text need covers from :func:`with_cover_text`. Raises :class:`ModelUnavailableError` when the
    model cannot run here.
    """
    started = time.perf_counter()
    fit = CLASSIFIERS[name].load()
    estimator, params, score = fit(name, train, validation, encoder=encoder, cnn_params=cnn_params, progress=progress)
    seconds = time.perf_counter() - started
    log.info("%s: %s, validation macro-F1 %.3f, %.0fs", name, params, score, seconds)
    return FittedModel(name, estimator, params, score, seconds)


Fit = tuple[Any, dict[str, Any], float]
"""What a fitter returns: the estimator, its chosen hyper-parameters and its validation macro-F1."""


def fit_tuned(name: str, train: LabelledCovers, validation: LabelledCovers, **_: Any) -> Fit:
    """Grid search on the fixed validation split; the winner is refitted on the training covers if the
    search used a cheaper variant of it."""
    recipe = RECIPES[name]
    estimator, params, score = _searched(recipe, train, validation)
    if recipe.search_params:
        estimator = recipe.build(**params).fit(model_inputs(train, recipe.inputs), train.genres)
    return estimator, params, score


def _searched(recipe: Recipe, train: LabelledCovers, validation: LabelledCovers) -> tuple[Any, dict[str, Any], float]:
    """The recipe's grid point with the best validation macro-F1, with the (maybe cheaper) estimator it scored."""
    X_train, X_validation = model_inputs(train, recipe.inputs), model_inputs(validation, recipe.inputs)
    scored = []
    for params in recipe.grid:
        estimator = recipe.build(**params, **recipe.search_params).fit(X_train, train.genres)
        scored.append((_macro_f1(validation.genres, estimator.predict(X_validation)), params, estimator))
    score, params, estimator = max(scored, key=lambda item: item[0])  # first of equals: grids go simple to complex
    return estimator, dict(params), float(score)


def fit_fused(name: str, train: LabelledCovers, validation: LabelledCovers, **_: Any) -> Fit:
    """The SVM and the cover-text model tuned alone on the validation covers, then the weight of the text
    in their fusion chosen on the same covers. Only the parameters of the searches are kept: the fusion fits
    its own members (the SVM's calibrated refit would be thrown away)."""
    _, svm_params, _ = _searched(RECIPES["svm"], train, validation)
    _, text_params, _ = _searched(RECIPES["text"], train, validation)
    estimator = ImageTextFusion(RECIPES["svm"].build(**svm_params), RECIPES["text"].build(**text_params))
    inputs = CLASSIFIERS[FUSION].inputs
    X_validation = model_inputs(validation, inputs)
    estimator.fit(model_inputs(train, inputs), train.genres, eval_set=(X_validation, validation.genres))
    params = {
        **{f"svm_{key}": value for key, value in svm_params.items()},
        **{f"text_{key}": value for key, value in text_params.items()},
        "text_weight": estimator.text_weight_,
    }
    return estimator, params, _macro_f1(validation.genres, estimator.predict(X_validation))


def fit_zero_shot(
    name: str, train: LabelledCovers, validation: LabelledCovers, encoder: Encoder | None = None, **_: Any
) -> Fit:
    """Zero-shot prompts need the index encoder's text tower; they learn only the genre names."""
    if encoder is None or not encoder.supports_text:
        raise ModelUnavailableError("model has no text tower")
    estimator = ZeroShotClassifier(encode_text=encoder.encode_text).fit(train.embeddings, train.genres)
    params = {"template": estimator.template, "scale": estimator.scale}
    return estimator, params, _macro_f1(validation.genres, estimator.predict(validation.embeddings))


def fit_cnn(
    name: str, train: LabelledCovers, validation: LabelledCovers, cnn_params: dict[str, Any] | None = None,
    progress: bool = False, **_: Any,
) -> Fit:
    """The fine-tuned CNN, early-stopped on the validation covers."""
    estimator = FineTunedCNN(**(cnn_params or {}), progress=progress)
    estimator.fit(train.paths, train.genres, eval_set=(validation.paths, validation.genres))
    params = {**estimator.get_params(), "best_epoch": estimator.best_epoch_}
    params.pop("progress")
    return estimator, params, max(record["validation_macro_f1"] for record in estimator.history_)


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def refit_on_all(fitted: FittedModel, covers: LabelledCovers) -> Any:
    """The tuned recipe refitted on every cover (for a stored classifier: more data, same choices).

    Zero-shot learns nothing from covers and the CNN keeps its early-stopped weights: both are returned as is.
    """
    if fitted.name == FUSION:
        fixed = clone(fitted.estimator).set_params(text_weight=fitted.estimator.text_weight_)
        return fixed.fit(model_inputs(covers, fitted.inputs), covers.genres)
    if fitted.name not in RECIPES:
        return fitted.estimator
    return RECIPES[fitted.name].build(**fitted.params).fit(model_inputs(covers, fitted.inputs), covers.genres)


def split_index_covers(covers: LabelledCovers, seed: int, progress: bool) -> np.ndarray:
    """Group-aware 80/20 train/validation names for the covers of an index."""
    groups = near_duplicate_groups(dhashes(covers.paths, progress=progress))
    return train_validation(covers.genres, groups, seed=seed)


@one_writer
def train_classifier(
    index_dir: str | Path,
    classifier: str = "linear",
    seed: int = 42,
    cnn_params: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> ClassifierInfo:
    """Tune the ``classifier`` (a name of recsys.classify.models) on a group-aware 80/20 split of the index's
    labelled covers, refit it on all of them and store it in ``INDEX/classifier/``. Like build-index it holds
    the index folder's writer lock, so it never trains on an index that is being rewritten."""
    settings = settings or Settings()
    progress = settings.progress
    index = load_index(index_dir)
    covers = from_index(index)
    if "text" in CLASSIFIERS[classifier].inputs:
        covers = with_cover_text(covers, settings.cache, progress)
    split = split_index_covers(covers, seed, progress)
    encoder = None
    if classifier == "zero-shot":
        encoder = settings.encoder_for(ModelSpec.from_dict(index.info.model), index_dir)
    fitted = fit_model(
        classifier, covers.subset(split == "train"), covers.subset(split == "validation"), encoder, cnn_params, progress
    )
    estimator = refit_on_all(fitted, covers)
    if classifier == "zero-shot":
        estimator.set_params(encode_text=None)  # the prompt vectors are kept; the encoder is not storable
    info = ClassifierInfo(
        model=classifier,
        title=fitted.title,
        inputs=fitted.inputs,
        model_key=index.info.model_key,
        classes=fitted.classes,
        params=fitted.params,
        trained_on=len(covers) if fitted.name in (*RECIPES, FUSION) else int((split == "train").sum()),
        validation_macro_f1=fitted.validation_macro_f1,
    )
    save_classifier(index.folder, estimator, info)
    return info
