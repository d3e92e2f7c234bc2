"""Metric code agrees with scikit-learn on hand-made cases; bootstrap intervals are sound and reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import classification_report as sklearn_report

from recsys.classify.metrics import (
    bootstrap_ci,
    classification_report,
    fold_summary,
    paired_difference,
    top2_accuracy,
)

LABELS = ["country", "pop", "rock"]
TRUE = ["country"] * 4 + ["pop"] * 3 + ["rock"] * 3
PRED = ["country", "country", "pop", "rock", "pop", "pop", "country", "rock", "rock", "pop"]
PROBA = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.5, 0.4, 0.1],
        [0.3, 0.6, 0.1],  # true country is second: a top-2 hit
        [0.1, 0.3, 0.6],  # true country is last: a top-2 miss
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.5, 0.1, 0.4],  # true pop is last: a miss
        [0.1, 0.2, 0.7],
        [0.2, 0.1, 0.7],
        [0.1, 0.5, 0.4],  # true rock second: a hit
    ]
)


def test_report_matches_scikit_learn_on_a_hand_made_case() -> None:
    report = classification_report(TRUE, PRED, PROBA, LABELS, bootstrap_samples=50)
    expected = sklearn_report(TRUE, PRED, labels=LABELS, output_dict=True, zero_division=0)
    assert report["accuracy"] == pytest.approx(6 / 10)
    assert report["macro_f1"] == pytest.approx(expected["macro avg"]["f1-score"])
    assert report["weighted_f1"] == pytest.approx(expected["weighted avg"]["f1-score"])
    assert report["macro_precision"] == pytest.approx(expected["macro avg"]["precision"])
    assert report["weighted_recall"] == pytest.approx(expected["weighted avg"]["recall"])
    for genre in LABELS:
        assert report["per_genre"][genre]["recall"] == pytest.approx(expected[genre]["recall"])
        assert report["per_genre"][genre]["support"] == expected[genre]["support"]
    assert report["per_genre"]["country"]["precision"] == pytest.approx(2 / 3)  # 2 of 3 "country" calls right
    assert report["confusion"]["labels"] == LABELS
    assert report["confusion"]["counts"] == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert np.allclose(np.sum(report["confusion"]["normalized"], axis=1), 1.0)
    assert report["confusion"]["normalized"][0] == pytest.approx([0.5, 0.25, 0.25])
    assert report["top2_accuracy"] == pytest.approx(8 / 10)


def test_a_genre_never_predicted_counts_as_zero_precision_not_an_error() -> None:
    report = classification_report(["a", "b", "c"], ["a", "a", "b"], np.eye(3)[[0, 0, 1]], ["a", "b", "c"], 20)
    assert report["per_genre"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    absent = classification_report(["a", "a"], ["a", "b"], np.eye(2)[[0, 1]], ["a", "b"], 20)
    assert absent["confusion"]["normalized"][1] == [0.0, 0.0]  # no true "b": a zero row, not NaN


def test_top2_is_trivially_one_with_two_genres() -> None:
    assert top2_accuracy(["a", "b"], np.array([[0.1, 0.9], [0.9, 0.1]]), ["a", "b"]) == 1.0


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible() -> None:
    rng = np.random.default_rng(3)
    truth = rng.choice(LABELS, 400)
    predicted = np.where(rng.random(400) < 0.6, truth, rng.choice(LABELS, 400))
    first = bootstrap_ci(truth, predicted, LABELS, samples=150, seed=5)
    assert first == bootstrap_ci(truth, predicted, LABELS, samples=150, seed=5)
    assert first != bootstrap_ci(truth, predicted, LABELS, samples=150, seed=6)
    report = classification_report(truth, predicted, np.eye(3)[np.searchsorted(LABELS, predicted)], LABELS, 150)
    for name in ("accuracy", "macro_f1"):
        low, high = report[f"{name}_ci95"]
        assert low < report[name] < high
        assert 0.04 < high - low < 0.2  # about 4 standard errors of a proportion near 0.7 on 400 covers
    small = bootstrap_ci(truth[:40], predicted[:40], LABELS, samples=150, seed=5)
    assert np.diff(small["accuracy_ci95"])[0] > np.diff(first["accuracy_ci95"])[0]  # less data, wider interval


def test_fold_summary_gives_mean_and_sample_std() -> None:
    folds = [{name: value for name in ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall",
                                       "weighted_precision", "weighted_recall", "top2_accuracy")}
             for value in (0.4, 0.5, 0.6)]
    summary = fold_summary(folds)
    assert summary["macro_f1"]["mean"] == pytest.approx(0.5)
    assert summary["macro_f1"]["std"] == pytest.approx(0.1)
    assert summary["accuracy"]["per_fold"] == [0.4, 0.5, 0.6]


def test_paired_difference_sees_what_overlapping_intervals_hide() -> None:
    rng = np.random.default_rng(4)
    truth = rng.choice(LABELS, 400)
    better = np.where(rng.random(400) < 0.6, truth, rng.choice(LABELS, 400))
    worse = better.copy()
    worse[np.flatnonzero(better == truth)[:30]] = "pop"  # 30 right answers of 400 turned into "pop"
    difference = paired_difference(truth, better, worse, LABELS, samples=150, seed=1)
    low, high = difference["macro_f1_difference_ci95"]
    assert difference["macro_f1_difference"] > 0 and 0 < low < difference["macro_f1_difference"] < high
    separate = [bootstrap_ci(truth, pred, LABELS, samples=150, seed=1)["macro_f1_ci95"] for pred in (better, worse)]
    assert separate[1][1] > separate[0][0]  # the per-model intervals overlap, the paired one excludes 0
    same = paired_difference(truth, better, better, LABELS, samples=20, seed=1)
    assert same == {"macro_f1_difference": 0.0, "macro_f1_difference_ci95": [0.0, 0.0]}
