"""Genre classifiers in an MLflow model registry: register the one stored beside an index, load a registered one.

A registered version is an MLflow run holding the classifier's two files (``model.skops`` and
``classifier.json``, exactly as ``train-classifier`` stores them) and a model version pointing at them. Loading
downloads the info file first and refuses a classifier trained on another index model before its estimator is
even fetched; the estimator is then read with sleeve's own skops loader and its list of trusted types. Nothing
fetched from the server is ever unpickled (MLflow's own model flavours would).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

from recsys.classify.persist import (
    CLASSIFIER_DIR,
    INFO_FILE,
    MODEL_FILE,
    ClassifierError,
    ClassifierInfo,
    classifier_folder,
    load_classifier,
    read_classifier_info,
)
from recsys.classify.tracking import (
    TrackingError,
    experiment_id,
    log_values,
    mlflow_client,
    reported_as_one_line,
    source_commit,
)

EXPERIMENT = "sleeve-classifiers"


def resolve_tracking_uri(tracking_uri: str | None) -> str:
    """``tracking_uri``, else $MLFLOW_TRACKING_URI: a registry is shared, so there is no local default."""
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise TrackingError(
            "give the registry's --tracking-uri (e.g. http://127.0.0.1:5000) or set MLFLOW_TRACKING_URI"
        )
    return uri


def parse_spec(spec: str) -> tuple[str, str | None, str | None]:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` as (name, version, alias)."""
    name, at, alias = spec.partition("@")
    if at:
        if not name or not alias:
            raise ClassifierError(f"cannot read registered model {spec!r}; write NAME, NAME:VERSION or NAME@ALIAS")
        return name, None, alias
    name, colon, version = spec.rpartition(":")
    if not colon:
        return spec, None, None
    if not name or not version.isdigit():
        raise ClassifierError(f"cannot read registered model {spec!r}; write NAME, NAME:VERSION or NAME@ALIAS")
    return name, version, None


def register_classifier(index_folder: str | Path, name: str, tracking_uri: str | None = None) -> dict[str, Any]:
    """Log the classifier stored beside ``index_folder`` as a run and a new version of registered model ``name``."""
    info = read_classifier_info(index_folder)
    folder = classifier_folder(index_folder)
    uri = resolve_tracking_uri(tracking_uri)
    tags = {"sleeve.model": info.model, "sleeve.index_model_key": info.model_key}
    commit = source_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    run_tags = {**tags, "mlflow.source.name": "sleeve train-classifier"}
    with reported_as_one_line(uri, "register a classifier with"):
        client = mlflow_client(uri)
        run = client.create_run(experiment_id(client, EXPERIMENT), run_name=f"{name}: {info.model}", tags=run_tags)
        run_id = run.info.run_id
        scores = {} if info.validation_macro_f1 is None else {"validation_macro_f1": info.validation_macro_f1}
        log_values(client, run_id, _info_params(info), scores)
        for file in (MODEL_FILE, INFO_FILE):
            client.log_artifact(run_id, str(folder / file), CLASSIFIER_DIR)
        client.set_terminated(run_id)
        _ensure_registered_model(client, name)
        version = client.create_model_version(
            name, source=f"{run.info.artifact_uri}/{CLASSIFIER_DIR}", run_id=run_id, tags=tags,
            description=f"{info.title} on {info.trained_on} covers of {info.model_key} vectors",
        )
    return {"name": name, "version": int(version.version), "run_id": run_id, "tracking_uri": uri,
            "classifier": dataclasses.asdict(info)}


def load_registered(
    spec: str, model_key: str, tracking_uri: str | None = None
) -> tuple[Any, ClassifierInfo]:
    """The estimator and info of registered version ``spec``, refused unless trained on ``model_key`` vectors."""
    name, version, alias = parse_spec(spec)
    uri = resolve_tracking_uri(tracking_uri)
    with reported_as_one_line(uri, f"load registered model {spec} from"):
        client = mlflow_client(uri)
        chosen = _model_version(client, name, version, alias)
        if not chosen.run_id:
            raise ClassifierError(f"{name} version {chosen.version} was not registered by sleeve (it has no run)")
        with tempfile.TemporaryDirectory(prefix="sleeve-registered-") as download:
            folder = classifier_folder(download)  # laid out as in an index folder, for read/load_classifier
            folder.mkdir()
            client.download_artifacts(chosen.run_id, f"{CLASSIFIER_DIR}/{INFO_FILE}", str(folder))
            info = read_classifier_info(download)
            if info.model_key != model_key:
                raise ClassifierError(
                    f"registered classifier {name} version {chosen.version} was trained on {info.model_key} "
                    f"vectors, but this index holds {model_key} vectors; register one trained on this index"
                )
            client.download_artifacts(chosen.run_id, f"{CLASSIFIER_DIR}/{MODEL_FILE}", str(folder))
            return load_classifier(download, model_key)


def _model_version(client: Any, name: str, version: str | None, alias: str | None) -> Any:
    """The version asked for: by alias, by number, or the newest."""
    if alias:
        return client.get_model_version_by_alias(name, alias)
    if version:
        return client.get_model_version(name, version)
    versions = client.search_model_versions(f"name = '{name}'")
    if not versions:
        raise ClassifierError(f"registered model {name} has no versions; register one with train-classifier --register")
    return max(versions, key=lambda found: int(found.version))


def _ensure_registered_model(client: Any, name: str) -> None:
    """Create registered model ``name`` unless it exists (another process may create it at the same time)."""
    try:
        client.create_registered_model(name, description="sleeve genre classifier")
    except Exception:
        client.get_registered_model(name)  # raises when creating failed for another reason


def _info_params(info: ClassifierInfo) -> dict[str, Any]:
    params = {
        "model": info.model,
        "title": info.title,
        "inputs": info.inputs,
        "index_model_key": info.model_key,
        "classes": ",".join(info.classes),
        "trained_on": info.trained_on,
        "sleeve_version": info.sleeve_version,
    }
    params.update({f"param.{key}": value for key, value in info.params.items()})
    return params
