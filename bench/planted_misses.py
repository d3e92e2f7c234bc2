"""What the planted covers' wrong answers share with them: why same-artist precision@10 falls as distractors grow.

Each planted cover of a bench/collection_scale.py collection (a row with an artist) is asked as
bench/planted_precision.py asks it (``similar_to_cover``, the user's path, ``--by`` words or both); every top-10
result of another artist is a miss. A miss is a synthetic distractor or a planted cover of another artist, and it
shares with the query either a whole printed line (normalised as recsys.textsearch compares lines, at least
MIN_LINE_CHARS characters) or only n-grams, unless it names the query's artist (collection_scale.names_artist:
its name, "herbiehancock", or a line only that artist's covers print, such as the OCR reading of its logo): the
shared covers that distractors copy their lines from include real covers by some planted artists, so such a
miss may well be the artist's in a real catalogue. Printed: how the misses split, the lines shared most often, and for
those lines how many of the 755 planted covers print them (a line that many artists print, "STEREO", says nothing
of the artist; a distractor copies it hundreds of times at 1M covers).

    python bench/planted_misses.py --index /tmp/s21/scale/sleeve-scale-100000-*/index --queries 200 --by words
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, os.environ.get("PYTHONPATH", str(Path(__file__).resolve().parents[1])).split(os.pathsep)[0])

from bench.collection_scale import artist_marks, names_artist, planted_queries  # noqa: E402
from index.store import load_index, shown_name  # noqa: E402
from recsys import textsearch  # noqa: E402
from recsys.recommend import QueryCover, Recommender  # noqa: E402

K = 10


def whole_lines(text: str) -> set[str]:
    """The normalised printed lines of a cover text long enough to count (textsearch.MIN_LINE_CHARS)."""
    return {line for line in map(textsearch.normalise, text.splitlines()) if len(line) >= textsearch.MIN_LINE_CHARS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="a collection_scale index folder (--read-text)")
    parser.add_argument("--queries", type=int, help="planted covers to ask (a fixed sample; all by default)")
    parser.add_argument("--by", choices=("words", "both"), default="words")
    parser.add_argument("--top-lines", type=int, default=15, help="shared lines to list")
    args = parser.parse_args()
    recommender = Recommender(load_index(args.index))
    metadata = recommender.index.metadata.rename(columns=shown_name)
    labels = metadata["artist"].fillna("").astype(str).str.lower().to_numpy()
    paths = metadata["path"].astype(str).to_numpy()
    texts = [str(text) for text in recommender.texts]
    row_of = {path: row for row, path in enumerate(paths)}
    planted = planted_queries(labels, args.queries)
    marks = artist_marks(labels[labels != ""].tolist(), [texts[row] for row in np.flatnonzero(labels != "")])
    printed_by = collections.Counter(line for row in np.flatnonzero(labels != "") for line in whole_lines(texts[row]))

    kinds: collections.Counter[str] = collections.Counter()
    shared_lines: collections.Counter[str] = collections.Counter()
    hits = []
    for row in planted:
        cover = QueryCover(np.asarray(recommender.index.embeddings[row]), b"", paths[row],
                           str(metadata["content_hash"].iloc[row]))
        found = [row_of[path] for path in recommender.similar_to_cover(cover, by=args.by)["path"]]
        hits.append(np.count_nonzero(labels[found] == labels[row]) / K)  # fewer than K found: the rest missed
        own = whole_lines(texts[row])
        for other in found:
            if labels[other] == labels[row]:
                continue
            shared = own & whole_lines(texts[other])
            source = "planted, another artist" if labels[other] else "distractor"
            if names_artist(texts[other], labels[row], marks[labels[row]]):
                kinds[f"{source}, names the query's artist"] += 1
            else:
                kinds[f"{source}, {'shares a whole line' if shared else 'shares n-grams only'}"] += 1
            shared_lines.update(shared)
    misses = sum(kinds.values())
    print(f"{args.index}: {len(planted)} planted covers by {args.by}, precision@10 {np.mean(hits):.4f}, "
          f"{misses} misses among {K * len(planted)} results")
    for kind, count in sorted(kinds.items()):
        print(f"  {kind:48s} {count:6d}  {count / max(misses, 1):6.1%}")
    print(f"lines shared with the query most often by misses (and how many of the {np.count_nonzero(labels != '')} "
          "planted covers print each):")
    for line, count in shared_lines.most_common(args.top_lines):
        print(f"  {line[:40]:40s} {count:6d} misses  {printed_by[line]:4d} planted")


if __name__ == "__main__":
    main()
