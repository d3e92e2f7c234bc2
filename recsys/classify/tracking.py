"""MLflow logging of an evaluation: one run per model with its parameters, metrics, intervals and evidence files.

MLflow is an optional extra (``pip install 'sleeve[tracking]'``). Without ``--tracking-uri`` runs go to a
local SQLite store inside the evaluation's output folder, with artifacts beside it, so nothing is written
anywhere the user did not point at; with it they go to a tracking server (``http://host:port``), whose own
backend store may be PostgreSQL. Any failure to log is one ``TrackingError`` line; the evaluation's local
files are written before logging starts, so they survive a server that is down.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from index.errors import SleeveError
from recsys.classify.metrics import SCALARS

EXPERIMENT = "sleeve-genre-classification"
"""The experiment evaluations log to, unless $MLFLOW_EXPERIMENT_NAME (MLflow's own variable) names another."""
EVIDENCE_FILES = ("results.md", "metrics.json")

CLIENT_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
"""MLflow retries a failing request 7 times with doubling back-off (minutes) by default; a server that is down
should be reported in seconds. It also prints each run's URL to stdout, where sleeve's results (and --json)
go, and a progress bar for each small file it moves. Values already set in the environment win."""


class TrackingError(SleeveError):
    """MLflow logging was asked for but cannot be done."""


def default_tracking_uri(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'mlflow' / 'mlflow.db').resolve()}"


def mlflow_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for tracking and registry at ``tracking_uri``, with short HTTP retries."""
    try:
        import mlflow
    except ImportError:
        raise TrackingError("MLflow is not installed; install it with: pip install 'sleeve[tracking]'") from None
    for name, value in CLIENT_SETTINGS.items():
        os.environ.setdefault(name, value)
    return mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextlib.contextmanager
def reported_as_one_line(tracking_uri: str, doing: str = "log to") -> Iterator[None]:
    """Turn whatever MLflow raises (connection refused, unknown scheme, HTTP errors) into one line."""
    try:
        yield
    except SleeveError:
        raise
    except Exception as error:  # MLflow raises MlflowException, requests and SQLAlchemy errors alike
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[0] if lines else type(error).__name__
        if len(reason) > 300:
            reason = reason[:300] + "..."
        raise TrackingError(f"cannot {doing} MLflow at {tracking_uri}: {reason}") from None


def experiment_id(client: Any, name: str, artifact_location: str | None = None) -> str:
    """The id of experiment ``name``, created if missing; safe when several processes create it at once."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except Exception:  # another process created it between our look-up and our create
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def source_commit() -> str | None:
    """The git commit of the sleeve code that ran, when it runs from its own git checkout (not when installed
    inside some other repository)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def log_evaluation(metrics: dict[str, Any], out_dir: Path, tracking_uri: str | None = None) -> list[str]:
    """Log every evaluated model as one MLflow run; return the run ids."""
    out_dir = Path(out_dir)
    uri = tracking_uri or default_tracking_uri(out_dir)
    if tracking_uri is None:
        (out_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    commit = source_commit()
    shared = _shared_params(metrics, commit)
    run_ids = []
    with reported_as_one_line(uri):
        client = mlflow_client(uri)
        artifacts = (out_dir / "mlflow" / "artifacts").resolve().as_uri() if tracking_uri is None else None
        experiment = experiment_id(client, os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT, artifacts)
        for name, report in metrics["models"].items():
            tags = {"sleeve.model": name, "sleeve.index_model_key": metrics["data"]["model_key"],
                    "mlflow.source.name": "sleeve evaluate"}
            if commit:
                tags["mlflow.source.git.commit"] = commit
            run_id = client.create_run(experiment, run_name=name, tags=tags).info.run_id
            params = {**shared, **{f"param.{k}": v for k, v in report["params"].items()}}
            comparison = metrics.get("comparisons", {}).get("models", {}).get(name)
            log_values(client, run_id, params, _model_metrics(report, comparison, metrics.get("comparisons")))
            client.log_dict(run_id, report["confusion"], "confusion.json")
            for path in [out_dir / f"confusion-{name}.png", *(out_dir / file for file in EVIDENCE_FILES)]:
                if path.is_file():
                    client.log_artifact(run_id, str(path))
            client.set_terminated(run_id)
            run_ids.append(run_id)
    return run_ids


def _shared_params(metrics: dict[str, Any], commit: str | None) -> dict[str, Any]:
    """What every run of one evaluation shares: the collection, the index model and the split."""
    data, split = metrics["data"], metrics["split"]
    params = {
        "index": data["index"],
        "index_model": data["model"],
        "index_model_key": data["model_key"],
        "covers": data["covers"],
        "near_duplicate_groups": data["near_duplicate_groups"],
        "split_method": split["method"],
        "split_seed": split["seed"],
        "bootstrap_samples": metrics["bootstrap_samples"],
        **{f"genre_count.{genre}": count for genre, count in data["genres"].items()},
        **{f"split_size.{part}": size for part, size in split["sizes"].items()},
    }
    if "test_source" in split:
        params["split_test_source"] = split["test_source"]
    if commit:
        params["sleeve_commit"] = commit
    return params


def _model_metrics(
    report: dict[str, Any], comparison: dict[str, Any] | None, comparisons: dict[str, Any] | None
) -> dict[str, float]:
    """Every number of one model's report: scalars, interval bounds, per genre, CV spread, paired difference."""
    values = {key: report[key] for key in (*SCALARS, "validation_macro_f1", "seconds")}
    for key, (low, high) in ((k, v) for k, v in report.items() if k.endswith("_ci95")):
        values[f"{key}_low"], values[f"{key}_high"] = low, high
    for genre, scores in report["per_genre"].items():
        for key in ("precision", "recall", "f1", "support"):
            values[f"{key}.{genre}"] = scores[key]
    for key, spread in report.get("cv", {}).items():
        values[f"cv.{key}.mean"], values[f"cv.{key}.std"] = spread["mean"], spread["std"]
    if comparison is not None and comparisons is not None:
        prefix = f"vs_{comparisons['reference']}"
        low, high = comparison["macro_f1_difference_ci95"]
        values[f"{prefix}.macro_f1_difference"] = comparison["macro_f1_difference"]
        values[f"{prefix}.macro_f1_difference_ci95_low"] = low
        values[f"{prefix}.macro_f1_difference_ci95_high"] = high
    return {key: float(value) for key, value in values.items()}


def log_values(client: Any, run_id: str, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Params and metrics in one request (a remote server is a network round trip per call)."""
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
        params=[Param(key, str(value)[:500]) for key, value in params.items()],
    )
