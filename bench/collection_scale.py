"""Look and words at collection scale (issue 27): build a real index folder of N covers with text and measure
the words model, the words engine, the neighbour graph and the queries on it.

The collection is synthetic except for 755 real covers planted in it:
- distractor vectors: bench/search.py's Mixture (clustered like real embeddings), in the artist index's own
  dimension, reflected (one Householder reflection, which keeps every cosine among them) so that their mean
  direction is the real covers' mean direction: the planted covers are not set apart by look for free;
  or, with ``--distractor-looks real``, the real vectors of ``--lines-index`` (resampled_looks: the Mixture's lie
  apart from real covers of efficientnet-lite2-style, so that the look alone finds the planted ones);
- distractor texts: real OCR lines (of ``--lines-index``'s stored texts), as many per cover as a real cover
  of that index prints (drawn from its covers' line counts, none included), each line drawn at random (with
  ``--distractor-lines unnamed``, never a line that names a planted artist: the shared covers hold real covers
  by some of them, whose lines, copied onto hundreds of distractors at 1M, make misses that are no misses);
- planted covers: every cover of ``--artist-index`` (755 of ../shared/artist-covers, built with --read-text)
  with its real vector, its stored text, content hash, image file and artist label, at random rows.

Each stage is what ``build-index --read-text`` runs (recsys/build.py): recsys.textstore.words_model,
index.words_engine.write_engine (as index.store.write_index writes it), recsys.textstore.neighbour_table, then
the folder as build-index writes it: the unit vectors staged in a memory-mapped file (index.store.stage_embeddings),
the FAISS index of ``--index-type`` built from those rows (index.sharded.build_from_rows: IVF-PQ in shards, no
copy of every vector) and index.store.write_index (with the look statistics, recsys.hybrid.sampled_look_moments). Each of the three words stages runs in a child process
of its own, so its peak memory (ru_maxrss) is its own; the child's memory before the stage (its inputs loaded)
is given beside it.

Per N it prints: build seconds and peak MB of each stage; the folder's size on disk; cold ``cli.py search`` and
``cli.py recommend --by both`` (whole process: wall seconds, median of ``--cold-runs``, and peak MB); warm
``Recommender.search_text`` (queries: whole stored texts of planted covers) beside the bare tantivy candidate
query (WordsEngine.candidates with the same n-grams and limit, what search_text's candidate stage asks) and
the ratio of the two; warm ``similar_to_cover(by="both")`` with the query cover read beforehand (reading and
encoding the image does not depend on N; the cold recommend includes it); and the planted covers' same-artist
precision@10 by words and by both as bench/hybrid.py computes it (every planted cover a query, results over
the whole collection less covers of the query's content).

    python cli.py build-index --manifest ../shared/artist-covers/MANIFEST.csv --index /tmp/artist-idx --read-text
    python bench/collection_scale.py --artist-index /tmp/artist-idx --sizes 10000,100000
    python bench/collection_scale.py --reuse /tmp/scale1m-run --index-type ivfpq   # a kept folder, measured again

``--reuse`` measures a kept scratch folder (``--keep``) without generating it again, running only the stages
whose output is not there yet (STAGE_OUTPUTS).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.machine import describe_machine, machine_line  # noqa: E402
from bench.search import Mixture  # noqa: E402
from index.errors import SleeveError  # noqa: E402
from index.registry import INDEX_TYPES  # noqa: E402
from index.store import load_index, shown_name  # noqa: E402
from recsys import hybrid, textsearch  # noqa: E402
from recsys.textstore import texts_by_row  # noqa: E402

K = 10
STAGES = ("words_model", "words_engine", "graph", "folder")
"""Child-process stages, in order: each reads what the ones before wrote into the scratch folder."""
STAGE_OUTPUTS = {
    "words_model": "words.npz",
    "words_engine": "words.npz",  # timed only: the folder stage writes the engine its index uses
    "graph": "neighbours.parquet",
    "folder": "index/index.json",
}
"""What each stage leaves in the scratch folder: ``--reuse`` skips a stage whose output is there."""
WARMUP = 5


# -- the collection ------------------------------------------------------------------------------------------


def stored_texts(folder: Path) -> list[str] | None:
    """The stored cover texts of an index folder, one per row, or None when it holds none (or is not ready)."""
    try:
        texts = texts_by_row(load_index(folder))
    except SleeveError:  # no index there (yet), or a damaged one
        return None
    return None if texts is None else [str(t) for t in texts]


def text_lines(text: str) -> list[str]:
    """The OCR lines of a stored text that carry a letter or digit."""
    return [line for line in text.splitlines() if textsearch.normalise(line)]


def artist_marks(artists: Sequence[str], texts: Sequence[str]) -> dict[str, set[str]]:
    """Each planted artist's marks besides its name: the printed lines (normalised as recsys.textsearch compares
    them, at least MIN_LINE_CHARS) that two or more of its covers print and no other artist's does, such as the
    OCR reading of its logo ("iranmxiden" for IRON MAIDEN)."""
    printers: dict[str, collections.Counter[str]] = {}
    for name, text in zip(artists, texts):
        for line in {textsearch.normalise(line) for line in text.splitlines()}:
            if len(line) >= textsearch.MIN_LINE_CHARS:
                printers.setdefault(line, collections.Counter())[name] += 1
    marks: dict[str, set[str]] = {name: set() for name in artists}
    for line, names in printers.items():
        if len(names) == 1 and sum(names.values()) >= 2:
            marks[next(iter(names))].add(line)
    return marks


def names_artist(text: str, artist: str, marks: set[str]) -> bool:
    """Whether a cover text names ``artist``: its name (normalised) within the text, or a line equal to one of its
    ``marks`` (artist_marks)."""
    name = textsearch.normalise(artist)
    return (bool(name) and name in textsearch.normalise(text)) or any(
        textsearch.normalise(line) in marks for line in text.splitlines())


def reflect_onto(vectors: np.ndarray, source: np.ndarray, target: np.ndarray) -> None:
    """Reflect ``vectors`` in place so that the unit direction ``source`` goes to ``target`` (cosines kept)."""
    axis = source - target
    if np.linalg.norm(axis) < 1e-6:
        return
    axis = (axis / np.linalg.norm(axis)).astype(np.float32)
    for start in range(0, len(vectors), 50_000):
        chunk = vectors[start : start + 50_000]
        chunk -= 2.0 * (chunk @ axis)[:, None] * axis[None, :]


RESAMPLE_STEP = 0.3
"""resampled_looks moves a real vector reused by this many times a step of the real covers' own spread."""


def resampled_looks(source: np.ndarray, count: int, seed: int = 2) -> np.ndarray:
    """``count`` unit vectors (float32) that look like the real covers ``source``: each source vector once, in
    random order, while they last; then source vectors moved by RESAMPLE_STEP * (s_b - s_c) / sqrt(2), a step
    whose covariance is RESAMPLE_STEP**2 times the real covers' own, so reused ones are no duplicates and stay
    where real covers lie. The Mixture's vectors do not: with efficientnet-lite2-style, a planted cover's
    cosine is 0.75 to another planted cover on average and 0.52 to a Mixture distractor, and none of its 10
    nearest by look is one, so the look alone tells every planted cover from the distractors."""
    rng = np.random.default_rng(seed)
    source = np.asarray(source, dtype=np.float32)
    first = min(count, len(source))
    out = np.empty((count, source.shape[1]), dtype=np.float32)
    out[:first] = source[rng.permutation(len(source))[:first]]
    for start in range(first, count, 50_000):
        stop = min(start + 50_000, count)
        base, a = rng.integers(0, len(source), (2, stop - start))
        b = (a + rng.integers(1, len(source), stop - start)) % len(source)  # never a itself: a step, always
        moved = source[base] + RESAMPLE_STEP * (source[a] - source[b]) / np.sqrt(2.0)
        out[start:stop] = moved / np.linalg.norm(moved, axis=1, keepdims=True)
    return out


def collection(size: int, artist: Any, artist_texts: list[str], source_texts: list[str], seed: int = 0,
               source_vectors: np.ndarray | None = None,
               unnamed: bool = False) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """(vectors, metadata with path/content_hash/genre/artist, texts as read_cover_texts returns them) of
    ``size`` covers: the artist index's covers planted at random rows among synthetic ones, whose vectors are
    the Mixture's or, given real ``source_vectors``, resampled_looks of them. ``unnamed``: no distractor line
    names a planted artist (names_artist), so that no distractor may be one of theirs."""
    planted = len(artist.metadata)
    if size < planted:
        raise SystemExit(f"--sizes must be at least the {planted} planted covers")
    rng = np.random.default_rng(seed)
    real = np.asarray(artist.embeddings, dtype=np.float32)
    if source_vectors is not None:
        vectors = resampled_looks(source_vectors, size)
    else:
        vectors = Mixture.fitted(real.shape[1]).sample(size, seed=1)
        synthetic_mean = vectors.mean(axis=0)
        real_mean = real.mean(axis=0)
        reflect_onto(vectors, synthetic_mean / np.linalg.norm(synthetic_mean), real_mean / np.linalg.norm(real_mean))
    rows = np.sort(rng.choice(size, planted, replace=False))
    vectors[rows] = real

    pool = [line for text in source_texts for line in text_lines(text)]
    if unnamed:
        names = artist.metadata.rename(columns=shown_name)["artist"].astype(str).tolist()
        marks = artist_marks(names, artist_texts)
        kept = [line for line in pool if not any(names_artist(line, name, marks[name]) for name in marks)]
        log(f"distractor lines that name a planted artist left out: {len(pool) - len(kept):,} of {len(pool):,}")
        pool = kept
    pool = np.array(pool, dtype=object)
    line_counts = np.array([len(text_lines(text)) for text in source_texts])
    drawn = rng.choice(line_counts, size)
    texts = ["\n".join(rng.choice(pool, count)) if count else "" for count in drawn]
    hashes = [hashlib.sha256(f"synthetic cover {row}".encode()).hexdigest() for row in range(size)]
    paths = [f"synthetic/{row:07d}.jpg" for row in range(size)]
    genres = np.array(["synthetic"] * size, dtype=object)
    artists = np.array([""] * size, dtype=object)
    meta = artist.metadata.rename(columns=shown_name)
    for i, row in enumerate(rows):
        texts[row] = artist_texts[i]
        hashes[row] = meta["content_hash"].iloc[i]
        paths[row] = meta["path"].iloc[i]
        genres[row] = meta["genre"].iloc[i]
        artists[row] = meta["artist"].iloc[i]
    metadata = pd.DataFrame({"path": paths, "content_hash": hashes, "genre": genres, "artist": artists})
    table = pd.DataFrame({"content_hash": hashes, "text": texts, "reader": str(artist.texts["reader"].iloc[0])})
    return vectors, metadata, table


# -- the build stages, each in a child process ---------------------------------------------------------------


def memory_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (VmRSS) or at its highest (VmHWM). Not ru_maxrss: Linux carries the
    parent's high-water mark over fork and exec into it, so a child started by a large parent would report
    the parent's size."""
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith(f"{field}:"))
    return kb / 1024


PEAK_REPORTER = """
import atexit, os, runpy, sys
from pathlib import Path
def report():
    peak = next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:'))
    Path(os.environ['SLEEVE_BENCH_PEAK']).write_text(peak)
atexit.register(report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""
"""Runs a script (``python -c PEAK_REPORTER script args...``) as ``python script args...`` would, and writes its
VmHWM (kB) at exit to the file named by SLEEVE_BENCH_PEAK."""


def run_stage(stage: str, scratch: Path, index_type: str = "auto") -> dict[str, Any]:
    """One build stage on the inputs in ``scratch``; its outputs go there too. Returns seconds and memory."""
    from index.words import read_words, write_words
    from index.words_engine import write_engine
    from recsys.textstore import neighbour_table, words_model

    metadata = pd.read_parquet(scratch / "metadata.parquet")
    texts = pd.read_parquet(scratch / "texts.parquet")
    words = None
    if stage != "words_model":
        words = read_words(open(scratch / "words.npz", "rb"), len(metadata))  # noqa: SIM115 (mapped while used)
    vectors = np.load(scratch / "vectors.npy") if stage == "graph" else None
    result: dict[str, float] = {"inputs_mb": memory_mb()}
    started = time.perf_counter()
    if stage == "words_model":
        model = words_model(metadata, texts)
        result["seconds"] = time.perf_counter() - started
        write_words(scratch / "words.npz", textsearch.model_arrays(model))
    elif stage == "words_engine":
        target = scratch / "engine.tantivy"
        shutil.rmtree(target, ignore_errors=True)
        write_engine(target, words["terms"], words["covers_indices"], words["covers_indptr"])
        result["seconds"] = time.perf_counter() - started
        shutil.rmtree(target)  # write_index writes the index's own
    elif stage == "graph":
        neighbours = neighbour_table(metadata, vectors, texts, textsearch.model_from_arrays(words))
        result["seconds"] = time.perf_counter() - started
        neighbours.to_parquet(scratch / "neighbours.parquet", index=False)
    elif stage == "folder":
        result |= write_folder(scratch, metadata, texts, words, index_type)
    result["peak_mb"] = memory_mb("VmHWM")
    return result


def write_folder(scratch: Path, metadata: pd.DataFrame, texts: pd.DataFrame, words: Any,
                 index_type: str) -> dict[str, Any]:
    """``scratch / "index"`` as build-index writes it: unit vectors staged in the folder, the FAISS index built
    from those mapped rows, then the generation. Returns the FAISS type, its seconds (staging included) and the
    writing's."""
    from index.sharded import SHARD_ROWS, build_from_rows
    from index.store import remove_leftovers, stage_embeddings, write_index
    from recsys.encoders import ModelSpec
    from recsys.encoders.base import l2_normalize
    from recsys.memory_index import index_table

    spec = ModelSpec.from_dict(json.loads((scratch / "model.json").read_text()))
    folder = scratch / "index"
    folder.mkdir(exist_ok=True)
    remove_leftovers(folder)  # a stopped run's staged vectors
    source = np.load(scratch / "vectors.npy", mmap_mode="r")
    started = time.perf_counter()
    staged = stage_embeddings(folder, *source.shape)
    for start in range(0, len(source), SHARD_ROWS):
        staged.rows[start : start + SHARD_ROWS] = l2_normalize(source[start : start + SHARD_ROWS])
    chosen = INDEX_TYPES.resolve(index_type, count=len(source), dim=source.shape[1])
    faiss_index, params = build_from_rows(staged.rows, chosen)
    faiss_seconds = time.perf_counter() - started
    started = time.perf_counter()
    write_index(
        folder, faiss_index, index_table(metadata, len(source)), staged, spec.to_dict(), spec.key, chosen, params,
        texts=texts, neighbours=pd.read_parquet(scratch / "neighbours.parquet"), words=words,
        look=hybrid.sampled_look_moments(staged.rows),
    )
    return {"index_type": chosen, "faiss_seconds": faiss_seconds, "seconds": time.perf_counter() - started}


def child(command: list[str]) -> tuple[float, float, str]:
    """Run the Python script ``command`` (script, then its arguments) from the repository root: (wall seconds,
    peak MB of that process, stdout); exits on failure."""
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile("w+") as out, \
            tempfile.TemporaryFile("w+") as err:
        peak = Path(folder) / "peak"
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PEAK_REPORTER, *command], cwd=REPO, stdout=out, stderr=err,
                              text=True, env=os.environ | {"SLEEVE_BENCH_PEAK": str(peak)})
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)[:200]} failed:\n{err.read()[-2000:]}")
        return seconds, int(peak.read_text()) / 1024, out.read()


# -- queries on the built folder -----------------------------------------------------------------------------


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    return float(np.percentile(seconds, 50) * 1e3), float(np.percentile(seconds, 95) * 1e3)


def timed(calls: list[Any]) -> list[float]:
    """Seconds of each call, after WARMUP untimed ones."""
    for call in calls[:WARMUP]:
        call()
    seconds = []
    for call in calls:
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def query_rows(labels: np.ndarray, texts: list[str], count: int) -> np.ndarray:
    """``count`` planted rows whose covers carry text, a fixed sample."""
    rows = np.flatnonzero((labels != "") & np.array([bool(textsearch.normalise(t)) for t in texts]))
    return np.sort(np.random.default_rng(7).choice(rows, min(count, len(rows)), replace=False))


def measure_queries(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Cold CLI processes, warm Recommender queries, the bare candidate query and the planted covers' precision."""
    from recsys.recommend import Recommender

    recommender = Recommender.open(folder)
    # read apart: the recommender's own table stays undecoded until its queries are timed, as a query process's
    metadata = load_index(folder).metadata.rename(columns=shown_name)
    labels = metadata["artist"].fillna("").astype(str).str.lower().to_numpy()
    texts = [str(t) for t in recommender.texts]
    rows = query_rows(labels, texts, args.queries)
    result: dict[str, Any] = {}

    typed = str(metadata["artist"].iloc[rows[0]])  # a planted artist's name, as a user types it
    cover = str(metadata["path"].iloc[rows[0]])
    for name, command in (
        ("cold_search", ["cli.py", "search", typed, "--index", str(folder)]),
        ("cold_recommend_both", ["cli.py", "recommend", "--cover", cover, "--by", "both",
                                 "--index", str(folder)]),
    ):
        runs = [child(command)[:2] for _ in range(args.cold_runs)]
        result[f"{name}_s"] = statistics.median(s for s, _ in runs)
        result[f"{name}_peak_mb"] = max(mb for _, mb in runs)

    model = recommender._text_model
    engine = recommender.index.words_engine
    queries = [texts[row] for row in rows]
    grams = [textsearch.known_grams(model, text) for text in queries]
    bare = timed([lambda g=g: engine.candidates(g, textsearch.CANDIDATES) for g in grams])
    search = timed([lambda q=q: recommender.search_text(q) for q in queries])
    covers = [recommender.read_query(str(metadata["path"].iloc[row])) for row in rows]
    both = timed([lambda c=c: recommender.similar_to_cover(c, by="both") for c in covers])
    result["bare_p50_ms"], result["bare_p95_ms"] = percentiles(bare)
    result["search_p50_ms"], result["search_p95_ms"] = percentiles(search)
    result["both_p50_ms"], result["both_p95_ms"] = percentiles(both)
    result["search_vs_bare"] = result["search_p50_ms"] / result["bare_p50_ms"]
    if args.precision != "none":
        result.update(precision(recommender, labels, texts, args.precision_queries, args.precision == "both"))
    return result


def planted_queries(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """The planted rows (a label) that rank the collection in a precision run: all, or a fixed sample of
    ``limit``."""
    planted = np.flatnonzero(labels != "")
    if limit is not None and limit < len(planted):
        planted = np.sort(np.random.default_rng(11).choice(planted, limit, replace=False))
    return planted


def planted_tops(hashes: np.ndarray, rows: np.ndarray,
                 rank: Callable[[int, np.ndarray], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The 10 best covers of each query ``row`` for each ranking ``rank(row, others)`` returns (name -> one
    score per cover of ``others``: every cover whose content is not the query's), as bench/hybrid.py ranks
    them. One (queries, 10) array of rows per name."""
    tops: dict[str, list[np.ndarray]] = {}
    for row in rows:
        others = np.flatnonzero(hashes != hashes[row])
        for name, scores in rank(int(row), others).items():
            tops.setdefault(name, []).append(others[np.argsort(-scores, kind="stable")[:K]])
    return {name: np.array(found) for name, found in tops.items()}


def same_label(labels: np.ndarray, rows: np.ndarray, tops: np.ndarray) -> np.ndarray:
    """Precision@10 of each query ``rows[i]``: the share of its ``tops[i]`` that carry its label."""
    return np.mean(labels[tops] == labels[rows][:, None], axis=1)


def precision(recommender: Any, labels: np.ndarray, texts: list[str], limit: int | None,
              with_both: bool = True) -> dict[str, float]:
    """Same-artist precision@10 of the planted covers by words and (``with_both``) by both, as bench/hybrid.py
    computes it. Without both, only the words of every cover are scored: both reads every cover's vector for
    each query (a 5 GB gather at 1M 1280-d covers)."""
    embeddings = recommender.index.embeddings
    hashes = recommender.index.metadata["content_hash"].to_numpy()
    model, graph = recommender._text_model, recommender._graph
    planted = planted_queries(labels, limit)

    def rank(row: int, others: np.ndarray) -> dict[str, np.ndarray]:
        if with_both:
            both, _, words = hybrid.both_scores(
                embeddings, model, texts, others, np.asarray(embeddings[row]), texts[row], graph=graph
            )
            return {"words": words, "both": both}
        # both_scores' words, alone: every cover's score is its own row's, so score all and take others
        query = textsearch.vectorise_queries(model, [texts[row]])
        return {"words": textsearch.words_similarities(model, query)[others, 0]}

    started = time.perf_counter()
    tops = planted_tops(hashes, planted, rank)
    return {
        "precision_queries": len(planted),
        **{f"precision_{name}": float(same_label(labels, planted, top).mean()) for name, top in tops.items()},
        "precision_seconds": time.perf_counter() - started,
    }


# -- one size, and the table ---------------------------------------------------------------------------------


def folder_mb(folder: Path, pattern: str = "*") -> float:
    """Megabytes of the files matching ``pattern`` in ``folder``, the files inside matching folders included."""
    found = [path for match in folder.glob(pattern) for path in (match, *match.rglob("*")) if path.is_file()]
    return sum(path.stat().st_size for path in found) / 2**20


def bench_size(size: int, artist: Any, artist_texts: list[str], source_texts: list[str],
               args: argparse.Namespace, source_vectors: np.ndarray | None = None) -> dict[str, Any]:
    scratch = Path(tempfile.mkdtemp(prefix=f"sleeve-scale-{size}-", dir=args.scratch))
    try:
        started = time.perf_counter()
        vectors, metadata, texts = collection(size, artist, artist_texts, source_texts,
                                              source_vectors=source_vectors,
                                              unnamed=args.distractor_lines == "unnamed")
        np.save(scratch / "vectors.npy", vectors)
        del vectors
        metadata.to_parquet(scratch / "metadata.parquet", index=False)
        texts.to_parquet(scratch / "texts.parquet", index=False)
        (scratch / "model.json").write_text(json.dumps(artist.info.model))
        generate_s = time.perf_counter() - started
        log(f"{size:,}: collection generated in {generate_s:.1f} s")
        return {"generate_s": generate_s} | bench_scratch(scratch, args)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def stages_to_run(scratch: Path, reuse: bool) -> list[str]:
    """Every stage for a new collection; for a reused one, those whose output is missing."""
    return [stage for stage in STAGES if not (reuse and (scratch / STAGE_OUTPUTS[stage]).exists())]


def bench_scratch(scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run the build stages a scratch folder still needs, then measure its index folder."""
    size = int(pd.read_parquet(scratch / "metadata.parquet", columns=["content_hash"]).shape[0])
    row: dict[str, Any] = {"size": size}
    for stage in stages_to_run(scratch, args.reuse is not None):
        _, _, out = child([__file__, "--stage", stage, "--scratch", str(scratch), "--index-type", args.index_type])
        measured = json.loads(out.splitlines()[-1])
        row |= {f"{stage}_{key}": value for key, value in measured.items()}
        log(f"{size:,}: {stage} {measured}")
    index = scratch / "index"
    row["folder_index_type"] = load_index(index).info.index_type
    row["disk_mb"] = folder_mb(index)
    row["words_disk_mb"] = folder_mb(index, "words-*")
    row["graph_disk_mb"] = folder_mb(index, "neighbours-*")
    row |= measure_queries(index, args)
    log(f"{size:,}: {row}")
    return row


LINES = (
    ("words model: build s", "words_model_seconds", "{:.1f}"),
    ("words model: peak MB (inputs MB)", ("words_model_peak_mb", "words_model_inputs_mb"), "{:,.0f} ({:,.0f})"),
    ("words engine (tantivy): build s", "words_engine_seconds", "{:.1f}"),
    ("words engine: peak MB (inputs MB)", ("words_engine_peak_mb", "words_engine_inputs_mb"), "{:,.0f} ({:,.0f})"),
    ("neighbour graph: build s", "graph_seconds", "{:.1f}"),
    ("neighbour graph: peak MB (inputs MB)", ("graph_peak_mb", "graph_inputs_mb"), "{:,.0f} ({:,.0f})"),
    ("FAISS index: type, build s (vectors staged included)", ("folder_index_type", "folder_faiss_seconds"),
     "{} {:.1f}"),
    ("write folder (engine written again) s", "folder_seconds", "{:.1f}"),
    ("index on disk MB: all / words+engine / graph", ("disk_mb", "words_disk_mb", "graph_disk_mb"),
     "{:,.0f} / {:,.0f} / {:,.1f}"),
    ("cold `search` s (peak MB)", ("cold_search_s", "cold_search_peak_mb"), "{:.2f} ({:,.0f})"),
    ("cold `recommend --by both` s (peak MB)", ("cold_recommend_both_s", "cold_recommend_both_peak_mb"),
     "{:.2f} ({:,.0f})"),
    ("warm `search_text` p50 / p95 ms", ("search_p50_ms", "search_p95_ms"), "{:.1f} / {:.1f}"),
    ("bare tantivy candidates p50 / p95 ms", ("bare_p50_ms", "bare_p95_ms"), "{:.2f} / {:.2f}"),
    ("`search_text` p50 / bare p50", "search_vs_bare", "{:.1f}x"),
    ("warm `similar_to_cover(by=\"both\")` p50 / p95 ms", ("both_p50_ms", "both_p95_ms"), "{:.0f} / {:.0f}"),
    ("planted same-artist precision@10 by words", "precision_words", "{:.3f}"),
    ("planted same-artist precision@10 by both", "precision_both", "{:.3f}"),
    ("precision queries (seconds)", ("precision_queries", "precision_seconds"), "{} ({:.0f})"),
)


def table(rows: list[dict[str, Any]]) -> str:
    """Metrics down, sizes across."""
    lines = ["| | " + " | ".join(f"{row['size']:,} covers" for row in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    for label, keys, form in LINES:
        keys = keys if isinstance(keys, tuple) else (keys,)
        cells = [form.format(*(row[k] for k in keys)) if all(k in row for k in keys) else "-" for row in rows]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated collection sizes (1000000 if asked)")
    parser.add_argument("--artist-index", type=Path, default=Path("/tmp/words-artist-before"),
                        help="index of ../shared/artist-covers built with --read-text: the planted covers")
    parser.add_argument("--lines-index", type=Path, default=Path("/tmp/shared-text-idx"),
                        help="index with text whose OCR lines make the synthetic texts (the artist index when it "
                             "holds none)")
    parser.add_argument("--queries", type=int, default=100, help="warm queries per kind")
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--precision-queries", type=int, help="planted covers to rank (all by default)")
    parser.add_argument("--precision", choices=("both", "words", "none"), default="both",
                        help="rank the planted covers by words and both (every cover's vector read per query), "
                             "by words alone, or not (to measure the queries again without the precision's wait)")
    parser.add_argument("--distractor-looks", choices=("mixture", "real"), default="mixture",
                        help="distractor vectors from bench/search.py's Mixture, or resampled from the real vectors "
                             "of --lines-index (resampled_looks; same encoder as --artist-index)")
    parser.add_argument("--distractor-lines", choices=("all", "unnamed"), default="all",
                        help="distractor texts from every OCR line of --lines-index, or from those that name no "
                             "planted artist (names_artist: the shared covers include real covers of some of them)")
    parser.add_argument("--scratch", type=Path, help="where the index folders are built (a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the built folders")
    parser.add_argument("--json", type=Path, help="also write machine, arguments and rows here")
    parser.add_argument("--index-type", default="auto", choices=INDEX_TYPES.choices(),
                        help="FAISS index type of the folder stage (auto: as build-index picks it)")
    parser.add_argument("--reuse", type=Path, help="measure this kept scratch folder (--keep) instead of generating "
                        "one; only its missing stages run (--sizes is ignored)")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.stage:
        print(json.dumps(run_stage(args.stage, args.scratch, args.index_type)))
        return
    machine = describe_machine()
    print(f"# sleeve at collection scale, {machine['date']}")
    print(f"machine: {machine_line(machine)}; load average {machine['load_average_1m']} at start")
    print(f"command: python bench/collection_scale.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    if args.reuse is not None:
        print(f"reused: {args.reuse} (generated before; only the stages whose output is missing run)\n", flush=True)
        finish([bench_scratch(args.reuse, args)], machine, args)
        return
    artist = load_index(args.artist_index)
    artist_texts = texts_by_row(artist)
    if artist_texts is None:
        raise SystemExit(f"{args.artist_index} holds no cover text; build it with --read-text")
    artist_texts = [str(t) for t in artist_texts]
    source = stored_texts(args.lines_index)
    lines_from = args.lines_index if source else args.artist_index
    source = source or artist_texts
    source_vectors = None
    if args.distractor_looks == "real":
        source_vectors = np.asarray(load_index(args.lines_index).embeddings)
        if source_vectors.shape[1] != artist.info.dim:
            raise SystemExit(f"{args.lines_index} holds {source_vectors.shape[1]}-d vectors, {args.artist_index} "
                             f"{artist.info.dim}-d: --distractor-looks real needs the same encoder")
    print(f"planted: {len(artist_texts)} covers of {args.artist_index} ({artist.info.dim}-d, {artist.info.model_key}); "
          f"synthetic texts from the OCR lines of {len(source):,} covers of {lines_from}\n", flush=True)
    print(f"distractor looks: {args.distractor_looks}; distractor lines: {args.distractor_lines}\n", flush=True)
    rows = [bench_size(size, artist, artist_texts, source, args, source_vectors) for size in args.sizes]
    finish(rows, machine, args)


def finish(rows: list[dict[str, Any]], machine: dict[str, Any], args: argparse.Namespace) -> None:
    """Print the table and the load at the end; write the JSON where asked."""
    machine["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(table(rows))
    print(f"\nload average at end: {machine['load_average_1m_end']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
