"""evaluate --mlflow and the classifier registry against a real MLflow server backed by a real PostgreSQL.

Everything is checked twice: through MLflow's client, and with plain SQL on the PostgreSQL database the server
writes to. The covers are synthetic (no ../shared needed); the models are the fast ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from cli import main
from tests.conftest import make_cover
from tests.test_analysis_browser import CHROMEDRIVER, CHROMIUM, HEADLESS_FLAGS
from tests.tracking_server import (
    REPO,
    free_port,
    mlflow_server,
    mlflow_server_command,
    postgres_bin,
    postgres_cluster,
    requirement,
)

mlflow = pytest.importorskip("mlflow", reason="needs the tracking extra: pip install 'sleeve[tracking]'")
pytestmark = pytest.mark.slow

GENRES = ["country", "electronic", "pop", "rock"]
NO_ASSISTANT = (
    "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
    "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
)
"""MLflow's UI opens its chat assistant beside a run on a first visit; what users read is the run without it."""
EXPERIMENT = "sleeve-genre-classification"


def run(*args: Any):
    return CliRunner().invoke(main, [str(a) for a in args])


def sql(database: str, query: str, *args: Any) -> list[tuple]:
    """A plain query on the server's PostgreSQL database (psycopg2 takes libpq's URI, without the dialect)."""
    import psycopg2

    with contextlib.closing(psycopg2.connect(database.replace("+psycopg2", ""))) as connection:
        with connection.cursor() as cursor:
            cursor.execute(query, args)
            return cursor.fetchall()


@pytest.fixture(scope="session")
def tracking_server() -> Iterator[tuple[str, str]]:
    """(server URL, PostgreSQL URI): one cluster and one server for the whole test session."""
    bin_dir = postgres_bin()
    requirement("PostgreSQL's server binaries in /usr/lib/postgresql/*/bin", bin_dir is not None,
                "apt-get install postgresql")
    command = mlflow_server_command()
    requirement(f"the MLflow server at {command}", command.is_file(),
                "run scripts/setup.sh (it makes .venv-tracking) or set SLEEVE_MLFLOW_SERVER")
    with postgres_cluster(bin_dir) as database, mlflow_server(command, database) as url:
        yield url, database


@pytest.fixture(scope="module")
def indexes(tmp_path_factory: pytest.TempPathFactory, tiny_clip) -> dict[str, Path]:
    """Two indexes of the same synthetic covers with different models, and their cache."""
    root = tmp_path_factory.mktemp("tracking")
    for g, genre in enumerate(GENRES):
        for i in range(8):
            make_cover(root / "covers" / genre / f"{i}.png", seed=1000 * g + i, size=96)
    cache = root / "cache"
    built = run("build-index", "--covers", root / "covers", "--index", root / "effnet", "--cache", cache,
                "--model", "efficientnet-lite0", "--workers", "0", "--no-progress")
    assert built.exit_code == 0, built.output
    config, checkpoint = tiny_clip
    built = run("build-index", "--covers", root / "covers", "--index", root / "clip", "--cache", cache,
                "--model", "clip", "--arch", config, "--weights", checkpoint, "--runtime", "torch", "--workers",
                "0", "--no-progress")
    assert built.exit_code == 0, built.output
    return {"effnet": root / "effnet", "clip": root / "clip", "cache": cache, "covers": root / "covers"}


@pytest.fixture(scope="module")
def logged(tracking_server, indexes, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One evaluation of two models logged to the server."""
    url, _ = tracking_server
    out = tmp_path_factory.mktemp("logged-eval")
    result = run("evaluate", "--index", indexes["effnet"], "--cache", indexes["cache"], "--out", out,
                 "--models", "majority,linear", "--bootstrap", "20", "--mlflow", "--tracking-uri", url,
                 "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)  # only sleeve's JSON on stdout: MLflow's run links stay out of it
    assert metrics == json.loads((out / "metrics.json").read_text())
    return metrics


def test_evaluate_logs_every_model_with_its_evidence(tracking_server, logged) -> None:
    url, database = tracking_server
    client = mlflow.MlflowClient(tracking_uri=url)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = {r.info.run_id: r for r in client.search_runs([experiment.experiment_id])}
    assert set(logged["mlflow_runs"]) <= set(runs)
    linear = next(runs[i] for i in logged["mlflow_runs"] if runs[i].info.run_name == "linear")
    report = logged["models"]["linear"]
    assert linear.data.params["param.C"] == str(report["params"]["C"])  # chosen on validation
    assert linear.data.params["index_model_key"] == logged["data"]["model_key"]
    assert {linear.data.params[f"genre_count.{g}"] for g in GENRES} == {"8"}
    assert linear.data.params["split_size.test"] == str(logged["split"]["sizes"]["test"])
    assert linear.data.metrics["macro_f1"] == pytest.approx(report["macro_f1"])
    assert [linear.data.metrics["macro_f1_ci95_low"], linear.data.metrics["macro_f1_ci95_high"]] == pytest.approx(
        report["macro_f1_ci95"])
    assert linear.data.metrics["f1.rock"] == pytest.approx(report["per_genre"]["rock"]["f1"])
    majority = next(runs[i] for i in logged["mlflow_runs"] if runs[i].info.run_name == "majority")
    difference = logged["comparisons"]["models"]["majority"]["macro_f1_difference"]
    assert majority.data.metrics["vs_linear.macro_f1_difference"] == pytest.approx(difference)
    artifacts = {item.path for item in client.list_artifacts(linear.info.run_id)}
    assert artifacts == {"confusion.json", "confusion-linear.png", "results.md", "metrics.json"}
    with open(client.download_artifacts(linear.info.run_id, "confusion.json")) as confusion:
        assert json.load(confusion) == report["confusion"]

    stored = dict(sql(database, "SELECT r.name, m.value FROM runs r JOIN latest_metrics m ON m.run_uuid = r.run_uuid "
                                "WHERE m.key = 'macro_f1' AND r.run_uuid = ANY(%s)", logged["mlflow_runs"]))
    assert stored == pytest.approx({name: logged["models"][name]["macro_f1"] for name in ("majority", "linear")})
    (status,) = sql(database, "SELECT DISTINCT status FROM runs WHERE run_uuid = ANY(%s)", logged["mlflow_runs"])
    assert status == ("FINISHED",)


def test_two_evaluations_logging_at_once_both_land(tracking_server, indexes, tmp_path: Path) -> None:
    """Two processes, each the first to log to a new experiment: both must create or find it and land."""
    url, database = tracking_server
    experiment = f"sleeve-concurrent-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLFLOW_EXPERIMENT_NAME": experiment}
    processes = [
        subprocess.Popen(
            [sys.executable, str(REPO / "cli.py"), "evaluate", "--index", str(indexes["effnet"]), "--cache",
             str(indexes["cache"]), "--out", str(tmp_path / f"eval{n}"), "--models", "majority,linear",
             "--bootstrap", "20", "--mlflow", "--tracking-uri", url, "--no-progress", "--seed", str(n)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for n in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    logged = [json.loads((tmp_path / f"eval{n}" / "metrics.json").read_text()) for n in range(2)]
    run_ids = {run_id for metrics in logged for run_id in metrics["mlflow_runs"]}
    assert len(run_ids) == 4
    client = mlflow.MlflowClient(tracking_uri=url)
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert {r.info.run_id for r in found} == run_ids
    rows = sql(database, "SELECT r.run_uuid, p.value FROM runs r JOIN experiments e USING (experiment_id) "
                         "JOIN params p ON p.run_uuid = r.run_uuid WHERE e.name = %s AND p.key = 'split_seed'",
               experiment)
    assert sorted(value for _, value in rows) == ["0", "0", "1", "1"] and {i for i, _ in rows} == run_ids


@pytest.mark.parametrize("kind", ["down", "wrong"])
def test_a_server_that_is_down_or_a_wrong_uri_is_one_line_and_the_files_stay(
    indexes, tmp_path: Path, kind: str
) -> None:
    uri = f"http://127.0.0.1:{free_port()}" if kind == "down" else "htp://127.0.0.1:5000"
    result = run("evaluate", "--index", indexes["effnet"], "--cache", indexes["cache"], "--out", tmp_path,
                 "--models", "majority", "--bootstrap", "20", "--mlflow", "--tracking-uri", uri, "--no-progress")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: cannot log to MLflow at {uri}: ")
    for name in ("metrics.json", "results.md", "predictions.csv", "split.csv", "confusion-majority.png"):
        assert (tmp_path / name).is_file(), name
    assert "majority" in json.loads((tmp_path / "metrics.json").read_text())["models"]


def test_a_registered_classifier_is_used_and_one_of_another_model_refused(tracking_server, indexes) -> None:
    url, database = tracking_server
    index, cache = indexes["effnet"], indexes["cache"]
    cover = indexes["covers"] / "pop" / "0.png"
    name = f"sleeve-genre-{uuid.uuid4().hex[:8]}"
    versions = []
    for _ in range(2):
        trained = run("train-classifier", "--index", index, "--cache", cache, "--model", "linear", "--register",
                      name, "--tracking-uri", url, "--no-progress", "--json")
        assert trained.exit_code == 0, trained.output
        versions.append(json.loads(trained.stdout)["registered"])
    assert [v["version"] for v in versions] == [1, 2]
    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    client.set_registered_model_alias(name, "champion", "1")
    assert {item.path for item in client.list_artifacts(versions[0]["run_id"], "classifier")} == {
        "classifier/model.skops", "classifier/classifier.json"}
    rows = sql(database, "SELECT v.version, v.run_id, p.value FROM model_versions v JOIN params p "
                         "ON p.run_uuid = v.run_id AND p.key = 'index_model_key' WHERE v.name = %s ORDER BY 1", name)
    key = json.loads((index / "classifier" / "classifier.json").read_text())["model_key"]
    assert rows == [(1, versions[0]["run_id"], key), (2, versions[1]["run_id"], key)]

    local = run("predict", "--index", index, "--cache", cache, "--cover", cover, "--json")
    assert local.exit_code == 0, local.output
    for spec in (f"{name}@champion", f"{name}:2", name):
        remote = run("predict", "--index", index, "--cache", cache, "--cover", cover, "--json", "--registered", spec,
                     "--tracking-uri", url)
        assert remote.exit_code == 0, remote.output
        assert json.loads(remote.stdout)["genres"] == json.loads(local.stdout)["genres"]
    recommended = run("recommend", "--index", index, "--cache", cache, "--cover", cover, "-k", "2", "--json",
                      "--registered", f"{name}:1", "--tracking-uri", url)
    assert recommended.exit_code == 0, recommended.output
    assert json.loads(recommended.stdout)["query"]["predicted_genre"] == json.loads(local.stdout)["genres"][0]["genre"]

    other = f"{name}-clip"
    trained = run("train-classifier", "--index", indexes["clip"], "--cache", cache, "--model", "linear",
                  "--runtime", "torch", "--register", other, "--tracking-uri", url, "--no-progress")
    assert trained.exit_code == 0, trained.output
    refused = run("predict", "--index", index, "--cache", cache, "--cover", cover, "--registered", other,
                  "--tracking-uri", url)
    assert refused.exit_code == 1 and len(refused.stderr.splitlines()) == 1, refused.output
    assert "trained on clip" in refused.stderr and f"this index holds {key} vectors" in refused.stderr
    missing = run("predict", "--index", index, "--cache", cache, "--cover", cover, "--registered", f"{name}:9",
                  "--tracking-uri", url)
    assert missing.exit_code == 1 and len(missing.stderr.splitlines()) == 1, missing.output
    assert missing.stderr.startswith(f"error: cannot load registered model {name}:9 from MLflow at {url}")


def test_registering_needs_a_reachable_server_and_keeps_the_stored_classifier(
    indexes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index"
    shutil.copytree(indexes["effnet"], index)
    shutil.rmtree(index / "classifier", ignore_errors=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    no_uri = run("train-classifier", "--index", index, "--cache", indexes["cache"], "--register", "g", "--no-progress")
    assert no_uri.exit_code == 1 and "--tracking-uri" in no_uri.stderr
    assert not (index / "classifier").exists()  # refused before training
    down = f"http://127.0.0.1:{free_port()}"
    result = run("train-classifier", "--index", index, "--cache", indexes["cache"], "--register", "g",
                 "--tracking-uri", down, "--no-progress")
    assert result.exit_code == 1 and len(result.stderr.splitlines()) == 1, result.output
    assert result.stderr.startswith(f"error: cannot register a classifier with MLflow at {down}: ")
    assert (index / "classifier" / "classifier.json").is_file() and (index / "classifier" / "model.skops").is_file()


@pytest.mark.skipif(not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
                    reason=f"needs Debian's Chromium at {CHROMIUM} and {CHROMEDRIVER}")
def test_the_mlflow_ui_shows_a_logged_run(tracking_server, logged, tmp_path: Path) -> None:
    """Headless Chromium opens the linear run's page; the screenshot goes to $SLEEVE_SCREENSHOT_DIR when set
    (docs/tracking.md's img/mlflow-run.png was made so)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = tracking_server
    client = mlflow.MlflowClient(tracking_uri=url)
    linear = next(r for r in map(client.get_run, logged["mlflow_runs"]) if r.info.run_name == "linear")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*HEADLESS_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_window_size(1400, 1300)
        driver.get(url)
        driver.execute_script(NO_ASSISTANT)
        driver.get(f"{url}/#/experiments/{linear.info.experiment_id}/runs/{linear.info.run_id}")
        shown = f"{linear.data.metrics['macro_f1']:.3f}"[:4]  # the UI rounds; the leading digits are the same
        WebDriverWait(driver, 120).until(
            lambda d: all(text in d.find_element("tag name", "body").text
                          for text in ("linear", "macro_f1", shown, "index_model_key", "Finished"))
        )
        for close in driver.find_elements("xpath", "//button[@aria-label='Close']"):
            close.click()  # the assistant, if it opened anyway
        time.sleep(2)  # let the last panels finish drawing
        picture = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    finally:
        driver.quit()
    assert len(picture.getcolors(1 << 24)) > 50  # a drawn page, not a blank one
    picture.save(tmp_path / "mlflow-run.png")
    if os.environ.get("SLEEVE_SCREENSHOT_DIR"):
        shutil.copy(tmp_path / "mlflow-run.png", Path(os.environ["SLEEVE_SCREENSHOT_DIR"]) / "mlflow-run.png")
