"""Neighbour graph build time: from candidates (recsys.hybrid.neighbour_graph) against every cover scored
against every other (exact_neighbour_graph), on real indexes and on synthetic collections, to show that the
first grows linearly with the covers and the second with their square.

Real: every index given with ``--index`` (built with ``--read-text``). Synthetic: N covers per ``--synthetic``,
vectors drawn as in bench/search.py (1280-d, efficientnet-lite0's size), texts of 1 to 6 real OCR lines drawn
from the texts of ``--lines-from`` (an index built with ``--read-text``). The words model is fitted first and not
timed (build-index stores it either way). The exact graph is built only up to ``--exact-max`` covers; where it is,
the share of its links the candidate graph has is printed.

    python bench/graph.py --index /tmp/artist-idx --index /tmp/shared-idx --lines-from /tmp/shared-idx \\
        --synthetic 20000 50000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from bench.search import Mixture  # noqa: E402
from recsys import hybrid, textsearch  # noqa: E402
from recsys.textstore import load_index_with_texts  # noqa: E402


def synthetic(count: int, lines: list[str], seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """``count`` covers: mixture vectors and texts of 1 to 6 of the real ``lines``, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    vectors = Mixture.fitted(1280, seed=seed).sample(count, seed=seed + 1)
    texts = ["\n".join(rng.choice(lines, size=rng.integers(1, 7))) for _ in range(count)]
    return np.ascontiguousarray(vectors, dtype=np.float32), texts


def measure(name: str, vectors: np.ndarray, texts: list[str], exact_max: int) -> None:
    model = textsearch.fit_text_vectors(texts)
    started = time.perf_counter()
    graph = hybrid.candidate_neighbour_graph(vectors, model, texts)
    seconds = time.perf_counter() - started
    exact_cell = agreement = "-"
    if len(texts) <= exact_max:
        started = time.perf_counter()
        exact = hybrid.exact_neighbour_graph(vectors, model, texts)
        exact_cell = f"{time.perf_counter() - started:.1f}"
        agreement = f"{graph.multiply(exact).nnz / max(exact.nnz, 1):.3f}"
    print(f"| {name} | {len(texts):,} | {seconds:.1f} | {1e3 * seconds / len(texts):.2f} | {exact_cell} | "
          f"{agreement} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, action="append", default=[], help="index built with --read-text")
    parser.add_argument("--lines-from", type=Path, help="index whose OCR lines compose the synthetic texts")
    parser.add_argument("--synthetic", type=int, nargs="*", default=[], help="synthetic collection sizes")
    parser.add_argument("--exact-max", type=int, default=20_000, help="build the exact graph up to this size")
    args = parser.parse_args()
    print(f"# neighbour graph build, {machine_line(describe_machine())}")
    print("| collection | covers | from candidates s | ms per cover | exact (all pairs) s | exact links kept |")
    print("|---|---:|---:|---:|---:|---:|")
    for folder in args.index:
        index, texts = load_index_with_texts(folder)
        measure(f"real: {folder.name}", np.asarray(index.embeddings, dtype=np.float32), texts, args.exact_max)
    if args.synthetic:
        if args.lines_from is None:
            parser.error("--synthetic needs --lines-from")
        _, texts = load_index_with_texts(args.lines_from)
        lines = sorted({line for text in texts for line in text.splitlines() if line.strip()})
        for count in args.synthetic:
            measure("synthetic", *synthetic(count, lines), args.exact_max)


if __name__ == "__main__":
    main()
