"""The report's "Editions and duplicates" section: how much of the collection is re-scans, reissues and copies of
one release, and the largest such groups with their covers side by side.

The groups are recsys.editions' (candidate pairs only, perceptual hashes cached by content hash), less the groups
dismissed in the index folder, so the report agrees with ``cli.py editions`` and the app. Only the largest
MAX_GROUPS groups are drawn, at most MAX_MEMBERS thumbnails each, so the section stays small on any collection.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.thumbnails import HOVER_SIZE, thumbnail_uri
from index.store import CoverIndex
from recsys.editions import REASONS, find_editions, without_dismissed
from recsys.images import BadImageError, load_cover
from recsys.textstore import texts_by_row

MAX_GROUPS = 8
MAX_MEMBERS = 6


@dataclasses.dataclass
class EditionsSection:
    """What the section shows: counts over the whole index, and the largest groups."""

    covers: int
    """Covers in some edition group."""
    groups: int
    total: int
    """Covers in the index."""
    largest: pd.DataFrame
    """One row per shown group, largest first: group, size, reason (its members' reasons, strongest first),
    score (its members' mean), paths (all members)."""
    thumbnails: dict[str, str]
    """Path -> data URI, for at most MAX_MEMBERS members of each shown group."""
    with_text: bool
    """Whether the words took part (the index holds cover text)."""

    def sentence(self) -> str:
        if not self.groups:
            return f"No two of the {self.total:,} covers look like one release."
        return (
            f"{self.covers:,} of the {self.total:,} covers ({self.covers / self.total:.1%}) fall in "
            f"{self.groups:,} edition group{'s' if self.groups != 1 else ''}: re-scans, crops, reissues or copies "
            "of one release."
        )

    def to_dict(self) -> dict[str, Any]:
        """Counts, the sentence and the shown groups, for --json (no thumbnails)."""
        return {
            "sentence": self.sentence(),
            "covers_in_groups": self.covers,
            "groups": self.groups,
            "largest": self.largest.to_dict(orient="records"),
        }


def editions_section(
    index: CoverIndex, cache_dir: str | Path | None = None, max_groups: int = MAX_GROUPS
) -> EditionsSection:
    """The section for ``index``; perceptual hashes come from (and go to) ``cache_dir``."""
    groups = without_dismissed(index, find_editions(index, cache_dir=cache_dir))
    shown = groups[groups["group"].isin(groups["group"].unique()[:max_groups])]
    return EditionsSection(
        covers=len(groups),
        groups=int(groups["group"].nunique()),
        total=index.info.count,
        largest=summarise_groups(shown),
        thumbnails=_thumbnails(shown),
        with_text=texts_by_row(index) is not None,
    )


def summarise_groups(groups: pd.DataFrame) -> pd.DataFrame:
    """One row per group of find_editions' member rows, in their order (largest first)."""
    rows = [
        {
            "group": int(number),
            "size": len(members),
            "reason": "; ".join(reason for reason in REASONS if reason in set(members["reason"])),
            "score": round(float(members["score"].mean()), 3),
            "paths": [str(path) for path in members["path"]],
        }
        for number, members in groups.groupby("group", sort=False)
    ]
    return pd.DataFrame(rows, columns=["group", "size", "reason", "score", "paths"])


def _thumbnails(members: pd.DataFrame) -> dict[str, str]:
    """Small thumbnails of up to MAX_MEMBERS members of each group (none for a file that cannot be read)."""
    found: dict[str, str] = {}
    for path in members.groupby("group", sort=False).head(MAX_MEMBERS)["path"].astype(str):
        try:
            found[path] = thumbnail_uri(load_cover(path, reduce_to=HOVER_SIZE), HOVER_SIZE)
        except BadImageError:
            continue
    return found
