"""The rows of a content hash and of a path: index.table's hash lookup beside the column compare it replaced.

For each index folder and column: the lookup's build time (the first query of a loaded index pays it), how much
the process's peak memory grew while building, the bytes it keeps, and the median time of one lookup and of one
compare (``Table.equals``) of a value from the middle row, on the table as loaded (parquet, not decoded).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/row_lookup.py --index /tmp/idx-10k /tmp/idx-100k
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from index.store import load_index  # noqa: E402

CALLS = 20


def measure(folder: Path) -> None:
    index = load_index(folder)
    table = index.table
    for column in ("content_hash", "path"):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        lookup = table._lookup(column)
        built = time.perf_counter() - started
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        value = str(table.rows(np.array([index.info.count // 2]), columns=[column])[column].iloc[0])
        seconds = []
        for _ in range(CALLS):
            started = time.perf_counter()
            compared = np.flatnonzero(table.equals(column, value))
            middle = time.perf_counter()
            found = table.rows_equal(column, value)
            seconds.append((middle - started, time.perf_counter() - middle))
            assert compared.tolist() == found.tolist()
        compare, looked = np.median(np.array(seconds), axis=0) * 1e3
        print(f"| {index.info.count:,} | {column} | {built:.3f} | {grown / 1024:.1f} | {lookup.nbytes / 2**20:.2f} | "
              f"{compare:.2f} | {looked:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, nargs="+", required=True, help="index folders")
    args = parser.parse_args()
    print(f"# start: {machine_line(describe_machine())}")
    print("| covers | column | build s | peak grew MiB | kept MiB | compare ms | lookup ms |\n"
          "|---:|---|---:|---:|---:|---:|---:|")
    for folder in args.index:
        measure(folder)
    print(f"# end: {machine_line(describe_machine())}")


if __name__ == "__main__":
    main()
