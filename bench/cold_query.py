"""Cold ``cli.py search`` and ``cli.py recommend --by both`` (whole process: wall seconds and peak RSS) of one or
more checkouts of sleeve on index folders, run alternately so that the machine's load falls on each alike.

Each pair is ``CHECKOUT=INDEX``: the checkout's cli.py answers on that index (e.g. the code before a change on
an index it wrote, and the code after on the same collection as it writes it). The query text is a planted
artist's name and the query cover a planted cover's image file (bench/collection_scale.py's collections, whose
``artist`` column names the planted covers). Peak RSS is ``/usr/bin/time``'s maximum resident set size.

    python bench/cold_query.py --pair /tmp/main=/tmp/old-idx --pair .=/tmp/new-idx --runs 3
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine, machine_line  # noqa: E402

THREADS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def planted_query(index: Path) -> tuple[str, str]:
    """(an artist's name, the image file of one of its covers) among the planted covers of ``index``."""
    from index.store import load_index

    metadata = load_index(index).metadata
    planted = metadata[metadata["user:artist"].fillna("").astype(str) != ""]
    first = planted.iloc[len(planted) // 2]
    return str(first["user:artist"]), str(first["path"])


def cold(checkout: Path, command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak MB) of ``python cli.py COMMAND`` run from ``checkout``; exits on failure."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", sys.executable, "cli.py", *command], cwd=checkout,
                          capture_output=True, text=True, env=os.environ | THREADS | {"PYTHONPATH": str(checkout)})
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{checkout}: cli.py {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return seconds, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", action="append", required=True, help="CHECKOUT=INDEX (repeat)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pairs = [(Path(checkout).resolve(), Path(index)) for checkout, index in (p.split("=", 1) for p in args.pair)]
    machine = describe_machine()
    print(f"machine: {machine_line(machine)}")
    queries = {index: planted_query(index) for _, index in pairs}
    runs: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        for number, (checkout, index) in enumerate(pairs):
            artist, cover = queries[index]
            for name, command in (
                ("search", ["search", artist, "--index", str(index)]),
                ("recommend --by both", ["recommend", "--cover", cover, "--by", "both", "--index", str(index)]),
            ):
                runs.setdefault((number, name), []).append(cold(checkout, command))
    print("| checkout | index | command | wall s (median) | peak MB (max) |\n|---|---|---|---:|---:|")
    for (number, name), measured in runs.items():
        checkout, index = pairs[number]
        print(f"| {checkout} | {index} | {name} | {statistics.median(s for s, _ in measured):.2f} | "
              f"{max(mb for _, mb in measured):,.0f} |")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
