"""What storing the words model saves: cold ``search`` processes with the stored model and with a refit, and the fit.

On an index built with ``build-index --read-text`` (which stores the fitted words model, ``words-*.npz``):
- cold ``cli.py search`` (a fresh process per query, wall time) on the index as built, then on a copy without
  the stored model (as an index built before sleeve stored it: the process refits on its first words query),
  and, with ``--before REPO``, that checkout's ``cli.py`` on the copy (sleeve before the stored model);
- the stored model's scores against a refit's on the index's own text (largest difference over every cover and
  the artist names as queries; 0 up to float rounding);
- the fit alone, as build-index runs it (recsys.textsearch.fit_text_vectors) and as sleeve ran it before (sklearn's
  TfidfVectorizer fit and transform), on the index's texts and on ``--fit-covers`` synthetic cover texts made of
  1-6 of its real OCR lines each.

    python cli.py build-index --manifest ../shared/artist-covers/MANIFEST.csv --index /tmp/artist-idx --read-text
    python bench/words_model.py --index /tmp/artist-idx --before /path/to/older/checkout
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine, machine_line  # noqa: E402
from recsys import textsearch  # noqa: E402
from recsys.recommend import Recommender  # noqa: E402


def cold_search(repo: Path, index: Path, query: str, runs: int) -> list[float]:
    """Wall seconds of ``runs`` fresh ``cli.py search`` processes."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, str(repo / "cli.py"), "search", query, "--index", str(index), "-k", "10",
                        "--json"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=repo)
        times.append(time.perf_counter() - started)
    return times


def without_stored_model(index: Path, target: Path) -> Path:
    """A copy of ``index`` as sleeve stored it before the words model: text and graph, no words file."""
    shutil.copytree(index, target)
    info = json.loads((target / "index.json").read_text())
    (target / info["files"].pop("words")).unlink()
    (target / "index.json").write_text(json.dumps(info))
    return target


def timed(function, *args) -> float:  # type: ignore[no-untyped-def]
    """Median wall seconds of three calls."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def sklearn_fit(texts: list[str]) -> None:
    """The fit as sleeve ran it before the stored model: sklearn fits, then vectorises covers and lines."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=textsearch._analyse, sublinear_tf=True, dtype=np.float32).fit(texts)
    vectorizer.transform(texts)
    vectorizer.transform(textsearch._split_lines(texts)[0])


def synthetic_texts(texts: list[str], count: int, seed: int = 0) -> list[str]:
    """``count`` cover texts of 1-6 real OCR lines each, drawn from ``texts``."""
    rng = np.random.default_rng(seed)
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    return ["\n".join(rng.choice(lines, size=rng.integers(1, 7))) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="index built with --read-text by this sleeve")
    parser.add_argument("--before", type=Path, help="an older sleeve checkout whose cli.py to time on the copy")
    parser.add_argument("--query", default="peter tosh")
    parser.add_argument("--runs", type=int, default=5, help="cold processes per row")
    parser.add_argument("--fit-covers", type=int, default=4450, help="synthetic collection size for the fit")
    args = parser.parse_args()
    print(machine_line(describe_machine()))
    recommender = Recommender.open(args.index)
    texts = [str(text) for text in recommender.texts]
    info = recommender.index.info
    stored = recommender._text_model
    refit = textsearch.fit_text_vectors(texts)
    queries = sorted(set(recommender.index.metadata.get("user:artist", [args.query])))
    gap = max(np.abs(textsearch.words_similarity(stored, q, typed=True)
                     - textsearch.words_similarity(refit, q, typed=True)).max()
              for q in queries)
    rows = np.arange(len(texts))
    gap = max(gap, np.abs(textsearch.words_similarity_rows(stored, rows)
                          - textsearch.words_similarity_rows(refit, rows)).max())
    size = (args.index / info.files["words"]).stat().st_size
    print(f"{len(texts)} covers, {len(stored.terms)} terms, words file {size / 1e6:.2f} MB; stored against refit: "
          f"largest score difference {gap:.2e} over {len(queries)} queries and all cover pairs")
    with tempfile.TemporaryDirectory() as scratch:
        older = without_stored_model(args.index, Path(scratch) / "older")
        rows_out = [("stored model (this sleeve)", cold_search(REPO, args.index, args.query, args.runs)),
                    ("no stored model: refit (this sleeve)", cold_search(REPO, older, args.query, args.runs))]
        if args.before:
            rows_out.append((f"no stored model: refit ({args.before.name})",
                             cold_search(args.before, older, args.query, args.runs)))
    print(f"\ncold `search {args.query!r}` (whole process, {args.runs} runs)")
    print("| index | median s | min s | max s |\n|---|---:|---:|---:|")
    for label, times in rows_out:
        print(f"| {label} | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |")
    synthetic = synthetic_texts(texts, args.fit_covers)
    print(f"\n{machine_line(describe_machine())}")
    print("\nfit (median of 3, s)\n| covers | build-index's fit (stored) | sklearn fit + transform (before) |\n|---|---:|---:|")
    for label, collection in ((f"{len(texts)} real", texts), (f"{len(synthetic)} synthetic", synthetic)):
        print(f"| {label} | {timed(textsearch.fit_text_vectors, collection):.2f} | "
              f"{timed(sklearn_fit, collection):.2f} |")


if __name__ == "__main__":
    main()
