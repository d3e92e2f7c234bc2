"""Fault benchmark: kill -9 build-index at random points, race two writers, read during rebuilds, feed bad inputs.

1. Kill points: each trial starts ``build-index`` (as a user runs it: a new process) on a manifest of a subset of
   the covers, kills its whole process group with SIGKILL after a random delay drawn from the length of an
   uninterrupted run, checks that whatever index the folder holds still loads, then runs the same command to the
   end and compares the result with a clean build: same paths, hashes and genres, the same vectors (bit for bit,
   and within 1e-5), a FAISS index of the same size, and no temporary files left in the index folder or the
   ONNX export cache. Even trials start from nothing with an empty cache (kills land in start-up, the ONNX
   export, embedding and writing); odd trials update an index of two thirds of the covers (kills land in the
   embedding of the rest and in the switch of generations).
2. Two writers: pairs of ``build-index`` processes started together on one new folder (warm cache); each must
   finish or be refused with one line, and the folder must end as a clean build.
3. Readers during rebuilds: ``build-index --rebuild`` runs again and again while this process loads the index
   and answers a query in a loop; every read must succeed.
4. Bad inputs: every hostile file of tests/bad_inputs.py through build-index, recommend and read-text, the damaged
   index folders through recommend and build-index, and unusable manifests; handled means used, skipped with a
   reason, or refused with one line on stderr and exit code 1 (no traceback, no hang).

    python bench/faults.py --covers ../shared/covers --per-genre 8 --kills 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine, machine_line  # noqa: E402
from index.store import load_index  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--covers", default=str(REPO.parent / "shared" / "covers"), help="folder with MANIFEST.csv")
    parser.add_argument("--per-genre", type=int, default=8, help="covers per genre in the subset")
    parser.add_argument("--kills", type=int, default=10, help="kill -9 trials")
    parser.add_argument("--writer-pairs", type=int, default=3, help="pairs of concurrent writers")
    parser.add_argument("--rebuilds", type=int, default=4, help="rebuilds while readers read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")
    args = parser.parse_args()
    print(machine_line(describe_machine()), flush=True)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="sleeve-faults-") as tmp:
        work = Path(tmp)
        manifest, partial = _subset(Path(args.covers), args.per_genre, work)
        figures: dict[str, Any] = {"covers": len(pd.read_csv(manifest))}
        reference, cache, seconds = _reference(manifest, work)
        print(f"clean build of {figures['covers']} covers: {seconds:.1f}s", flush=True)
        figures["kills"] = _kill_trials(manifest, partial, reference, work, args.kills, rng, seconds)
        figures["writers"] = _writer_pairs(manifest, reference, cache, work, args.writer_pairs)
        figures["readers"] = _readers_during_rebuilds(manifest, cache, work, args.rebuilds)
        figures["bad_inputs"] = _bad_inputs(reference, cache, work)
    print(json.dumps(figures, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"machine": describe_machine(), **figures}, indent=2))


def _sleeve(*args: str, **popen: Any) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, str(REPO / "cli.py"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, start_new_session=True, **popen,
    )


def _build_args(manifest: Path, index: Path, cache: Path, *extra: str) -> list[str]:
    return ["build-index", "--manifest", str(manifest), "--index", str(index), "--cache", str(cache),
            "--model", "efficientnet-lite0", "--workers", "1", "--no-progress", "--json", *extra]


def _run(*args: str) -> tuple[int, str, str]:
    process = _sleeve(*args)
    out, err = process.communicate(timeout=900)
    return process.returncode, out, err


def _subset(covers: Path, per_genre: int, work: Path) -> tuple[Path, Path]:
    """A manifest of the first ``per_genre`` covers of each genre (absolute paths), and one of two thirds."""
    table = pd.read_csv(covers / "MANIFEST.csv")
    table = table.sort_values("path").groupby("genre").head(per_genre).reset_index(drop=True)
    table["path"] = [str(covers / p) for p in table["path"]]
    manifest, partial = work / "subset.csv", work / "partial.csv"
    table[["path", "genre"]].to_csv(manifest, index=False)
    table[["path", "genre"]].iloc[: 2 * len(table) // 3].to_csv(partial, index=False)
    return manifest, partial


def _reference(manifest: Path, work: Path) -> tuple[Path, Path, float]:
    started = time.perf_counter()
    code, _, err = _run(*_build_args(manifest, work / "reference", work / "reference-cache"))
    if code != 0:
        sys.exit(f"the clean build failed: {err}")
    return work / "reference", work / "reference-cache", time.perf_counter() - started


def _same_as(reference: Path, index: Path) -> tuple[bool, bool]:
    """(equal within 1e-5, bit-identical vectors) against the clean build."""
    a, b = load_index(reference), load_index(index)
    columns = ["path", "content_hash", "genre"]
    same_rows = a.metadata[columns].equals(b.metadata[columns]) and a.faiss_index.ntotal == b.faiss_index.ntotal
    close = same_rows and np.allclose(a.embeddings, b.embeddings, atol=1e-5)
    return close, close and np.array_equal(a.embeddings, b.embeddings)


def _leftovers(*folders: Path) -> list[str]:
    return [str(p) for folder in folders if folder.is_dir() for p in folder.rglob(".*.tmp")]


def _kill_trials(
    manifest: Path, partial: Path, reference: Path, work: Path, trials: int, rng: random.Random, seconds: float
) -> dict[str, Any]:
    prepared = work / "prepared"
    code, _, err = _run(*_build_args(partial, prepared / "index", prepared / "cache"))
    if code != 0:
        sys.exit(f"the partial build failed: {err}")
    shutil.copytree(prepared, work / "timing")
    started = time.perf_counter()
    _run(*_build_args(manifest, work / "timing" / "index", work / "timing" / "cache"))
    update_seconds = time.perf_counter() - started  # an update of a copy, to time the odd trials' window
    survived, identical, killed, records = 0, 0, 0, []
    for trial in range(trials):
        folder = work / f"trial-{trial}"
        update = trial % 2 == 1
        if update:
            shutil.copytree(prepared, folder)
        index, cache = folder / "index", folder / "cache"
        delay = rng.uniform(0.2, (update_seconds if update else seconds) * 0.95)
        process = _sleeve(*_build_args(manifest, index, cache))
        time.sleep(delay)
        finished_first = process.poll() is not None
        if not finished_first:
            os.killpg(process.pid, signal.SIGKILL)
            killed += 1
        process.communicate()
        readable_after_kill = not (index / "index.json").exists() or _loads(index)
        code, _, err = _run(*_build_args(manifest, index, cache))
        close, bitwise = _same_as(reference, index) if code == 0 else (False, False)
        clean = not _leftovers(index, cache / "onnx")
        ok = readable_after_kill and code == 0 and close and clean
        survived += ok
        identical += bitwise
        records.append({"trial": trial, "update": update, "kill_after_s": round(delay, 2),
                        "finished_before_kill": finished_first, "survived": ok, "bit_identical": bitwise})
        print(f"kill {trial + 1}/{trials}: {'update' if update else 'fresh '} after {delay:5.1f}s "
              f"-> {'survived' if ok else 'LOST: ' + err.strip()[-200:]}"
              + (" (bit-identical)" if bitwise else ""), flush=True)
    print(f"kill -9: tried {trials} ({killed} killed mid-run, {trials - killed} finished before the kill), "
          f"survived {survived}, bit-identical {identical}", flush=True)
    return {"tried": trials, "killed_mid_run": killed, "survived": survived, "bit_identical": identical,
            "update_window_s": round(update_seconds, 1), "trials": records}


def _loads(index: Path) -> bool:
    try:
        load_index(index)
    except Exception:  # noqa: BLE001 - any failure to load after a kill is the finding
        return False
    return True


def _writer_pairs(manifest: Path, reference: Path, cache: Path, work: Path, pairs: int) -> dict[str, int]:
    tally = {"pairs": pairs, "both_finished": 0, "one_refused": 0, "intact": 0, "other_failure": 0}
    for pair in range(pairs):
        index = work / f"pair-{pair}"
        writers = [_sleeve(*_build_args(manifest, index, cache)) for _ in range(2)]
        results = [(w.wait(timeout=900), w.communicate()[1]) for w in writers]
        codes = sorted(code for code, _ in results)
        refused = [err for code, err in results if code == 1 and "another sleeve process is writing" in err]
        if codes == [0, 0]:
            tally["both_finished"] += 1
        elif codes == [0, 1] and refused and "Traceback" not in refused[0]:
            tally["one_refused"] += 1
        else:
            tally["other_failure"] += 1
        tally["intact"] += _same_as(reference, index)[0]
    print(f"two writers: {pairs} pairs, {tally['one_refused']} with one refused, {tally['both_finished']} both "
          f"finished one after the other, {tally['intact']} folders intact, {tally['other_failure']} other failures",
          flush=True)
    return tally


def _readers_during_rebuilds(manifest: Path, cache: Path, work: Path, rebuilds: int) -> dict[str, Any]:
    from recsys.recommend import Recommender
    from recsys.settings import Settings

    index = work / "read-during-rebuild"
    shutil.copytree(work / "reference", index)
    recommender = Recommender.open(index, Settings(cache_dir=cache))
    query = np.asarray(recommender.index.embeddings[0])
    done = threading.Event()
    codes: list[int] = []

    def rebuild() -> None:
        for _ in range(rebuilds):
            codes.append(_run(*_build_args(manifest, index, cache, "--rebuild"))[0])
        done.set()

    writer = threading.Thread(target=rebuild)
    writer.start()
    reads, failures, generations = 0, [], set()
    while not done.is_set():
        try:
            recommender.index = load_index(index)
            generations.add(recommender.index.info.files["faiss"])
            assert len(recommender.similar_to_vector(query, k=5)) == 5
            reads += 1
        except Exception as error:  # noqa: BLE001 - every failed read is the finding
            failures.append(repr(error))
    writer.join()
    print(f"readers during {rebuilds} rebuilds ({len(generations)} generations seen): {reads + len(failures)} reads, "
          f"{len(failures)} failed" + (f", e.g. {failures[0]}" if failures else ""), flush=True)
    return {"rebuilds": rebuilds, "rebuilds_ok": codes.count(0), "generations_seen": len(generations),
            "reads": reads + len(failures), "failed": len(failures)}


def _bad_inputs(reference: Path, cache: Path, work: Path) -> dict[str, Any]:
    """Each bad input through the commands that meet it; handled: used, skipped with a reason, or refused with
    one line and exit code 1. build-index and read-text run as processes; the rest in this process (click's
    runner) to keep the benchmark short."""
    from click.testing import CliRunner

    from cli import main as cli
    from tests.bad_inputs import INDEX_DAMAGES, write_bad_files, write_hostile_files

    folder = work / "bad"
    write_bad_files(folder / "rock")
    write_hostile_files(folder / "odd")
    files = sorted((folder / "rock").iterdir()) + sorted((folder / "odd").iterdir())
    shown = {path: os.fsencode(path).decode("utf-8", "backslashreplace") for path in files}
    outcomes: list[tuple[str, bool]] = []

    code, _, err = _run(*_build_args_folder(folder, work / "bad-index", cache))
    listed: set[str] = set()
    if code == 0:
        listed |= set(load_index(work / "bad-index").metadata["path"])
        listed |= set(pd.read_csv(work / "bad-index" / "skipped.csv")["path"])
    outcomes += [(f"build-index: {shown[path]}", shown[path] in listed and "Traceback" not in err) for path in files]

    code, out, err = _run("read-text", "--json", *[str(p) for p in files])
    covered = {row["cover"] for row in json.loads(out or "[]") if "lines" in row or "error" in row}
    outcomes += [(f"read-text {shown[path]}", shown[path] in covered and "Traceback" not in err) for path in files]

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, list(args))
        return result.exit_code, result.stderr + ("Traceback" if result.exc_info and result.exit_code > 1 else "")

    for path in files:
        code, err = invoke("recommend", "--index", str(reference), "--cache", str(cache), "--cover", str(path))
        outcomes.append((f"recommend --cover {shown[path]}", _one_line(code, err)))
    for damage, apply in INDEX_DAMAGES.items():
        damaged = work / f"damaged-{len(outcomes)}"
        shutil.copytree(reference, damaged)
        apply(damaged)
        code, err = invoke("recommend", "--index", str(damaged), "--cache", str(cache), "--cover", str(files[0]))
        outcomes.append((f"recommend on {damage}", _one_line(code, err) and code == 1 and "--rebuild" in err))
    manifests = {"header only": "path,genre\n", "no path column": "file\na.jpg\n", "empty": "", "a folder": None}
    for kind, text in manifests.items():
        manifest = work / f"manifest-{len(outcomes)}.csv"
        manifest.mkdir() if text is None else manifest.write_text(text)
        code, err = invoke(
            "build-index", "--manifest", str(manifest), "--index", str(work / "x"), "--cache", str(cache)
        )
        outcomes.append((f"manifest: {kind}", _one_line(code, err) and code == 1))
    handled = sum(ok for _, ok in outcomes)
    for what, ok in outcomes:
        if not ok:
            print(f"NOT HANDLED: {what}", flush=True)
    print(f"bad inputs: tried {len(outcomes)}, handled {handled}", flush=True)
    return {"tried": len(outcomes), "handled": handled, "not_handled": [what for what, ok in outcomes if not ok]}


def _build_args_folder(covers: Path, index: Path, cache: Path) -> list[str]:
    return ["build-index", "--covers", str(covers), "--index", str(index), "--cache", str(cache),
            "--model", "efficientnet-lite0", "--workers", "1", "--no-progress", "--json"]


def _one_line(code: int, err: str) -> bool:
    """Accepted, or refused with exactly one error line and exit code 1; never a traceback."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    return "Traceback" not in err and (code == 0 or (code == 1 and len(lines) == 1))


if __name__ == "__main__":
    main()
