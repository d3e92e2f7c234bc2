"""Load held by ``sleeve serve``: the same queries in-process and over HTTP, and a soak across two rebuilds.

On an index of the shared covers (4,450, built to --index once if absent with the default encoder):

- in-process: the library call each endpoint makes (``QueryAnswerer.answer`` for look-alikes of an indexed
  cover or of an upload, ``Recommender.search_text`` for words), one caller, for ``--seconds``;
- over HTTP: a real ``python cli.py serve`` on a free 127.0.0.1 port, called by ``--concurrency`` threads
  that each keep one ``http.client`` connection (httpx is not installed here), for ``--seconds`` each:
  requests/s, p50/p95/p99 latency, errors, the server's resident memory and how many cores it kept busy;
- soak: ``--soak-seconds`` at ``--soak-concurrency`` against a second index of all covers but 100, while
  ``build-index`` adds 50 covers and then the other 50 (two generation switches): failed requests, requests
  answered by each generation, server RSS at start and end.

Every query re-encodes its cover (``read_query`` reads the file and runs the encoder), in-process as over HTTP.
The client runs on the same machine as the server and takes CPU from it (its own cores busy are shown too);
other engineers' load is in the machine line. The issue asks 60 s a run and a 10-minute soak at 32: the
defaults are shorter to fit a shared machine; ``--seconds 60 --soak-seconds 600 --soak-concurrency 32`` is the
issue's run.

``--workers 1,2x1,1x1`` measures over HTTP once per server configuration, one server after another, into one
table: ``serve --workers`` and, after an x, ``serve --threads`` (RSS then sums the server's processes, and its
cores are those of all of them).

An existing ``--index`` is only read (with ``--soak-seconds 0`` nothing is written beside it either). On an
index with cover text, by words and by id with ``by=both`` are measured too. Queries by id and by upload re-read
their cover's image file, so they take only covers whose file exists (the real covers planted in a synthetic
collection of bench/collection_scale.py); with none, only words are measured.

    python bench/serve.py                                   # builds /tmp/serve-bench-idx once, then measures
    python bench/serve.py --seconds 60 --concurrency 1,8,32,64 --soak-seconds 600 --soak-concurrency 32
    python bench/serve.py --seconds 15 --concurrency 1,8 --threads 0 --soak-seconds 0 --workers 1,2x1,1x1

Memory across more generation switches, with and without handing freed memory back: bench/serve_memory.py.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import http.client
import json
import os
import random
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.process import ServerProcess  # noqa: E402
from bench.machine import describe_machine, machine_line  # noqa: E402

SHARED_COVERS = ROOT.parent / "shared" / "covers"
SOAK_HELD_BACK = 100
"""Covers the soak index starts without; build-index adds half of them, then the other half."""


@dataclasses.dataclass(frozen=True)
class Request:
    """One HTTP request, built once so that building it is not timed."""

    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Kind:
    """A kind of query: the library call in-process and the same query over HTTP, for query number ``i``."""

    name: str
    in_process: Callable[[int], str]
    """Runs query ``i`` in this process and returns the generation that answered it."""
    http: Callable[[int], Request]


@dataclasses.dataclass
class Run:
    """What one timed run measured."""

    seconds: float = 0.0
    latencies: list[float] = dataclasses.field(default_factory=list)
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    generations: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    server_rss_mb: float = float("nan")
    server_cores: float = float("nan")
    client_cores: float = float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """One ``serve`` configuration to measure: its worker processes and each query's threads (0: default)."""

    workers: int = 1
    threads: int = 0

    @classmethod
    def parse(cls, item: str) -> ServerConfig:
        """``WORKERS`` or ``WORKERSxTHREADS``, e.g. ``2x1``."""
        workers, _, threads = item.strip().partition("x")
        try:
            return cls(int(workers), int(threads or 0))
        except ValueError:
            raise SystemExit(f"--workers: {item!r} is not WORKERS or WORKERSxTHREADS, e.g. 2x1") from None

    def options(self) -> list[str]:
        return ["--workers", str(self.workers), "--threads", str(self.threads)]

    def where(self) -> str:
        """The table's name for it: plain "HTTP" for one worker at the libraries' default threads."""
        if (self.workers, self.threads) == (1, 0):
            return "HTTP"
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}" if self.threads else "all threads"
        return f"HTTP, {self.workers} worker{'s' if self.workers > 1 else ''}, {threads}"


# -- the index and the server -------------------------------------------------------------------------------


def ensure_index(index: Path, cache: Path, covers: Path) -> None:
    """Build the index of ``covers`` once; an existing one is used as it is."""
    if (index / "index.json").is_file():
        return
    print(f"building {index} from {covers} (once) ...", flush=True)
    build([sys.executable, "cli.py", "build-index", "--covers", str(covers)], index, cache)


def build(command: list[str], index: Path, cache: Path, model: str = "auto") -> float:
    """Run a ``build-index`` command to its end; its seconds. A failure stops the bench."""
    started = time.perf_counter()
    full = [*command, "--index", str(index), "--cache", str(cache), "--model", model, "--no-progress"]
    done = subprocess.run(full, cwd=ROOT, capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(full)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - started


# -- the queries ---------------------------------------------------------------------------------------------


def multipart(path: Path) -> Request:
    """A POST /look-alikes of the cover at ``path`` as a browser's form would send it."""
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"cover\"; filename=\"{path.name}\"\r\n"
        f"Content-Type: image/jpeg\r\n\r\n"
    ).encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return Request("POST", "/look-alikes?k=10&by=look", body,
                   {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def kinds_of(answerer: Any, queries: int, seed: int) -> tuple[list[Kind], str]:
    """The kinds of query this index can answer, each over ``queries`` different covers or words, and a note
    on what is left out and why."""
    recommender = answerer.recommender
    metadata = recommender.index.metadata
    rng = random.Random(seed)
    with_files = [row for row, path in enumerate(metadata["path"]) if Path(path).is_file()]
    rows = rng.sample(with_files, min(queries, len(with_files)))
    ids = [int(metadata.at[row, "id"]) for row in rows]
    paths = [str(metadata.at[row, "path"]) for row in rows]
    uploads = [multipart(Path(path)) for path in paths]
    notes = []
    if len(with_files) < len(metadata):
        notes.append(f"by id and upload over the {len(with_files)} of {len(metadata)} covers whose image file "
                     "exists (the others have none to re-read)")

    def generation() -> str:
        return str(recommender.index.info.created)

    def by_id(i: int) -> str:
        answerer.answer(paths[i % len(paths)], k=10, by="look")
        return generation()

    kinds = [
        Kind("by id (look)", by_id, lambda i: Request("GET", f"/covers/{ids[i % len(ids)]}/look-alikes?k=10&by=look")),
        Kind("by upload (look)", by_id, lambda i: uploads[i % len(uploads)]),
    ] if rows else []
    if not rows:
        notes.append("no cover's image file exists here: by id, by upload and both not measured")
    if not recommender.has_text:
        notes.append("the index holds no cover text (built without --read-text): by words and both not measured")
        return kinds, "; ".join(notes)
    texts = [" ".join(text.split()[:2]) for text in recommender.texts if len(text.split()) >= 2]
    words = rng.sample(texts, min(queries, len(texts)))

    def by_words(i: int) -> str:
        recommender.search_text(words[i % len(words)], k=10)
        return generation()

    def both(i: int) -> str:
        answerer.answer(paths[i % len(paths)], k=10, by="both")
        return generation()

    kinds.append(Kind("by words", by_words, lambda i: Request(
        "POST", "/search", json.dumps({"text": words[i % len(words)], "k": 10}).encode(),
        {"Content-Type": "application/json"})))
    if rows:
        kinds.append(Kind("by id (both)", both,
                          lambda i: Request("GET", f"/covers/{ids[i % len(ids)]}/look-alikes?k=10&by=both")))
    notes.append(f"words: {len(words)} two-word queries taken from the covers' own text")
    return kinds, "; ".join(notes)


# -- driving load --------------------------------------------------------------------------------------------


def in_process(kind: Kind, seconds: float, concurrency: int = 1, lock: threading.Lock | None = None) -> Run:
    """``concurrency`` callers in this process running ``kind``'s library call back to back for ``seconds``,
    taking turns on ``lock`` when one is given (as the server's requests take turns on their generation's)."""
    run = Run()
    gather = threading.Lock()
    counter = iter(range(10**12))
    own = psutil.Process()
    cpu = sum(own.cpu_times()[:2])
    started = time.perf_counter()

    def caller() -> None:
        latencies, errors, generations = [], collections.Counter[str](), collections.Counter[str]()
        while (now := time.perf_counter()) - started < seconds:
            with gather:
                i = next(counter)
            try:
                if lock is None:
                    generations[kind.in_process(i)] += 1
                else:
                    with lock:
                        generations[kind.in_process(i)] += 1
                latencies.append(time.perf_counter() - now)
            except Exception as error:  # noqa: BLE001 - counted, the run goes on
                errors[type(error).__name__] += 1
        with gather:
            run.latencies.extend(latencies)
            run.errors.update(errors)
            run.generations.update(generations)

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    run.server_cores = (sum(own.cpu_times()[:2]) - cpu) / run.seconds  # this process is the "server" here
    run.server_rss_mb = own.memory_info().rss / 2**20
    return run


def over_http(server: ServerProcess, make: Callable[[int], Request], concurrency: int, seconds: float,
              until: Callable[[], bool] | None = None) -> Run:
    """``concurrency`` threads, each with one kept-alive connection, sending requests back to back for
    ``seconds`` (and, with ``until``, until it says so too). A request is failed when it gets no answer, a
    status other than 200 or no JSON."""
    run = Run()
    lock = threading.Lock()
    counter = iter(range(10**12))
    started = time.perf_counter()

    def stop() -> bool:
        return time.perf_counter() - started >= seconds and (until is None or until())

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        latencies, errors, generations = [], collections.Counter[str](), collections.Counter[str]()
        while not stop():
            with lock:
                request = make(next(counter))
            sent = time.perf_counter()
            try:
                connection.request(request.method, request.path, request.body, request.headers)
                response = connection.getresponse()
                data = response.read()
                if response.status != 200:
                    errors[f"HTTP {response.status}"] += 1
                    continue
                generations[json.loads(data)["generation"]] += 1
                latencies.append(time.perf_counter() - sent)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                errors[type(error).__name__] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        connection.close()
        with lock:
            run.latencies.extend(latencies)
            run.errors.update(errors)
            run.generations.update(generations)

    own = psutil.Process()
    client_cpu, server_cpu = sum(own.cpu_times()[:2]), server.cpu_seconds()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - started
    run.server_cores = (server.cpu_seconds() - server_cpu) / run.seconds
    run.client_cores = (sum(own.cpu_times()[:2]) - client_cpu) / run.seconds
    run.server_rss_mb = server.rss_mb()
    return run


# -- the soak ------------------------------------------------------------------------------------------------


def soak(model: str, cache: Path, covers: Path, seconds: float, concurrency: int, queries: int,
         work: Path) -> dict[str, Any]:
    """Query a second index, of the measured index's ``model``, while build-index adds covers twice; what failed
    and who answered."""
    table = pd.read_csv(covers / "MANIFEST.csv")
    table["path"] = [str((covers / path).resolve()) for path in table["path"]]
    held_back = set(table.sample(SOAK_HELD_BACK, random_state=0).index)
    manifests = []
    for step, keep in enumerate([len(held_back), len(held_back) // 2, 0]):
        shown = table.drop(index=sorted(held_back)[:keep])
        manifests.append(work / f"soak-manifest-{step}.csv")
        shown.to_csv(manifests[-1], index=False)
    soak_index = work / "soak-index"
    if soak_index.exists():
        subprocess.run(["rm", "-rf", str(soak_index)], check=True)
    first = build([sys.executable, "cli.py", "build-index", "--manifest", str(manifests[0])], soak_index, cache, model)
    print(f"soak index of {len(table) - len(held_back)} covers built in {first:.0f} s", flush=True)

    server = ServerProcess(soak_index, cache, work / "soak-server.log")
    try:
        _, info = server.call("GET", "/info")
        count = int(info["count"])  # ids 0..count-1 stay valid when covers are added
        rng = random.Random(1)
        ids = [rng.randrange(count) for _ in range(queries)]
        paths = [Path(p) for p in rng.sample(list(table["path"]), queries)]
        uploads = [multipart(path) for path in paths]

        def make(i: int) -> Request:  # by id and by upload, alternately
            if i % 2:
                return uploads[(i // 2) % len(uploads)]
            return Request("GET", f"/covers/{ids[(i // 2) % len(ids)]}/look-alikes?k=10&by=look")

        builds: list[tuple[str, float]] = []

        def rebuild() -> None:
            for at, manifest in zip((0.2, 0.5), manifests[1:], strict=True):
                time.sleep(max(0.0, at * seconds - (time.perf_counter() - started)))
                begun = time.perf_counter() - started
                took = build([sys.executable, "cli.py", "build-index", "--manifest", str(manifest)],
                             soak_index, cache, model)
                builds.append((f"+{SOAK_HELD_BACK // 2} covers, started at {begun:.0f} s", took))

        rss_cold = server.rss_mb()
        # Warm up first: the first queries load the encoder's session and the thread pool's threads, which
        # is growth at start, not over the soak.
        over_http(server, make, concurrency, min(10.0, seconds / 6))
        rss_start = server.rss_mb()
        samples: list[tuple[float, float]] = []
        started = time.perf_counter()
        builder = threading.Thread(target=rebuild, daemon=True)
        builder.start()
        done = threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(server, started, samples, done), daemon=True)
        sampler.start()
        # Go on until both builds are done, so that the last generation is queried too.
        run = over_http(server, make, concurrency, seconds, until=lambda: not builder.is_alive())
        builder.join()
        done.set()
        sampler.join()
        rss_end = server.rss_mb()
        _, final = server.call("GET", "/info")
    finally:
        server.stop()
    return {"run": run, "rss_cold": rss_cold, "rss_start": rss_start, "rss_end": rss_end, "builds": builds,
            "rss_peak": max(rss for _, rss in samples), "rss_samples": samples,
            "count_start": count, "count_end": int(final["count"]), "switches": _switches(server.log)}


def _sample_rss(server: ServerProcess, started: float, samples: list[tuple[float, float]], done: threading.Event,
                every: float = 2.0) -> None:
    """The server's RSS every ``every`` seconds until ``done``."""
    while not done.wait(every if samples else 0):
        samples.append((time.perf_counter() - started, server.rss_mb()))


def _switches(log: Path) -> list[str]:
    return [line.split(" INFO ", 1)[-1] for line in log.read_text().splitlines() if "serving index generation" in line]


# -- tables --------------------------------------------------------------------------------------------------


def run_in_process(kind: Kind, args: argparse.Namespace, results: dict[tuple[str, str, int], Run],
                   lines: list[str]) -> None:
    """``kind``'s library call in this process: one caller, then ``--threads`` callers with the server's one
    lock and without it (what the lock costs)."""
    for i in range(5):  # the first queries load the encoder's sessions
        kind.in_process(i)
    results[(kind.name, "in-process", 1)] = run = in_process(kind, args.seconds)
    lines.append(row(kind.name, "in-process", 1, run))
    print(lines[-1], flush=True)
    if args.threads:
        for where, lock in (("in-process, one lock", threading.Lock()), ("in-process, no lock", None)):
            results[(kind.name, where, args.threads)] = run = in_process(kind, args.seconds, args.threads, lock)
            lines.append(row(kind.name, where, args.threads, run))
            print(lines[-1], flush=True)


def row(kind: str, where: str, concurrency: int, run: Run) -> str:
    errors = sum(run.errors.values())
    shown = f"{errors} ({', '.join(f'{k}: {v}' for k, v in run.errors.items())})" if errors else "0"
    return (f"| {kind} | {where} | {concurrency} | {len(run.latencies)} | {run.rate:.1f} | "
            f"{run.percentile_ms(50):.1f} | {run.percentile_ms(95):.1f} | {run.percentile_ms(99):.1f} | {shown} | "
            f"{run.server_rss_mb:.0f} | {run.server_cores:.2f} | {run.client_cores:.2f} |")


HEADER = ("| query | where | concurrency | answered | req/s | p50 ms | p95 ms | p99 ms | errors | RSS MB | "
          "server cores | client cores |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")


def targets(results: dict[tuple[str, str, int], Run], soaked: dict[str, Any] | None) -> list[str]:
    """The issue's targets against what this run measured."""
    lines = ["| target | measured | met |", "|---|---|---|"]
    inproc, http1 = results.get(("by id (look)", "in-process", 1)), results.get(("by id (look)", "HTTP", 1))
    if inproc and http1:
        limit = 1.5 * inproc.percentile_ms(50) + 2
        over, alone = http1.percentile_ms(50), inproc.percentile_ms(50)
        lines.append(f"| by id over HTTP at 1 within 1.5x in-process p50 + 2 ms | HTTP p50 {over:.1f} ms, "
                     f"limit {limit:.1f} ms (in-process {alone:.1f} ms) | {'yes' if over <= limit else 'no'} |")
    servers = sorted({key[1] for key in results if key[1].startswith("HTTP")}, key=lambda where: where != "HTTP")
    for kind in sorted({key[0] for key in results}):
        for where in servers:
            one, eight = results.get((kind, where, 1)), results.get((kind, where, 8))
            if one and eight and one.rate:
                named = kind if where == "HTTP" else f"{kind}, {where.removeprefix('HTTP, ')}"
                lines.append(f"| {named}: req/s at 8 at least 1.5x at 1 | {eight.rate:.1f} / {one.rate:.1f} = "
                             f"{eight.rate / one.rate:.2f}x | {'yes' if eight.rate >= 1.5 * one.rate else 'no'} |")
    if soaked:
        failed = sum(soaked["run"].errors.values())
        growth = soaked["rss_end"] / soaked["rss_start"] - 1
        lines.append(f"| 0 failed requests in the soak | {failed} | {'yes' if failed == 0 else 'no'} |")
        lines.append(f"| server RSS growth under 10% in the soak | {soaked['rss_start']:.0f} -> "
                     f"{soaked['rss_end']:.0f} MB ({growth:+.1%}) | {'yes' if growth < 0.10 else 'no'} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=Path("/tmp/serve-bench-idx"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/serve-bench-cache"))
    parser.add_argument("--covers", type=Path, default=SHARED_COVERS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/serve-bench-work"),
                        help="Server logs, the soak's manifests and index.")
    parser.add_argument("--seconds", type=float, default=15, help="Each timed run [issue: 60].")
    parser.add_argument("--concurrency", default="1,8,32,64", help="Comma-separated client threads over HTTP.")
    parser.add_argument("--queries", type=int, default=200, help="Different covers (or words) each kind cycles.")
    parser.add_argument("--soak-seconds", type=float, default=120, help="0: no soak [issue: 600].")
    parser.add_argument("--soak-concurrency", type=int, default=8, help="[issue: 32]")
    parser.add_argument("--threads", type=int, default=8,
                        help="In-process callers with the server's lock and without it (0: not measured); not "
                        "the server's threads, which --workers sets.")
    parser.add_argument("--workers", default="1", metavar="WORKERS[xTHREADS],...",
                        help="Server configurations, one server after another: serve --workers, and --threads "
                        "after an x (none: 0, the libraries' default), e.g. 1,2x1,1x1.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    servers = [ServerConfig.parse(item) for item in args.workers.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    print(f"machine: {machine_line(machine)}", flush=True)
    print(f"command: python {shlex.join(sys.argv)}", flush=True)
    ensure_index(args.index, args.cache, args.covers)

    from recsys.answer import QueryAnswerer
    from recsys.settings import Settings

    answerer = QueryAnswerer.open(args.index, Settings(cache_dir=args.cache, progress=False))
    kinds, note = kinds_of(answerer, args.queries, args.seed)
    count = len(answerer.recommender.index.metadata)
    model = answerer.recommender.index.info.model["family"]
    print(f"index: {args.index}, {count} covers, {answerer.recommender.index.info.model_key}; {note}", flush=True)

    results: dict[tuple[str, str, int], Run] = {}
    lines = [HEADER]
    for position, config in enumerate(servers):
        log = args.work / f"server-{config.workers}x{config.threads}.log"
        server = ServerProcess(args.index, args.cache, log, *config.options())
        where = config.where()
        try:
            for kind in kinds:
                over_http(server, kind.http, 8 * config.workers, 2.0)  # warm every worker's encoder sessions
                if position == 0:
                    run_in_process(kind, args, results, lines)
                for level in levels:
                    results[(kind.name, where, level)] = run = over_http(server, kind.http, level, args.seconds)
                    lines.append(row(kind.name, where, level, run))
                    print(lines[-1], flush=True)
        finally:
            server.stop()
    del answerer

    soaked = None
    if args.soak_seconds > 0:
        soaked = soak(model, args.cache, args.covers, args.soak_seconds, args.soak_concurrency,
                      args.queries, args.work)

    end = describe_machine()
    print(f"\n## Load held ({args.seconds:.0f} s a run, {count} covers; RSS: the server's, in-process: this "
          f"process's; cores: CPU seconds per wall second)\n")
    print(f"machine: {machine_line(machine)}; load at the end {end['load_average_1m']}\n")
    print("\n".join(lines))
    if soaked:
        run = soaked["run"]
        print(f"\n## Soak ({run.seconds:.0f} s at concurrency {args.soak_concurrency}, by id and by upload "
              f"alternately, {soaked['count_start']} -> {soaked['count_end']} covers)\n")
        print("| answered | req/s | p50 ms | p99 ms | failed | by generation | RSS start MB | RSS end MB |")
        print("|--:|--:|--:|--:|--:|---|--:|--:|")
        by_generation = ", ".join(f"{g}: {n}" for g, n in sorted(run.generations.items()))
        failed = sum(run.errors.values())
        print(f"| {len(run.latencies)} | {run.rate:.1f} | {run.percentile_ms(50):.1f} | {run.percentile_ms(99):.1f} | "
              f"{failed}{' ' + str(dict(run.errors)) if failed else ''} | {by_generation} | "
              f"{soaked['rss_start']:.0f} | {soaked['rss_end']:.0f} |")
        print(f"\nserver RSS: {soaked['rss_cold']:.0f} MB ready before any query, {soaked['rss_start']:.0f} MB "
              f"after the warm-up (the start above), peak {soaked['rss_peak']:.0f} MB; every 10 s: "
              + ", ".join(f"{at:.0f} s {rss:.0f}" for at, rss in soaked["rss_samples"][::5]))
        print("builds: " + "; ".join(f"{what}, took {took:.0f} s" for what, took in soaked["builds"]))
        print("server log: " + "; ".join(soaked["switches"]))
    print("\n## Targets (issue 25)\n")
    print("\n".join(targets(results, soaked)))


if __name__ == "__main__":
    main()
