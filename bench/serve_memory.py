"""Memory across generation switches: does the server's RSS grow each time build-index writes a new generation?

In one process, the server's own :class:`api.generations.Generations` follows a copy of an index while
build-index alternately removes and adds back 50 covers (``--switches`` times); after each switch 20 look-alike
queries run on the new generation, the old one is dropped, and the process's RSS and the number of generations
still alive (weak references) are printed. Each variant runs in a fresh process, one after the other:

- ``trim``: as the server runs (a replaced generation's memory goes back with glibc's ``malloc_trim``);
- ``no-trim``: the same with ``release_freed_memory`` made a no-op, as before that change.

Needs the soak's manifests and index from ``bench/serve.py`` (in ``--work``).

    python bench/serve_memory.py --work /tmp/serve-bench-work --switches 5
"""

from __future__ import annotations

import argparse
import gc
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine, machine_line  # noqa: E402


def follow(work: Path, cache: Path, switches: int, trim: bool) -> list[tuple[int, float, int]]:
    """(covers, RSS MB, generations alive) after loading the first generation and after each switch."""
    import psutil

    from api import generations as module
    from recsys.answer import QueryAnswerer
    from recsys.settings import Settings

    if not trim:
        module.release_freed_memory = lambda: None
    index = work / "memory-index"
    shutil.rmtree(index, ignore_errors=True)
    shutil.copytree(work / "soak-index", index)
    settings = Settings(cache_dir=cache, progress=False)
    generations = module.Generations(index, lambda path: QueryAnswerer.open(path, settings))
    alive: list[weakref.ref[object]] = []
    rows = []
    for step in range(switches + 1):
        if step:
            manifest = work / f"soak-manifest-{2 - step % 2}.csv"  # 4,400 covers, then 4,450, ...
            subprocess.run([sys.executable, "cli.py", "build-index", "--manifest", str(manifest), "--index", str(index),
                            "--cache", str(cache), "--no-progress"], cwd=ROOT, check=True, capture_output=True)
        current = generations.current()
        path = str(current.answerer.recommender.index.metadata.at[5, "path"])
        for _ in range(20):
            with current.lock:
                current.answerer.answer(path, k=10, by="look")
        alive.append(weakref.ref(current))
        covers = len(current.ids)
        del current
        gc.collect()
        rows.append((covers, psutil.Process().memory_info().rss / 2**20, sum(ref() is not None for ref in alive)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/serve-bench-work"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/serve-bench-cache"))
    parser.add_argument("--switches", type=int, default=5)
    parser.add_argument("--variant", choices=["trim", "no-trim"], help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    if args.variant:
        for covers, rss, alive in follow(args.work, args.cache, args.switches, args.variant == "trim"):
            print(f"{covers}\t{rss:.0f}\t{alive}", flush=True)
        return
    print(f"machine: {machine_line(describe_machine())}")
    print(f"command: python {' '.join(sys.argv)}\n")
    columns = {}
    for variant in ("no-trim", "trim"):
        done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--variant", variant], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        columns[variant] = [line.split("\t") for line in done.stdout.splitlines()]
    print("| after | covers | RSS MB, no trim | generations alive | RSS MB, trim | generations alive |")
    print("|---|--:|--:|--:|--:|--:|")
    for step, (before, after) in enumerate(zip(columns["no-trim"], columns["trim"], strict=True)):
        print(f"| {'first load' if step == 0 else f'switch {step}'} | {before[0]} | {before[1]} | {before[2]} | "
              f"{after[1]} | {after[2]} |")
    for variant, rows in columns.items():
        first, last = float(rows[0][1]), float(rows[-1][1])
        print(f"{variant}: {first:.0f} -> {last:.0f} MB ({last / first - 1:+.1%}) over {args.switches} switches")


if __name__ == "__main__":
    main()
