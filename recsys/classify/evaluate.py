"""Evaluate every genre model on the same leak-free split and write the evidence to a folder.

Three protocols, all group-aware (near-duplicate covers never straddle a boundary):
- one stratified 60/20/20 train/validation/test split with a fixed seed (default);
- ``cv=k``: stratified group k-fold; each fold is the test set once, one of the other folds validates. Headline
  numbers are computed on the pooled out-of-fold predictions (each cover predicted once, by models that never
  saw it); the mean and standard deviation across folds are reported beside them;
- a transfer test: train on the whole index (80/20 train/validation) and test on another labelled collection,
  on the genres both share, leaving out test covers that are near-duplicates of indexed ones.

Outputs in ``out_dir``: metrics.json, results.md, confusion-<model>.png, split.csv, predictions.csv, and an
MLflow run per model when asked.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pandas as pd

from index.atomic import atomic_path, write_json
from index.errors import SleeveError
from index.store import CoverIndex, load_index
from recsys.classify.data import (
    LabelledCovers,
    LabelledDataError,
    embed_collection,
    from_index,
    with_cover_text,
)
from recsys.classify.metrics import BOOTSTRAP_SAMPLES, classification_report, fold_summary, paired_difference
from recsys.classify.catalog import CLASSIFIERS, FUSION
from recsys.classify.models import RECIPES, ModelUnavailableError
from recsys.classify.results import plot_confusion, write_results_markdown
from recsys.classify.split import (
    HASH_BITS,
    NAME_SIMILARITY,
    NEAR_DUPLICATE_DISTANCE,
    dhashes,
    group_folds,
    near_duplicate_groups,
    printed_name_groups,
    train_validation,
    train_validation_test,
)
from recsys.classify.train import FittedModel, fit_model
from recsys.encoders import Encoder, ModelSpec
from recsys.settings import Settings

log = logging.getLogger(__name__)

ARTIST_AWARE_MODELS = (*RECIPES, FUSION)
"""Re-tested under the artist-aware split when text is read: the text models, and the image models beside them
(a look can give an artist away too). Zero-shot learns nothing from covers; the CNN would take too long."""

REFERENCE = "linear"
"""Every model is also compared with the linear probe, pairwise on the same test covers (the issue's question:
does fine-tuning the CNN beat a linear model on frozen embeddings?)."""


@dataclasses.dataclass
class Fold:
    """One train/validation/test assignment; ``test_rows`` index ``test_pool``."""

    train: LabelledCovers
    validation: LabelledCovers
    test: LabelledCovers
    test_rows: np.ndarray


def evaluate(
    index_dir: str | Path,
    out_dir: str | Path,
    models: Sequence[str] = tuple(CLASSIFIERS),
    cv: int | None = None,
    test_covers: str | Path | None = None,
    test_manifest: str | Path | None = None,
    seed: int = 42,
    bootstrap_samples: int = BOOTSTRAP_SAMPLES,
    mlflow: bool = False,
    tracking_uri: str | None = None,
    cnn_params: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Fit and test each model in ``models``; write and return the metrics (schema in docs/classification.md)."""
    settings = settings or Settings()
    cache_dir, progress = settings.cache, settings.progress
    transfer = test_covers or test_manifest
    _check_request(models, cv, bool(transfer))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = load_index(index_dir)
    spec = ModelSpec.from_dict(index.info.model)
    covers = from_index(index)
    reads_text = any("text" in CLASSIFIERS[name].inputs for name in models)
    if reads_text:
        covers = with_cover_text(covers, cache_dir, progress)
    encoder = settings.encoder_for(spec, index_dir) if "zero-shot" in models or transfer else None
    hashes = dhashes(covers.paths, progress=progress)
    groups = near_duplicate_groups(hashes)
    if transfer:
        external = embed_collection(encoder, test_covers, test_manifest, cache_dir, progress)
        folds, split = _transfer(covers, hashes, groups, external, seed)
        if reads_text:  # only the covers the transfer test keeps are read
            folds[0].test = with_cover_text(folds[0].test, cache_dir, progress)
        split["test_source"] = str(transfer)
        test_pool = folds[0].test
    else:
        folds, split = _folds(covers, groups, cv, seed)
        test_pool = covers
    split.update(seed=seed, near_duplicate_max_hamming_distance=NEAR_DUPLICATE_DISTANCE, sizes=_sizes(folds))
    _write_split(out_dir / "split.csv", folds)

    labels = sorted(set(test_pool.genres))
    metrics: dict[str, Any] = {
        "data": _collection_summary(index, spec, covers, groups, reads_text),
        "split": split,
        "bootstrap_samples": bootstrap_samples,
        "models": {},
        "unavailable": {},
    }
    predictions = _run_models(models, folds, test_pool, labels, encoder, cnn_params, metrics, out_dir, progress)
    if reads_text and not transfer:
        metrics["artist_aware"] = _artist_aware(
            covers, groups, [name for name in metrics["models"] if name in ARTIST_AWARE_MODELS], cv, seed, labels,
            bootstrap_samples, out_dir, progress,
        )
    if REFERENCE in metrics["models"]:
        metrics["comparisons"] = _against_reference(predictions, list(metrics["models"]), labels, bootstrap_samples)
    write_json(out_dir / "metrics.json", metrics)
    write_results_markdown(metrics, out_dir / "results.md")
    if mlflow:
        from recsys.classify.tracking import log_evaluation

        metrics["mlflow_runs"] = log_evaluation(metrics, out_dir, tracking_uri)
        write_json(out_dir / "metrics.json", metrics)
    return metrics


def _check_request(models: Sequence[str], cv: int | None, transfer: bool) -> None:
    unknown = [name for name in models if name not in CLASSIFIERS]
    if unknown:
        raise SleeveError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(CLASSIFIERS)}")
    if cv is not None and transfer:
        raise SleeveError("--cv and a separate test collection exclude each other")
    if cv is not None and cv < 3:
        raise SleeveError("--cv needs at least 3 folds (one test, one validation, the rest training)")


def _collection_summary(
    index: CoverIndex, spec: ModelSpec, covers: LabelledCovers, groups: np.ndarray, reads_text: bool
) -> dict[str, Any]:
    """What was evaluated: the index, its model, the covers per genre and how many are near-duplicates."""
    group_sizes = np.bincount(groups)
    data = {
        "index": str(index.folder),
        "model": spec.label,
        "model_key": index.info.model_key,
        "covers": len(covers),
        "genres": covers.genre_counts(),
        "near_duplicate_groups": int((group_sizes > 1).sum()),
        "covers_in_near_duplicate_groups": int((group_sizes[groups] > 1).sum()),
    }
    if reads_text:
        data["covers_with_text"] = int((covers.texts != "").sum())
    return data


def _run_models(
    models: Sequence[str],
    folds: list[Fold],
    test_pool: LabelledCovers,
    labels: list[str],
    encoder: Encoder | None,
    cnn_params: dict[str, Any] | None,
    metrics: dict[str, Any],
    out_dir: Path,
    progress: bool,
) -> pd.DataFrame:
    """Evaluate each model into ``metrics`` (rewritten after each, so a long run shows progress) and return
    every model's predicted genre of each test cover (also written to predictions.csv)."""
    predictions = pd.DataFrame({"path": test_pool.paths, "genre": test_pool.genres})
    for name in models:
        try:
            report, predicted = _evaluate_model(
                name, folds, len(test_pool), labels, encoder, cnn_params, metrics["bootstrap_samples"], progress
            )
        except ModelUnavailableError as error:
            metrics["unavailable"][name] = str(error)
            log.warning("%s: n/a (%s)", name, error)
            continue
        metrics["models"][name] = report
        predictions[name] = predicted
        plot_confusion(report, out_dir / f"confusion-{name}.png")
        write_json(out_dir / "metrics.json", metrics)
    predictions = predictions[predictions.drop(columns=["path", "genre"]).notna().any(axis=1)]
    with atomic_path(out_dir / "predictions.csv") as temporary:
        predictions.to_csv(temporary, index=False)
    return predictions


def _evaluate_model(
    name: str,
    folds: list[Fold],
    pool_size: int,
    labels: list[str],
    encoder: Encoder | None,
    cnn_params: dict[str, Any] | None,
    bootstrap_samples: int,
    progress: bool,
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit ``name`` on each fold and test it; the report is on all folds' test predictions pooled."""
    predicted = np.full(pool_size, None, dtype=object)
    proba = np.zeros((pool_size, len(labels)))
    truth = np.full(pool_size, None, dtype=object)
    fold_reports, fitted_models = [], []
    for number, fold in enumerate(folds):
        log.info("%s: fold %d/%d", name, number + 1, len(folds))
        fitted = fit_model(name, fold.train, fold.validation, encoder, cnn_params, progress)
        fold_proba = _aligned_proba(fitted, fold.test, labels)
        fold_predicted = np.asarray(labels, dtype=object)[fold_proba.argmax(axis=1)]
        predicted[fold.test_rows] = fold_predicted
        proba[fold.test_rows] = fold_proba
        truth[fold.test_rows] = fold.test.genres
        fitted_models.append(fitted)
        if len(folds) > 1:
            fold_reports.append(
            classification_report(fold.test.genres, fold_predicted, fold_proba, labels, bootstrap_samples=10)
        )
    tested = np.flatnonzero(pd.notna(truth))
    report = {"title": fitted_models[0].title}
    report.update(classification_report(truth[tested], predicted[tested], proba[tested], labels, bootstrap_samples))
    report["params"] = fitted_models[0].params if len(folds) == 1 else {"per_fold": [f.params for f in fitted_models]}
    report["validation_macro_f1"] = float(np.mean([f.validation_macro_f1 for f in fitted_models]))
    report["seconds"] = float(sum(f.seconds for f in fitted_models))
    if fold_reports:
        report["cv"] = fold_summary(fold_reports)
    return report, predicted


def _folds(covers: LabelledCovers, groups: np.ndarray, cv: int | None, seed: int) -> tuple[list[Fold], dict[str, Any]]:
    """The folds of one 60/20/20 split, or of a k-fold cross-validation, that keep each group whole."""
    if cv is not None:
        folds = _cross_validation(covers, groups, cv, seed)
        return folds, {"method": f"stratified group {cv}-fold cross-validation (validation: another fold)"}
    names = train_validation_test(covers.genres, groups, seed=seed)
    parts = [covers.subset(names == name) for name in ("train", "validation", "test")]
    folds = [Fold(*parts, test_rows=np.flatnonzero(names == "test"))]
    return folds, {"method": "stratified group 60/20/20 train/validation/test"}


def _artist_aware(
    covers: LabelledCovers,
    groups: np.ndarray,
    models: list[str],
    cv: int | None,
    seed: int,
    labels: list[str],
    bootstrap_samples: int,
    out_dir: Path,
    progress: bool,
) -> dict[str, Any]:
    """The same protocol again with covers that share a printed name line grouped (recsys.classify.split):
    how much of a model's score comes from names (artists) it saw in training."""
    named = printed_name_groups(covers.texts, groups)
    sizes = np.bincount(named)
    folds, split = _folds(covers, named, cv, seed)
    split.update(
        seed=seed,
        grouping="near-duplicates, and covers whose printed name lines read alike "
        f"(character 3-5-gram TF-IDF cosine >= {NAME_SIMILARITY})",
        groups_of_several=int((sizes > 1).sum()),
        covers_in_groups_of_several=int((sizes[named] > 1).sum()),
        largest_group=int(sizes.max()),
        sizes=_sizes(folds),
    )
    _write_split(out_dir / "split-artist-aware.csv", folds)
    reports = {}
    for name in models:
        log.info("%s under the artist-aware split", name)
        reports[name], _ = _evaluate_model(name, folds, len(covers), labels, None, None, bootstrap_samples, progress)
    return {"split": split, "models": reports}


def _against_reference(
    predictions: pd.DataFrame, models: list[str], labels: list[str], bootstrap_samples: int
) -> dict[str, Any]:
    """Each model's macro-F1 minus the reference model's on the same test covers, with paired intervals."""
    truth = predictions["genre"].to_numpy()
    reference = predictions[REFERENCE].to_numpy()
    return {
        "reference": REFERENCE,
        "models": {
            name: paired_difference(truth, predictions[name].to_numpy(), reference, labels, bootstrap_samples)
            for name in models
            if name != REFERENCE
        },
    }


def _aligned_proba(fitted: FittedModel, test: LabelledCovers, labels: list[str]) -> np.ndarray:
    """Probabilities with one column per test label (0 for a genre the model never saw)."""
    proba = fitted.predict_proba(test)
    aligned = np.zeros((len(test), len(labels)))
    for column, genre in enumerate(fitted.classes):
        if genre in labels:
            aligned[:, labels.index(genre)] = proba[:, column]
    return aligned


def _cross_validation(covers: LabelledCovers, groups: np.ndarray, folds: int, seed: int) -> list[Fold]:
    """k group folds; for each test fold, the first of k-1 group folds of the rest validates."""
    fold_of = group_folds(covers.genres, groups, folds, seed)
    result = []
    for test_fold in range(folds):
        rest = np.flatnonzero(fold_of != test_fold)
        inner = group_folds(covers.genres[rest], groups[rest], folds - 1, seed)
        test_rows = np.flatnonzero(fold_of == test_fold)
        train, validation = covers.subset(rest[inner != 0]), covers.subset(rest[inner == 0])
        result.append(Fold(train, validation, covers.subset(test_rows), test_rows))
    return result


def _transfer(
    covers: LabelledCovers, hashes: np.ndarray, groups: np.ndarray, external: LabelledCovers, seed: int
) -> tuple[list[Fold], dict[str, Any]]:
    """Train on the index, test on another collection: shared genres only, near-duplicates of indexed covers out."""
    shared = sorted(set(covers.genres) & set(external.genres))
    if len(shared) < 2:
        raise LabelledDataError(
            f"the index and the test covers share {len(shared)} genre(s) ({', '.join(shared) or 'none'}); "
            "a transfer test needs at least two"
        )
    in_index = np.isin(covers.genres, shared)
    external = external.subset(np.isin(external.genres, shared))
    leaked = _near_duplicates_of(dhashes(external.paths), hashes[in_index])
    external = external.subset(~leaked)
    if len(external) == 0:
        raise LabelledDataError("every test cover is a near-duplicate of an indexed cover: nothing left to test")
    kept = covers.subset(in_index)
    names = train_validation(kept.genres, groups[in_index], seed=seed)
    fold = Fold(kept.subset(names == "train"), kept.subset(names == "validation"), external, np.arange(len(external)))
    split = {
        "method": "train on the index (stratified group 80/20 train/validation), test on another collection",
        "shared_genres": shared,
        "test_near_duplicates_of_index_removed": int(leaked.sum()),
    }
    return [fold], split


def _near_duplicates_of(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """For each query hash, whether some reference hash is within the near-duplicate distance."""
    index = faiss.IndexBinaryFlat(HASH_BITS)
    index.add(np.ascontiguousarray(reference))
    limits, _, _ = index.range_search(np.ascontiguousarray(queries), NEAR_DUPLICATE_DISTANCE + 1)
    return np.diff(limits.astype(np.int64)) > 0


def _sizes(folds: list[Fold]) -> dict[str, Any]:
    """Cover counts per part (summed over folds for the test part of a cross-validation)."""
    first = folds[0]
    sizes: dict[str, Any] = {"train": len(first.train), "validation": len(first.validation)}
    sizes["test"] = sum(len(fold.test) for fold in folds)
    if len(folds) > 1:
        sizes = {"folds": len(folds), "train_per_fold": [len(f.train) for f in folds],
                 "validation_per_fold": [len(f.validation) for f in folds], "test": sizes["test"]}
    return sizes


def _write_split(target: Path, folds: list[Fold]) -> None:
    """Which covers were where, for audit: one row per (fold, part, cover)."""
    rows = []
    for number, fold in enumerate(folds):
        for part in ("train", "validation", "test"):
            covers = getattr(fold, part)
            rows.append(pd.DataFrame({"fold": number, "part": part, "path": covers.paths, "genre": covers.genres}))
    with atomic_path(target) as temporary:
        pd.concat(rows, ignore_index=True).to_csv(temporary, index=False)
