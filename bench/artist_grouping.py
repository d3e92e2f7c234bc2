"""How well does evaluate's artist-aware split stand in for the artist? Measured where true artists are known.

``evaluate`` groups covers whose printed name lines read alike (recsys.classify.split.printed_name_groups), so
that a text model is tested on names it has not learned. Most collections do not label artists, which is why
the name line stands in for them. On a collection that does label them (../shared/artist-covers: 755 covers,
63 artists, an ``artist_id`` column) this bench prints, for three groupings of the same covers:

- near-duplicates only (today's split), printed names (evaluate's artist-aware split), true artists (the ideal):
- same-artist pairs kept in one group: of all pairs of covers by one artist, the share in the same group
  (1.0 for the true-artist grouping); pairs in a group by one artist: of all pairs in one group, the share that
  share an artist (how often the grouping joins different artists);
- test covers whose artist is in training: after the 60/20/20 split evaluate makes, the share of test covers
  with at least one cover of their artist in the training part;
- macro-F1 of the genre models (``--models``) on that split's test covers. Genres here are per artist, so a text
  model that reads names does well exactly when it has seen the artist.

    python cli.py build-index --manifest ../shared/artist-covers/MANIFEST.csv --index /tmp/artist-idx
    python bench/artist_grouping.py --index /tmp/artist-idx            # OCR of 755 covers once (cached)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score, pair_confusion_matrix

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from index.store import load_index  # noqa: E402
from recsys.classify.data import from_index, with_cover_text  # noqa: E402
from recsys.classify.split import (  # noqa: E402
    dhashes,
    near_duplicate_groups,
    printed_name_groups,
    train_validation_test,
)
from recsys.classify.train import fit_model  # noqa: E402


def pair_scores(artists: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Share of same-artist pairs in one group, and of same-group pairs by one artist."""
    (_, apart_in_group), (split_apart, together) = pair_confusion_matrix(artists, groups)
    return {
        "same_artist_pairs_kept_together": together / (together + split_apart),
        "pairs_in_a_group_by_one_artist": together / (together + apart_in_group) if together + apart_in_group else 0,
    }


def measure(covers: Any, artists: np.ndarray, groups: np.ndarray, models: list[str], seed: int) -> dict[str, Any]:
    names = train_validation_test(covers.genres, groups, seed=seed)
    parts = {name: covers.subset(names == name) for name in ("train", "validation", "test")}
    trained_artists = set(artists[names == "train"])
    sizes = np.bincount(np.unique(groups, return_inverse=True)[1])
    result: dict[str, Any] = {
        **pair_scores(artists, groups),
        "groups_of_several": int((sizes > 1).sum()),
        "largest_group": int(sizes.max()),
        "test_covers_whose_artist_is_in_training": float(
            np.mean([artist in trained_artists for artist in artists[names == "test"]])
        ),
        "macro_f1": {},
    }
    for model in models:
        fitted = fit_model(model, parts["train"], parts["validation"])
        predicted = np.asarray(fitted.classes, dtype=object)[fitted.predict_proba(parts["test"]).argmax(axis=1)]
        result["macro_f1"][model] = float(f1_score(parts["test"].genres, predicted, average="macro"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", required=True, help="index built from a manifest with an artist column")
    parser.add_argument("--artist-column", default="artist_id")
    parser.add_argument("--models", default="text,svm,svm+text")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    machine = describe_machine()
    index = load_index(args.index)
    labelled = index.metadata["genre"].notna().to_numpy()
    artists = index.metadata[args.artist_column].astype(str).to_numpy()[labelled]
    covers = with_cover_text(from_index(index))
    near = near_duplicate_groups(dhashes(covers.paths))
    groupings = {
        "near-duplicates only (today)": near,
        "printed names too (evaluate's artist-aware split)": printed_name_groups(covers.texts, near),
        "true artists (the ideal)": np.unique(artists, return_inverse=True)[1],
    }
    models = [name.strip() for name in args.models.split(",") if name.strip()]
    results = {label: measure(covers, artists, groups, models, args.seed) for label, groups in groupings.items()}
    print(f"# {len(covers)} covers, {len(set(artists))} artists, {index.folder}; {machine_line(machine)}")
    print()
    print("| grouping | same-artist pairs kept together | pairs in a group by one artist | groups of several "
          "(largest) | test covers whose artist is in training | " + " | ".join(f"{m} macro-F1" for m in models)
          + " |")
    print("|---" * (5 + len(models)) + "|")
    for label, row in results.items():
        cells = [label, f"{row['same_artist_pairs_kept_together']:.3f}", f"{row['pairs_in_a_group_by_one_artist']:.3f}",
                 f"{row['groups_of_several']} ({row['largest_group']})",
                 f"{row['test_covers_whose_artist_is_in_training']:.3f}",
                 *(f"{row['macro_f1'][m]:.3f}" for m in models)]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
