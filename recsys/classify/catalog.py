"""The genre classifiers sleeve offers, by name: light entries, so the command line lists them without
scikit-learn or torch. ``loader`` names the function that fits one (recsys.classify.train), ``inputs`` what
it reads of a cover (recsys.classify.data.model_inputs)."""

from __future__ import annotations

import dataclasses

from index.errors import SleeveError
from index.registry import Entry, Registry


@dataclasses.dataclass(frozen=True)
class Classifier(Entry):
    inputs: str = "embeddings"
    """The index's vectors ("embeddings"), the cover's OCR text ("text"), both, or the image file ("images")."""


CLASSIFIERS: Registry[Classifier] = Registry("model", SleeveError)
_TUNED = "recsys.classify.train:fit_tuned"
"""A plain grid search over a recipe of recsys.classify.models.RECIPES."""
CLASSIFIERS.register(Classifier("majority", _TUNED, "majority class"))
CLASSIFIERS.register(Classifier("1nn", _TUNED, "FAISS 1-NN"))
CLASSIFIERS.register(Classifier("knn", _TUNED, "k-NN"))
CLASSIFIERS.register(Classifier("linear", _TUNED, "linear probe (logistic regression)"))
CLASSIFIERS.register(Classifier("svm", _TUNED, "RBF SVM"))
CLASSIFIERS.register(Classifier("text", _TUNED, "cover text (OCR)", inputs="text"))
CLASSIFIERS.register(Classifier(
    "svm+text", "recsys.classify.train:fit_fused", "RBF SVM + cover text", inputs="embeddings+text"
))
CLASSIFIERS.register(Classifier("zero-shot", "recsys.classify.train:fit_zero_shot", "zero-shot (text prompts)"))
CLASSIFIERS.register(Classifier(
    "cnn", "recsys.classify.train:fit_cnn", "fine-tuned EfficientNet-Lite0", inputs="images"
))

FUSION = "svm+text"
"""The RBF SVM and the cover-text model, each tuned alone, then fused (see ImageTextFusion)."""
