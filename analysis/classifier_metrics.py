"""Per-genre recall from the metrics.json that ``sleeve evaluate`` writes, to set beside the geometry.

A classifier's recall says how often a genre is recognised when a model is trained for exactly that; the
neighbourhood measures say how much the raw embedding already separates it. Schema read here:
``{"models": {name: {"macro_f1": float, "per_genre": {genre: {"recall": float, ...}}}}}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from index.errors import SleeveError


class MetricsFileError(SleeveError):
    """The metrics file cannot be used; the message says why and what to do."""


def read_recall(path: str | Path, model: str | None = None) -> tuple[str, pd.Series]:
    """(model name, recall per genre) of ``model``, or of the model with the best macro F1 when None."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise MetricsFileError(
            f"metrics file {path} not found; run sleeve evaluate first, or leave out --metrics"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MetricsFileError(f"cannot read metrics file {path} ({error}); run sleeve evaluate again") from None
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, dict) or not models:
        raise MetricsFileError(f"{path} lists no models under \"models\"; is it a sleeve evaluate metrics.json?")
    if model is None:
        scored = {name: entry.get("macro_f1") for name, entry in models.items() if isinstance(entry, dict)}
        scored = {name: value for name, value in scored.items() if isinstance(value, (int, float))}
        if not scored:
            raise MetricsFileError(f"no model in {path} has a macro_f1; name one with --metrics-model")
        model = max(scored, key=scored.__getitem__)
    elif model not in models:
        raise MetricsFileError(f"model {model!r} is not in {path}; it has: {', '.join(sorted(models))}")
    per_genre = models[model].get("per_genre") if isinstance(models[model], dict) else None
    if not isinstance(per_genre, dict):
        raise MetricsFileError(f"model {model!r} in {path} has no per_genre scores")
    try:
        recall = {genre: float(scores["recall"]) for genre, scores in per_genre.items()}
    except (KeyError, TypeError, ValueError):
        raise MetricsFileError(f"per_genre scores of {model!r} in {path} lack a numeric recall") from None
    return model, pd.Series(recall, name="recall").sort_index()
