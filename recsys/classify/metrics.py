"""Classification metrics with their uncertainty, as plain JSON-ready dictionaries.

Every number comes from scikit-learn's metric functions; this module only decides which ones, for which
labels, and adds percentile-bootstrap 95% intervals for accuracy and macro-F1 so that two models whose
intervals overlap are not declared different on a few hundred test covers.
"""

from __future__ import annotations

from typing import Any, Sequence

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


def bootstrap_ci(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    labels: Sequence[str],
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> dict[str, list[float]]:
    """95% percentile intervals of accuracy and macro-F1 over test sets resampled with replacement.

    A resample is expressed as how many times each test cover is drawn (multinomial counts) and passed to
    scikit-learn as sample weights: the same numbers as indexing copies, without copying.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(y_true), np.full(len(y_true), 1 / len(y_true)), size=samples)
    accuracy = [accuracy_score(y_true, y_pred, sample_weight=c) for c in counts]
    macro_f1 = [
        f1_score(y_true, y_pred, labels=labels, average="macro", sample_weight=c, zero_division=0) for c in counts
    ]
    return {
        "accuracy_ci95": _percentile_interval(accuracy),
        "macro_f1_ci95": _percentile_interval(macro_f1),
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
