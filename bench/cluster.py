"""Covers/s of build-index in one process and on Dask LocalClusters of 1 and 2 workers, on the same files and cores.

Every row is a fresh `python cli.py build-index` process with an empty embedding cache (the ONNX export is made
once by a warm-up build and copied in), so each row embeds every cover. The rate is covers / build seconds as
build-index reports them: for the cluster rows that includes shipping the encoder recipe and loading it on each
worker, but not starting the LocalCluster (a real cluster is started once for many builds): process_s, the
whole command's wall time, shows that cost. worker_warm_up_s is the time the workers took to import sleeve and
build the encoder (once per worker, whatever the collection's size); the steady rate leaves it out.
The overhead ratio is a cluster row's rate over the single-process rate.

    python bench/cluster.py --covers ../shared/covers --images 300
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine, machine_line  # noqa: E402

MODES = {"single process": None, "local:1": "local:1", "local:2": "local:2"}


def run_row(manifest: Path, cache: Path, cluster: str | None, model: str) -> dict:
    """One build in a fresh process; returns its summary plus the process's wall seconds."""
    with tempfile.TemporaryDirectory(prefix="sleeve-bench-cluster-") as index:
        command = [
            sys.executable, str(REPO / "cli.py"), "-v", "build-index", "--manifest", str(manifest), "--index", index,
            "--cache", str(cache), "--model", model, "--no-progress", "--json",
        ] + (["--cluster", cluster] if cluster else [])  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"build-index failed: {done.stderr.strip()}")
    ready = re.search(r"workers ready: .* in ([0-9.]+)s", done.stderr)
    return {**json.loads(done.stdout), "wall": wall, "warm_up": float(ready.group(1)) if ready else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--covers", type=Path, required=True, help="Folder with MANIFEST.csv (../shared/covers).")
    parser.add_argument("--images", type=int, default=300, help="Covers per row (the first N of the manifest).")
    parser.add_argument("--model", default="efficientnet-lite0")
    args = parser.parse_args()

    table = pd.read_csv(args.covers / "MANIFEST.csv").sort_values("path").head(args.images)
    table["path"] = [str((args.covers / path).resolve()) for path in table["path"]]
    with tempfile.TemporaryDirectory(prefix="sleeve-bench-cluster-") as folder:
        manifest = Path(folder) / "manifest.csv"
        table.to_csv(manifest, index=False)
        print(f"machine before: {machine_line(describe_machine())}", flush=True)
        warm = run_row(manifest, Path(folder) / "warm", None, args.model)  # page cache and the ONNX export
        print(f"warm-up (not counted): {warm['covers']} covers in {warm['seconds']:.1f}s", flush=True)
        rows = []
        for number, (label, cluster) in enumerate(MODES.items()):
            cache = Path(folder) / f"cache-{number}"  # empty but for the ONNX export: every cover is embedded
            shutil.copytree(Path(folder) / "warm" / "onnx", cache / "onnx")
            row = run_row(manifest, cache, cluster, args.model)
            rate = row["covers"] / row["seconds"]
            steady = row["covers"] / (row["seconds"] - row["warm_up"])
            rows.append({"mode": label, "covers": row["covers"], "process_s": round(row["wall"], 1),
                         "build_s": round(row["seconds"], 1), "worker_warm_up_s": row["warm_up"],
                         "covers_per_s": rate, "steady_covers_per_s": steady})  # fmt: skip
            print(f"  {label}: {rate:.1f} covers/s, {steady:.1f} after the workers' warm-up "
                  f"({machine_line(describe_machine())})", flush=True)  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["ratio"] = frame["covers_per_s"] / frame["covers_per_s"][0]
    frame["steady_ratio"] = frame["steady_covers_per_s"] / frame["covers_per_s"][0]
    print(f"machine after: {machine_line(describe_machine())}")
    print(frame.round(2).to_string(index=False))
    for row in frame.iloc[1:].itertuples():
        print(f"overhead ratio {row.mode} / single process = {row.ratio:.2f} "
              f"({row.steady_ratio:.2f} after the workers' warm-up); target for local:1 >= 0.8")  # fmt: skip

if __name__ == "__main__":
    main()
