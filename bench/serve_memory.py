"""The server's memory: across generation switches, and per worker process.

Across switches: does the server's RSS grow each time build-index writes a new generation?

In one process, the server's own :class:`api.generations.Generations` follows a copy of an index while
build-index alternately removes and adds back 50 covers (``--switches`` times); after each switch 20 look-alike
queries run on the new generation, the old one is dropped, and the process's RSS and the number of generations
still alive (weak references) are printed. Each variant runs in a fresh process, one after the other:

- ``trim``: as the server runs (a replaced generation's memory goes back with glibc's ``malloc_trim``);
- ``no-trim``: the same with ``release_freed_memory`` made a no-op, as before that change.

Needs the soak's manifests and index from ``bench/serve.py`` (in ``--work``).

    python bench/serve_memory.py --work /tmp/serve-bench-work --switches 5

Per worker (``--workers 1,2``): ``python cli.py serve --workers N`` on ``--index``, one server after another,
warmed with 10 s of look-alike queries by id at concurrency 4 per worker; then each of its processes' RSS, PSS
(shared pages split between the processes that map them, so the PSS of all processes adds up to what the server
takes) and USS (pages of that process alone), and the totals. The embeddings are memory-mapped, so the workers
share those pages in the page cache; each loads its own model and FAISS index.

    python bench/serve_memory.py --workers 1,2 --index /tmp/sleeve-query-idx
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


def worker_memory(index: Path, cache: Path, work: Path, workers: int) -> list[tuple[str, int, float, float, float]]:
    """(role, pid, RSS MB, PSS MB, USS MB) of each process of a warmed ``serve --workers workers``."""
    from api.process import ServerProcess
    from bench.serve import Request, over_http

    work.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(index, cache, work / f"memory-server-{workers}.log", "--workers", str(workers))
    try:
        over_http(server, lambda i: Request("GET", f"/covers/{i * 7 % 4000}/look-alikes?k=10&by=look"), 4 * workers,
                  10.0)
        rows = []
        for process in server.processes():
            memory = process.memory_full_info()
            if process.pid == server.ps.pid:
                role = "server" if workers == 1 else "supervisor"
            else:
                role = "worker" if "spawn_main" in " ".join(process.cmdline()) else "helper"
            rows.append((role, process.pid, memory.rss / 2**20, memory.pss / 2**20, memory.uss / 2**20))
        return rows
    finally:
        server.stop()


def print_worker_memory(index: Path, cache: Path, work: Path, counts: list[int]) -> None:
    print("| workers | process | RSS MB | PSS MB | USS MB |")
    print("|--:|---|--:|--:|--:|")
    for workers in counts:
        rows = worker_memory(index, cache, work, workers)
        for role, pid, rss, pss, uss in rows:
            print(f"| {workers} | {role} {pid} | {rss:.0f} | {pss:.0f} | {uss:.0f} |")
        print(f"| {workers} | **all** | {sum(r[2] for r in rows):.0f} | {sum(r[3] for r in rows):.0f} | "
              f"{sum(r[4] for r in rows):.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/serve-bench-work"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/serve-bench-cache"))
    parser.add_argument("--switches", type=int, default=5)
    parser.add_argument("--workers", help="Comma-separated serve --workers: memory per worker instead of switches.")
    parser.add_argument("--index", type=Path, default=Path("/tmp/serve-bench-idx"), help="With --workers.")
    parser.add_argument("--variant", choices=["trim", "no-trim"], help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    if args.variant:
        for covers, rss, alive in follow(args.work, args.cache, args.switches, args.variant == "trim"):
            print(f"{covers}\t{rss:.0f}\t{alive}", flush=True)
        return
    print(f"machine: {machine_line(describe_machine())}")
    print(f"command: python {' '.join(sys.argv)}\n")
    if args.workers:
        print_worker_memory(args.index, args.cache, args.work, [int(count) for count in args.workers.split(",")])
        print(f"\nload at the end {describe_machine()['load_average_1m']}")
        return
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
