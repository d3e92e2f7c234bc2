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
import tempfile
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


def cold(checkout: Path, command: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, peak RssAnon MB) of ``python cli.py COMMAND`` run from ``checkout``; exits on
    failure. Peak RSS counts the mapped pages of the index files a query touched (page cache the kernel may
    drop), RssAnon (sampled every 5 ms) only the process's own heap."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(["/usr/bin/time", "-v", sys.executable, "cli.py", *command], cwd=checkout,
                                   stdout=subprocess.DEVNULL, stderr=err, text=True,
                                   env=os.environ | THREADS | {"PYTHONPATH": str(checkout)})
        anon = 0
        while process.poll() is None:
            anon = max(anon, _child_kib(process.pid, "RssAnon"))
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        err.seek(0)
        report = err.read()
    if process.returncode:
        raise SystemExit(f"{checkout}: cli.py {' '.join(command)} failed:\n{report[-2000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1))
    return seconds, peak_kb / 1024, anon / 1024


def _child_kib(parent: int, field: str) -> int:
    """``field`` of /proc/PID/status (kB) of ``parent``'s child process (time's python), 0 when gone."""
    try:
        child = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()[0]
        with open(f"/proc/{child}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))
    except (OSError, IndexError, StopIteration):
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", action="append", required=True, help="CHECKOUT=INDEX (repeat)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pairs = [(Path(checkout).resolve(), Path(index)) for checkout, index in (p.split("=", 1) for p in args.pair)]
    machine = describe_machine()
    print(f"machine: {machine_line(machine)}")
    queries = {index: planted_query(index) for _, index in pairs}
    runs: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    for _ in range(args.runs):
        for number, (checkout, index) in enumerate(pairs):
            artist, cover = queries[index]
            for name, command in (
                ("search", ["search", artist, "--index", str(index)]),
                ("recommend --by both", ["recommend", "--cover", cover, "--by", "both", "--index", str(index)]),
            ):
                runs.setdefault((number, name), []).append(cold(checkout, command))
    print("| checkout | index | command | wall s (median) | peak RSS MB | peak RssAnon MB |\n"
          "|---|---|---|---:|---:|---:|")
    for (number, name), measured in runs.items():
        checkout, index = pairs[number]
        print(f"| {checkout} | {index} | {name} | {statistics.median(m[0] for m in measured):.2f} | "
              f"{max(m[1] for m in measured):,.0f} | {max(m[2] for m in measured):,.0f} |")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
