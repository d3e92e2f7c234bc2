"""Optional MLflow logging of an evaluation: one run per model with its parameters, metrics and confusion matrix.

MLflow is an optional extra (``pip install 'sleeve[tracking]'``). Without ``--tracking-uri`` runs go to a
local SQLite store inside the evaluation's output folder, with artifacts beside it, so nothing is written
anywhere the user did not point at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsys.classify.metrics import SCALARS
from recsys.errors import SleeveError

EXPERIMENT = "sleeve-genre-classification"


class TrackingError(SleeveError):
    """MLflow logging was asked for but cannot be done."""


def default_tracking_uri(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'mlflow' / 'mlflow.db').resolve()}"


def log_evaluation(metrics: dict[str, Any], out_dir: Path, tracking_uri: str | None = None) -> list[str]:
    """Log every evaluated model as one MLflow run; return the run ids."""
    try:
        import mlflow
    except ImportError:
        raise TrackingError("MLflow is not installed; install it with: pip install 'sleeve[tracking]'") from None
    out_dir = Path(out_dir)
    uri = tracking_uri or default_tracking_uri(out_dir)
    if tracking_uri is None:
        (out_dir / "mlflow").mkdir(parents=True, exist_ok=True)
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        artifacts = (out_dir / "mlflow" / "artifacts").resolve().as_uri() if tracking_uri is None else None
        experiment_id = client.create_experiment(EXPERIMENT, artifact_location=artifacts)
    else:
        experiment_id = experiment.experiment_id
    shared = {
        "index": metrics["data"]["index"],
        "index_model": metrics["data"]["model_key"],
        "split_method": metrics["split"]["method"],
        "split_seed": metrics["split"]["seed"],
    }
    run_ids = []
    for name, report in metrics["models"].items():
        run = client.create_run(experiment_id, run_name=name, tags={"sleeve.model": name})
        run_id = run.info.run_id
        for key, value in {**shared, **{f"param.{k}": v for k, v in report["params"].items()}}.items():
            client.log_param(run_id, key, str(value)[:500])
        for key in SCALARS:
            client.log_metric(run_id, key, float(report[key]))
        for key in ("accuracy", "macro_f1"):
            client.log_metric(run_id, f"{key}_ci95_low", report[f"{key}_ci95"][0])
            client.log_metric(run_id, f"{key}_ci95_high", report[f"{key}_ci95"][1])
        for genre, values in report["per_genre"].items():
            for key in ("precision", "recall", "f1"):
                client.log_metric(run_id, f"{key}.{genre}", values[key])
        client.log_dict(run_id, report["confusion"], "confusion.json")
        picture = out_dir / f"confusion-{name}.png"
        if picture.is_file():
            client.log_artifact(run_id, str(picture))
        client.set_terminated(run_id)
        run_ids.append(run_id)
    return run_ids
