"""Classification metrics with their uncertainty, as plain JSON-ready dictionaries.

Every number comes from scikit-learn's metric functions; this module only decides which ones, for which
labels, and adds percentile-bootstrap 95% intervals for accuracy and macro-F1 so that two models whose
intervals overlap are not declared different on a few hundred test covers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

BOOTSTRAP_SAMPLES = 1000
SCALARS = (
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "macro_precision",
    "macro_recall",
    "weighted_precision",
    "weighted_recall",
    "top2_accuracy",
)


def _resample_weights(size: int, samples: int, seed: int) -> np.ndarray:
    """(samples, size) counts of how often each test cover is drawn in each bootstrap resample.

    Passed to scikit-learn as sample weights they give the same scores as indexing copies, without copying.
    """
    rng = np.random.default_rng(seed)
    return rng.multinomial(size, np.full(size, 1 / size), size=samples)


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], weights: np.ndarray) -> float:
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", sample_weight=weights, zero_division=0))


def bootstrap_ci(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95% percentile intervals of accuracy and macro-F1 over test sets resampled with replacement."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    weights = _resample_weights(len(y_true), samples, seed)
    accuracy = [accuracy_score(y_true, y_pred, sample_weight=w) for w in weights]
    macro_f1 = [_macro_f1(y_true, y_pred, labels, w) for w in weights]
    return {
        "accuracy_ci95": _percentile_interval(accuracy),
        "macro_f1_ci95": _percentile_interval(macro_f1),
    }


def paired_difference(
    y_true: Sequence[str],
    pred_a: Sequence[str],
    pred_b: Sequence[str],
    labels: Sequence[str],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Macro-F1 of model a minus model b on the same test covers, with a paired 95% bootstrap interval.

    Both models are scored on each resample, so the interval reflects how much their difference varies, which
    is narrower than what two overlapping per-model intervals suggest. An interval excluding 0 means the
    test covers tell the two models apart.
    """
    y_true, pred_a, pred_b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    weights = _resample_weights(len(y_true), samples, seed)
    ones = np.ones(len(y_true))
    differences = [_macro_f1(y_true, pred_a, labels, w) - _macro_f1(y_true, pred_b, labels, w) for w in weights]
    return {
        "macro_f1_difference": _macro_f1(y_true, pred_a, labels, ones) - _macro_f1(y_true, pred_b, labels, ones),
        "macro_f1_difference_ci95": _percentile_interval(differences),
    }


def _percentile_interval(values: Sequence[float]) -> list[float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def classification_report(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    proba: np.ndarray,
    labels: Sequence[str],
    bootstrap_samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """All metrics of one model on one test set; ``proba`` columns follow ``labels``.

    Precision of a genre the model never predicts counts as 0 (scikit-learn's ``zero_division=0``), so a
    model cannot look better by giving up on a genre.
    """
    labels = list(labels)
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    report: dict[str, Any] = {"accuracy": float(accuracy_score(y_true, y_pred))}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        report[f"{average}_precision"] = float(precision)
        report[f"{average}_recall"] = float(recall)
        report[f"{average}_f1"] = float(f1)
    report["top2_accuracy"] = top2_accuracy(y_true, proba, labels)
    report.update(bootstrap_ci(y_true, y_pred, labels, bootstrap_samples, seed))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    report["per_genre"] = {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for label, p, r, f, s in zip(labels, precision, recall, f1, support)
    }
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    normalized = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")  # rows of absent genres: 0
    report["confusion"] = {"labels": labels, "counts": counts.tolist(), "normalized": normalized.tolist()}
    return report


def top2_accuracy(y_true: Sequence[str], proba: np.ndarray, labels: Sequence[str]) -> float:
    """Share of covers whose genre is among the model's two most probable (1.0 when there are two genres)."""
    if len(labels) <= 2:
        return 1.0
    return float(top_k_accuracy_score(y_true, proba, k=2, labels=labels))


def fold_summary(fold_reports: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean, standard deviation (ddof=1) and per-fold values of each scalar metric across CV folds."""
    summary = {}
    for name in SCALARS:
        values = [report[name] for report in fold_reports]
        summary[name] = {
            "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "per_fold": [float(v) for v in values],
        }
    return summary
