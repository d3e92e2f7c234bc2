"""Human-readable views of an evaluation: a markdown comparison table and one confusion-matrix picture per model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from index.atomic import atomic_path  # noqa: E402
from recsys.classify.catalog import CLASSIFIERS  # noqa: E402


def _interval(report: dict[str, Any], name: str) -> str:
    low, high = report[f"{name}_ci95"]
    return f"{report[name]:.3f} [{low:.3f}, {high:.3f}]"


def _with_std(report: dict[str, Any], name: str) -> str:
    """``mean ± std`` across CV folds when the report has folds, else the plain value."""
    if "cv" in report:
        return f"{report['cv'][name]['mean']:.3f} ± {report['cv'][name]['std']:.3f}"
    return f"{report[name]:.3f}"


def results_table(metrics: dict[str, Any]) -> str:
    """The comparison table (markdown): every model's headline metrics, then per-genre recall.

    Accuracy and macro-F1 carry 95% bootstrap intervals; after cross-validation the other columns show the
    mean ± standard deviation across folds.
    """
    lines = [
        "| model | accuracy [95% CI] | macro-F1 [95% CI] | weighted F1 | macro precision | macro recall "
        "| top-2 accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for report in metrics["models"].values():
        cells = [
            report["title"],
            _interval(report, "accuracy"),
            _interval(report, "macro_f1"),
            *(_with_std(report, name) for name in ("weighted_f1", "macro_precision", "macro_recall", "top2_accuracy")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for name, reason in metrics.get("unavailable", {}).items():
        lines.append(f"| {CLASSIFIERS[name].summary} | n/a ({reason}) | | | | | |")
    genres = next(iter(metrics["models"].values()))["confusion"]["labels"] if metrics["models"] else []
    if genres:
        lines += ["", "Recall per genre:", "", "| model | " + " | ".join(genres) + " |"]
        lines.append("|---" * (len(genres) + 1) + "|")
        for report in metrics["models"].values():
            recalls = [f"{report['per_genre'][genre]['recall']:.2f}" for genre in genres]
            lines.append(f"| {report['title']} | " + " | ".join(recalls) + " |")
    if "comparisons" in metrics:
        reference = CLASSIFIERS[metrics["comparisons"]["reference"]].summary
        lines += ["", f"Macro-F1 minus the {reference}'s on the same test covers (paired bootstrap 95% interval):", ""]
        lines += ["| model | difference [95% CI] |", "|---|---|"]
        for name, comparison in metrics["comparisons"]["models"].items():
            low, high = comparison["macro_f1_difference_ci95"]
            lines.append(f"| {CLASSIFIERS[name].summary} | {comparison['macro_f1_difference']:+.3f} [{low:+.3f}, {high:+.3f}] |")
    lines += _artist_aware_table(metrics)
    lines += ["", "Chosen on the validation covers:", ""]
    lines += ["| model | hyper-parameters | validation macro-F1 | fit seconds |", "|---|---|---|---|"]
    for report in metrics["models"].values():
        params = ", ".join(f"{key}={value}" for key, value in report["params"].items()) or "none"
        validation = f"{report['validation_macro_f1']:.3f}"
        lines.append(f"| {report['title']} | {params} | {validation} | {report['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def _artist_aware_table(metrics: dict[str, Any]) -> list[str]:
    """Each re-tested model's macro-F1 on today's split beside the split that also groups printed names."""
    if not metrics.get("artist_aware", {}).get("models"):
        return []
    aware = metrics["artist_aware"]
    split = aware["split"]
    lines = [
        "",
        "The same models when covers whose printed name lines read alike (a stand-in for the artist) are also kept "
        f"on one side of the split ({split['covers_in_groups_of_several']} covers in {split['groups_of_several']} "
        f"groups of several, the largest {split['largest_group']}; {_sizes(split['sizes'])}). The drop is how much "
        "of a score came from recognising names seen in training:",
        "",
        "| model | macro-F1, near-duplicates grouped [95% CI] "
        "| macro-F1, printed names grouped too [95% CI] | change |",
        "|---|---|---|---|",
    ]
    for name, report in aware["models"].items():
        today = metrics["models"][name]
        change = report["macro_f1"] - today["macro_f1"]
        lines.append(
            f"| {report['title']} | {_interval(today, 'macro_f1')} | {_interval(report, 'macro_f1')} | {change:+.3f} |"
        )
    return lines


def _sizes(sizes: dict[str, Any]) -> str:
    if "folds" in sizes:
        return f"{sizes['folds']} folds, every one of the {sizes['test']} covers tested once"
    return f"train {sizes['train']}, validation {sizes['validation']}, test {sizes['test']}"


def write_results_markdown(metrics: dict[str, Any], target: Path) -> None:
    data, split = metrics["data"], metrics["split"]
    intro = [
        "# Genre classification results",
        "",
        f"Index: `{data['index']}` ({data['model']}), {data['covers']} labelled covers, genres: "
        + ", ".join(f"{genre} {count}" for genre, count in data["genres"].items())
        + ".",
        *([f"OCR found text on {data['covers_with_text']} of the {data['covers']} covers."]
          if "covers_with_text" in data else []),
        f"Split: {split['method']}; seed {split['seed']}; {_sizes(split['sizes'])}.",
        "Intervals are 95% percentile-bootstrap intervals over the test covers "
        f"({metrics['bootstrap_samples']} resamples).",
        "",
        "",
    ]
    with atomic_path(target) as temporary:
        temporary.write_text("\n".join(intro) + results_table(metrics))


def plot_confusion(report: dict[str, Any], target: Path) -> None:
    """Row-normalised confusion matrix with the counts written in each cell."""
    labels = report["confusion"]["labels"]
    counts = np.asarray(report["confusion"]["counts"])
    normalized = np.asarray(report["confusion"]["normalized"])
    size = 1.2 + 0.9 * len(labels)
    figure, axes = plt.subplots(figsize=(size + 1.2, size))
    image = axes.imshow(normalized, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted genre")
    axes.set_ylabel("true genre")
    axes.set_title(f"{report['title']}\nmacro-F1 {report['macro_f1']:.3f}, accuracy {report['accuracy']:.3f}")
    for row in range(len(labels)):
        for column in range(len(labels)):
            colour = "white" if normalized[row, column] > 0.5 else "black"
            axes.text(column, row, f"{normalized[row, column]:.2f}\n({counts[row, column]})", ha="center",
                      va="center", fontsize=8, color=colour)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true genre")
    figure.tight_layout()
    with atomic_path(target) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)
