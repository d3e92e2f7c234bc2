"""evaluate, train-classifier, predict and recommend's predicted genre, run through the CLI on real covers
(a 60-cover subset of ../shared/covers) and on a tiny random CLIP for the zero-shot plumbing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cli import main
from tests.conftest import make_cover

GENRES = ["country", "electronic", "hip-hop", "pop", "rock"]
SCALARS = ["accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall", "weighted_precision",
           "weighted_recall", "top2_accuracy"]


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def real_index(shared_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An efficientnet-lite0 index of the 60-cover real subset, and its cache."""
    root = tmp_path_factory.mktemp("classify-cli")
    result = run("build-index", "--covers", shared_subset, "--index", root / "index", "--cache", root / "cache",
                 "--model", "efficientnet-lite0", "--workers", "0", "--no-progress")
    assert result.exit_code == 0, result.output
    return root / "index", root / "cache"


@pytest.mark.shared
def test_evaluate_writes_every_output_with_the_promised_schema(real_index, tmp_path: Path) -> None:
    index, cache = real_index
    out = tmp_path / "eval"
    result = run("evaluate", "--index", index, "--cache", cache, "--out", out, "--models", "majority,1nn,knn",
                 "--models", "linear,svm,text,svm+text,zero-shot,cnn", "--cnn-epochs", "1", "--cnn-views", "1",
                 "--bootstrap", "50", "--no-progress")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["models"]) == ["majority", "1nn", "knn", "linear", "svm", "text", "svm+text", "cnn"]
    assert metrics["unavailable"] == {"zero-shot": "model has no text tower"}
    assert metrics["data"]["covers"] == 60 and metrics["data"]["genres"] == {g: 12 for g in GENRES}
    sizes = metrics["split"]["sizes"]
    assert sizes["train"] + sizes["validation"] + sizes["test"] == 60 and 8 <= sizes["test"] <= 16
    for name, report in metrics["models"].items():
        for key in SCALARS:
            assert 0.0 <= report[key] <= 1.0, (name, key)
        for key in ("accuracy", "macro_f1"):
            low, high = report[f"{key}_ci95"]
            assert low <= report[key] <= high
        assert sorted(report["per_genre"]) == GENRES
        assert sum(g["support"] for g in report["per_genre"].values()) == sizes["test"]
        assert report["confusion"]["labels"] == GENRES
        assert np.sum(report["confusion"]["counts"]) == sizes["test"]
        assert (out / f"confusion-{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert metrics["models"]["majority"]["macro_f1"] < 0.1  # one genre of five, always
    assert metrics["models"]["cnn"]["params"]["best_epoch"] == 1
    comparisons = metrics["comparisons"]
    assert comparisons["reference"] == "linear"
    assert list(comparisons["models"]) == ["majority", "1nn", "knn", "svm", "text", "svm+text", "cnn"]
    assert set(metrics["models"]["svm+text"]["params"]) == {"svm_C", "text_C", "text_weight"}
    assert 0 < metrics["data"]["covers_with_text"] <= 60
    majority = comparisons["models"]["majority"]
    assert majority["macro_f1_difference"] == pytest.approx(
        metrics["models"]["majority"]["macro_f1"] - metrics["models"]["linear"]["macro_f1"]
    )
    table = (out / "results.md").read_text()
    assert "minus the linear probe (logistic regression)'s on the same test covers" in table
    assert "| zero-shot (text prompts) | n/a (model has no text tower) |" in table
    assert "| fine-tuned EfficientNet-Lite0 |" in table and "| RBF SVM |" in result.stdout
    split = pd.read_csv(out / "split.csv")
    assert split["path"].is_unique and set(split["part"]) == {"train", "validation", "test"}
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == sizes["test"]
    assert set(predictions["path"]) == set(split.loc[split.part == "test", "path"])
    assert set(predictions["linear"]) <= set(GENRES)
    aware = metrics["artist_aware"]  # the models again, covers with alike printed names grouped too
    assert list(aware["models"]) == ["majority", "1nn", "knn", "linear", "svm", "text", "svm+text"]
    aware_sizes = aware["split"]["sizes"]
    assert aware_sizes["train"] + aware_sizes["validation"] + aware_sizes["test"] == 60
    assert aware["split"]["covers_in_groups_of_several"] >= metrics["data"]["covers_in_near_duplicate_groups"]
    assert sum(g["support"] for g in aware["models"]["text"]["per_genre"].values()) == aware_sizes["test"]
    aware_split = pd.read_csv(out / "split-artist-aware.csv")
    assert aware_split["path"].is_unique and len(aware_split) == 60
    assert "printed names grouped too" in table and "| cover text (OCR) |" in table


@pytest.mark.shared
def test_evaluate_cross_validation_reports_mean_and_std(real_index, tmp_path: Path) -> None:
    index, cache = real_index
    result = run("evaluate", "--index", index, "--cache", cache, "--out", tmp_path, "--models", "majority,linear",
                 "--cv", "3", "--bootstrap", "20", "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["split"]["sizes"]["folds"] == 3 and metrics["split"]["sizes"]["test"] == 60
    linear = metrics["models"]["linear"]
    assert len(linear["cv"]["macro_f1"]["per_fold"]) == 3 and linear["cv"]["macro_f1"]["std"] >= 0.0
    assert linear["cv"]["accuracy"]["mean"] == pytest.approx(np.mean(linear["cv"]["accuracy"]["per_fold"]))
    assert sum(g["support"] for g in linear["per_genre"].values()) == 60  # every cover tested once
    assert len(linear["params"]["per_fold"]) == 3
    assert " ± " in (tmp_path / "results.md").read_text()


@pytest.mark.shared
def test_transfer_test_keeps_shared_genres_and_drops_copies_of_indexed_covers(
    real_index, shared_subset: Path, shared_manifest: pd.DataFrame, tmp_path: Path
) -> None:
    index, cache = real_index
    other = tmp_path / "other"
    for genre, group in shared_manifest.groupby("genre"):
        (other / genre).mkdir(parents=True)
        for path in group.sort_values("path")["path"].iloc[12:16]:  # four covers per genre not in the index
            shutil.copy(path, other / genre)
    make_cover(other / "jazz" / "j1.png", seed=1)  # a genre the index does not have
    make_cover(other / "jazz" / "j2.png", seed=2)
    copy = next((shared_subset / "rock").iterdir())
    shutil.copy(copy, other / "rock" / "copy-of-an-indexed-cover.jpg")
    result = run("evaluate", "--index", index, "--cache", cache, "--out", tmp_path / "eval", "--models",
                 "linear,text", "--test-covers", other, "--bootstrap", "20", "--no-progress")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert list(metrics["models"]) == ["linear", "text"]  # the test covers' text is read too
    split = metrics["split"]
    assert split["shared_genres"] == GENRES
    removed = split["test_near_duplicates_of_index_removed"]
    assert removed >= 1 and split["sizes"]["test"] + removed == 21  # 4 per shared genre and the copy; no jazz
    tested = set(pd.read_csv(tmp_path / "eval" / "predictions.csv")["path"])
    assert str(other / "rock" / "copy-of-an-indexed-cover.jpg") not in tested and len(tested) == 21 - removed
    everything_copied = run("evaluate", "--index", index, "--cache", cache, "--out", tmp_path / "eval2",
                            "--models", "linear", "--test-covers", shared_subset, "--no-progress")
    assert everything_copied.exit_code == 1 and "near-duplicate of an indexed cover" in everything_copied.stderr


@pytest.mark.shared
def test_mlflow_logs_one_run_per_model_to_a_local_store(real_index, tmp_path: Path) -> None:
    mlflow = pytest.importorskip("mlflow")
    index, cache = real_index
    result = run("evaluate", "--index", index, "--cache", cache, "--out", tmp_path, "--models", "majority,knn",
                 "--bootstrap", "20", "--mlflow", "--no-progress")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("sleeve-genre-classification")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"majority", "knn"}
    assert sorted(metrics["mlflow_runs"]) == sorted(run.info.run_id for run in runs.values())
    knn = runs["knn"]
    assert knn.data.metrics["macro_f1"] == pytest.approx(metrics["models"]["knn"]["macro_f1"])
    assert knn.data.params["param.n_neighbors"] == str(metrics["models"]["knn"]["params"]["n_neighbors"])
    artifacts = {item.path for item in client.list_artifacts(knn.info.run_id)}
    assert artifacts == {"confusion.json", "confusion-knn.png", "results.md", "metrics.json"}


@pytest.mark.shared
def test_train_predict_and_recommend_show_the_genre(real_index, shared_subset: Path) -> None:
    index, cache = real_index
    cover = next((shared_subset / "hip-hop").iterdir())
    before = run("recommend", "--index", index, "--cache", cache, "--cover", cover, "-k", "2", "--json")
    assert before.exit_code == 0 and json.loads(before.stdout)["query"] == {"cover": str(cover)}  # no classifier
    missing = run("predict", "--index", index, "--cache", cache, "--cover", cover)
    assert missing.exit_code == 1 and "train-classifier" in missing.stderr

    trained = run("train-classifier", "--index", index, "--cache", cache, "--model", "svm", "--no-progress", "--json")
    assert trained.exit_code == 0, trained.output
    info = json.loads(trained.stdout)
    assert info["model"] == "svm" and info["classes"] == GENRES and info["trained_on"] == 60

    predicted = run("predict", "--index", index, "--cache", cache, "--cover", cover, "--json")
    assert predicted.exit_code == 0, predicted.output
    genres = json.loads(predicted.stdout)["genres"]
    assert len(genres) == 3 and {g["genre"] for g in genres} <= set(GENRES)
    probabilities = [g["probability"] for g in genres]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
    table = run("predict", "--index", index, "--cache", cache, "--cover", cover)
    assert [line.split()[0] for line in table.stdout.splitlines()] == [g["genre"] for g in genres]

    after = run("recommend", "--index", index, "--cache", cache, "--cover", cover, "-k", "2", "--json")
    payload = json.loads(after.stdout)
    assert payload["query"]["predicted_genre"] == genres[0]["genre"] and len(payload["results"]) == 2
    assert payload["results"] == json.loads(before.stdout)["results"]
    shown = run("recommend", "--index", index, "--cache", cache, "--cover", cover, "-k", "2")
    assert f"query: predicted genre {genres[0]['genre']}" in shown.stderr and "query:" not in shown.stdout


@pytest.mark.shared
def test_a_stored_text_and_image_classifier_reads_the_query_covers_text(
    real_index, shared_subset: Path, tmp_path: Path
) -> None:
    index, cache = real_index
    stored = tmp_path / "index"
    shutil.copytree(index, stored)  # the other tests' index keeps its own classifier
    trained = run("train-classifier", "--index", stored, "--cache", cache, "--model", "svm+text", "--no-progress",
                  "--json")
    assert trained.exit_code == 0, trained.output
    info = json.loads(trained.stdout)
    assert info["inputs"] == "embeddings+text" and info["trained_on"] == 60
    assert set(info["params"]) == {"svm_C", "text_C", "text_weight"}
    cover = next((shared_subset / "country").iterdir())
    predicted = run("predict", "--index", stored, "--cache", cache, "--cover", cover, "--json")
    assert predicted.exit_code == 0, predicted.output
    payload = json.loads(predicted.stdout)
    assert payload["classifier"] == "svm+text" and {g["genre"] for g in payload["genres"]} <= set(GENRES)
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("liner notes")
    refused = run("predict", "--index", stored, "--cache", cache, "--cover", not_an_image)
    assert refused.exit_code == 1 and "cannot use" in refused.stderr and "not an image" in refused.stderr


def test_zero_shot_runs_on_a_clip_index(tiny_clip, tmp_path: Path) -> None:
    """The tiny CLIP has random weights: this proves the zero-shot plumbing (prompts through the text tower,
    evaluation, storage, prediction), not that CLIP can tell genres apart."""
    config, checkpoint = tiny_clip
    for g, genre in enumerate(["jazz", "metal", "pop"]):
        for i in range(10):
            make_cover(tmp_path / "covers" / genre / f"{i}.png", seed=100 * g + i, size=64)
    index = tmp_path / "index"
    built = run("build-index", "--covers", tmp_path / "covers", "--index", index, "--cache", tmp_path / "cache",
                "--model", "clip", "--arch", config, "--weights", checkpoint, "--runtime", "torch", "--workers", "0",
                "--no-progress")
    assert built.exit_code == 0, built.output
    result = run("evaluate", "--index", index, "--cache", tmp_path / "cache", "--out", tmp_path / "eval",
                 "--models", "zero-shot,majority", "--runtime", "torch", "--bootstrap", "20", "--no-progress")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["unavailable"] == {}
    assert metrics["models"]["zero-shot"]["params"]["template"] == "an album cover of {genre} music"
    assert sorted(metrics["models"]["zero-shot"]["per_genre"]) == ["jazz", "metal", "pop"]
    trained = run("train-classifier", "--index", index, "--cache", tmp_path / "cache", "--model", "zero-shot",
                  "--runtime", "torch", "--no-progress")
    assert trained.exit_code == 0, trained.output
    predicted = run("predict", "--index", index, "--cache", tmp_path / "cache", "--runtime", "torch",
                    "--cover", tmp_path / "covers" / "jazz" / "0.png", "--json")
    assert predicted.exit_code == 0, predicted.output
    assert len(json.loads(predicted.stdout)["genres"]) == 3
