"""Query benchmark: how long a user waits for ``recommend``, and how fast a query is inside one process.

Three figures, on an index of the shared covers (4,450, efficientnet-lite0 on ONNX Runtime by default):

- cold recommend: ``python cli.py recommend --cover X -k 10 --index IDX`` as a user runs it, a whole new
  process, wall time from start to exit, alternated in one run with the import-only yardstick
  ``python -c "import numpy, faiss, onnxruntime, PIL.Image, pandas"`` (the libraries any query needs), so
  both see the same load; median of ``--pairs`` pairs, and the ratio of the medians. X changes every pair.
  With ``--index`` given more than once (an index of each encoder family, say), every pair runs one
  recommend on each index right after its yardstick, so the indexes are compared under the same load.
- peak memory: the largest resident set (``ru_maxrss`` from ``os.wait4``) of any of those processes.
- warm query: ``Recommender.similar_to_cover(cover, k=10)`` in this process through the Python API,
  encoding the cover included; median and 95th percentile over ``--queries`` different covers after a
  short warm-up.

The machine is shared with other agents (their load is in the machine line): run it when the load is low.

    python bench/query.py                          # builds /tmp/sleeve-query-idx once, then measures
    python bench/query.py --index /tmp/perf-idx --pairs 7 --json out.json
    python bench/query.py --index /tmp/lite0-idx --index /tmp/lite2-style-idx --pairs 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine, machine_line  # noqa: E402

YARDSTICK = "import numpy, faiss, onnxruntime, PIL.Image, pandas"
SHARED_COVERS = ROOT.parent / "shared" / "covers"


def timed_process(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident megabytes of ``command`` run to its end; a failure stops the bench."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}): {error.strip()}")
    return seconds, usage.ru_maxrss // 1024  # Linux reports kilobytes


def query_covers(covers: Path, count: int, seed: int) -> list[str]:
    """``count`` different covers of the collection, the same ones for the same seed."""
    paths = sorted(str(p) for p in covers.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if len(paths) < count:
        raise SystemExit(f"{covers} holds {len(paths)} covers, fewer than the {count} needed")
    chosen = np.random.default_rng(seed).choice(len(paths), size=count, replace=False)
    return [paths[i] for i in chosen]


def ensure_index(index: Path, covers: Path, model: str) -> None:
    if (index / "index.json").is_file():
        return
    print(f"# building {index} from {covers} with {model} (once)", file=sys.stderr)
    subprocess.run(
        [sys.executable, "cli.py", "build-index", "--covers", str(covers), "--model", model,
         "--index", str(index), "--no-progress"],
        cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, check=True,
    )


def cold(indexes: list[Path], covers: list[str]) -> list[dict[str, Any]]:
    """Alternate yardstick and recommend processes: per cover the yardstick, then one recommend on each index
    in turn; one result per index, each against the same yardstick runs."""
    yardstick: list[tuple[float, int]] = []
    recommend: list[list[tuple[float, int]]] = [[] for _ in indexes]
    for cover in covers:
        yardstick.append(timed_process([sys.executable, "-c", YARDSTICK]))
        for runs, index in zip(recommend, indexes):
            runs.append(timed_process(
                [sys.executable, "cli.py", "recommend", "--cover", cover, "-k", "10", "--index", str(index)]
            ))
    yard_s = statistics.median(s for s, _ in yardstick)
    results = []
    for runs in recommend:
        rec_s = statistics.median(s for s, _ in runs)
        results.append({
            "pairs": len(covers),
            "yardstick_s": round(yard_s, 3),
            "recommend_s": round(rec_s, 3),
            "ratio": round(rec_s / yard_s, 2),
            "yardstick_peak_mb": max(mb for _, mb in yardstick),
            "recommend_peak_mb": max(mb for _, mb in runs),
            "recommend_runs_s": [round(s, 3) for s, _ in runs],
            "yardstick_runs_s": [round(s, 3) for s, _ in yardstick],
        })
    return results


def warm(index: Path, covers: list[str], warmup: int = 3) -> dict[str, Any]:
    """Queries through the Python API in this process, one different cover each, encoding included."""
    from recsys.recommend import Recommender

    start = time.perf_counter()
    recommender = Recommender.open(index)
    for cover in covers[:warmup]:
        recommender.similar_to_cover(cover, k=10)
    open_s = time.perf_counter() - start
    times = []
    for cover in covers[warmup:]:
        start = time.perf_counter()
        recommender.similar_to_cover(cover, k=10)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "queries": len(times),
        "open_and_warmup_s": round(open_s, 2),
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(float(np.percentile(times, 95)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, action="append",
                        help="Index folder, built from --covers when it does not exist (default "
                             "/tmp/sleeve-query-idx); give it more than once to compare indexes in one run.")
    parser.add_argument("--covers", type=Path, default=SHARED_COVERS)
    parser.add_argument("--model", default="efficientnet-lite0", help="Model of an index built here.")
    parser.add_argument("--pairs", type=int, default=5, help="Cold yardstick/recommend pairs (at least 5).")
    parser.add_argument("--queries", type=int, default=50, help="Warm API queries, one cover each.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()
    if args.pairs < 5:
        parser.error("--pairs must be at least 5 (the median of fewer runs is noise on a shared machine)")

    indexes = args.index or [Path("/tmp/sleeve-query-idx")]
    for index in indexes:
        ensure_index(index, args.covers, args.model)
    covers = query_covers(args.covers, args.pairs + args.queries + 3, args.seed)
    machine = describe_machine()  # before the runs: the load they start on
    colds = cold(indexes, covers[: args.pairs])
    warms = [warm(index, covers[args.pairs:]) for index in indexes]
    machine_after = describe_machine()

    print(f"# machine: {machine_line(machine)} (shared with other agents; load after: "
          f"{machine_after['load_average_1m']})")
    results = []
    for index, c, w in zip(indexes, colds, warms):
        index_info = json.loads((index / "index.json").read_text())
        print(f"# index: {index}, {index_info['count']:,} covers, {index_info['model_key']}, "
              f"{index_info['index_type']}")
        print("| measure | value |")
        print("|---|---|")
        print(f"| yardstick `python -c \"{YARDSTICK}\"`, median of {c['pairs']} | {c['yardstick_s']:.2f} s |")
        print(f"| cold `cli.py recommend --cover X -k 10`, median of {c['pairs']} | {c['recommend_s']:.2f} s |")
        print(f"| cold recommend / yardstick | {c['ratio']:.2f}x |")
        print(f"| peak memory, recommend (yardstick) | {c['recommend_peak_mb']} MB ({c['yardstick_peak_mb']} MB) |")
        print(f"| warm `Recommender.similar_to_cover`, median (p95) of {w['queries']} covers | "
              f"{w['median_ms']:.1f} ms ({w['p95_ms']:.1f} ms) |")
        results.append({"index": str(index), "cold": c, "warm": w})
    if args.json:
        args.json.write_text(json.dumps(
            {"machine": machine, "machine_after": machine_after,
             **(results[0] if len(results) == 1 else {"indexes": results})}, indent=2
        ))


if __name__ == "__main__":
    main()
