"""OCR throughput benchmark: sleeve 0.1's cover-text reader (RapidOCR on ONNX Runtime, "today") against OpenVINO
(sleeve's exact reader for collections since 2026-12-05), the fast reader (build-index --ocr fast) and tuned
RapidOCR settings.

Every setting reads the same fixed sample of real covers (every n-th cover of ``--covers``' MANIFEST.csv, by
path, so the same covers each run). The machine is shared, so rows are interleaved: the sample is cut into
blocks and each block is read by every setting in turn (the order rotating per block), so a burst of load
from elsewhere falls on all rows alike. The load average is sampled per block and printed.

Columns: covers/s (sample size / summed wall time of the row's blocks), speed-up over ``today``, and how the
readings differ from today's on the same covers: share of covers read identically, mean and maximum
normalised Levenshtein distance of the cover's whole text (0 identical, 1 nothing in common), and the
total number of characters read.

    python bench/ocr.py --covers ../shared/covers --sample 60
    python bench/ocr.py --covers ../shared/covers --sample 60 --json bench-ocr.json

``--artist-covers ../shared/artist-covers`` adds what a setting's readings are worth downstream: every one
of those covers is read with it (cached by content hash under the setting's own key, so only once) and the
same-artist precision@10 of ranking by words alone (recsys.textsearch.words_similarity, the cover itself
left out) is printed per setting, next to today's. ``--genre-covers ../shared/covers`` likewise reads every one
of those covers and prints the macro-F1 of the text genre model (recsys.classify.models.cover_text_model, C=1)
on evaluate's leak-free 60/20/20 split (trained on the 60, scored on the test 20), and the share of all covers
read exactly as today's reader reads them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from recsys import textsearch  # noqa: E402
from recsys.ingest import content_hash  # noqa: E402
from recsys.ocr import FAST, OPENVINO, TODAY, CoverTextReader, ReaderSettings, cover_text  # noqa: E402
from recsys.textstore import read_cover_texts, row_texts  # noqa: E402

# name -> (settings, processes)
SETTINGS: dict[str, tuple[ReaderSettings, int]] = {
    "today": (TODAY, 1),
    "today, 1 thread x 2 processes": (dataclasses.replace(TODAY, threads=1), 2),
    "openvino f32": (OPENVINO, 1),
    "openvino f32, 1 thread x 2 processes": (dataclasses.replace(OPENVINO, threads=1), 2),
    "openvino f32, 2 processes": (OPENVINO, 2),
    "openvino f32, pinned": (dataclasses.replace(OPENVINO, pinned=True), 1),
    "openvino f32, pinned, 2 processes": (dataclasses.replace(OPENVINO, pinned=True), 2),
    "openvino bf16": (dataclasses.replace(OPENVINO, precision="bf16"), 1),
    "openvino f32, det min 640": (dataclasses.replace(OPENVINO, det_side=640), 1),
    "openvino f32, det min 544": (dataclasses.replace(OPENVINO, det_side=544), 1),
    "openvino f32, det min 480": (dataclasses.replace(OPENVINO, det_side=480), 1),
    "openvino bf16, det min 544": (dataclasses.replace(OPENVINO, precision="bf16", det_side=544), 1),
    "openvino bf16, det min 480": (dataclasses.replace(OPENVINO, precision="bf16", det_side=480), 1),
    "openvino bf16, det min 544, 2 processes": (dataclasses.replace(OPENVINO, precision="bf16", det_side=544), 2),
    "openvino f32, rec width step 64": (dataclasses.replace(OPENVINO, rec_width_step=64), 1),
    "openvino bf16, det min 544, rec width step 32": (dataclasses.replace(FAST, rec_width_step=32), 1),
    "fast (bf16, det min 544, rec width step 64)": (FAST, 1),
    "fast, 2 processes": (FAST, 2),
    "openvino bf16, det min 544, rec width step 128": (dataclasses.replace(FAST, rec_width_step=128), 1),
    "openvino bf16, det min 544, rec width step 128, 2 processes": (dataclasses.replace(FAST, rec_width_step=128), 2),
    "det min 480": (ReaderSettings(det_side=480), 1),
    "det native (256)": (ReaderSettings(det_side=256), 1),
    "det native, rec batch 24, 1 thread x 2 processes": (ReaderSettings(det_side=256, rec_batch=24, threads=1), 2),
}

_worker_reader: CoverTextReader | None = None


def _start_worker(settings: ReaderSettings) -> None:
    global _worker_reader
    _worker_reader = CoverTextReader(settings=settings)


def _read_in_worker(path: str) -> str:
    assert _worker_reader is not None
    return cover_text(_worker_reader.read(path))


def sample_covers(covers: Path, size: int) -> list[str]:
    """Every n-th cover of the manifest by path: a fixed, genre-mixed sample."""
    table = pd.read_csv(covers / "MANIFEST.csv").sort_values("path")
    step = max(1, len(table) // size)
    return [str(covers / p) for p in table["path"].iloc[::step].head(size)]


def run(paths: list[str], names: list[str], block: int) -> tuple[dict[str, float], dict[str, list[str]], list[float]]:
    """Seconds and readings per setting, reading block after block with every setting in turn."""
    readers, pools = {}, {}
    for name in names:
        settings, processes = SETTINGS[name]
        if processes == 1:
            readers[name] = CoverTextReader(settings=settings)
        else:
            pools[name] = ProcessPoolExecutor(  # spawned: a fork of a process running OpenVINO may hang
                processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                initargs=(settings,),
            )
            list(pools[name].map(_read_in_worker, paths[:processes]))  # load the models before timing
    for reader in readers.values():
        reader.read(paths[0])  # first-call warm-up
    seconds = dict.fromkeys(names, 0.0)
    readings: dict[str, list[str]] = {name: [] for name in names}
    loads = []
    for number, start in enumerate(range(0, len(paths), block)):
        chunk = paths[start : start + block]
        loads.append(os.getloadavg()[0])
        for name in names[number % len(names) :] + names[: number % len(names)]:
            began = time.perf_counter()
            if name in readers:
                texts = [cover_text(readers[name].read(path)) for path in chunk]
            else:
                texts = list(pools[name].map(_read_in_worker, chunk))
            seconds[name] += time.perf_counter() - began
            readings[name].extend(texts)
        print(f"block {number + 1}: {start + len(chunk)}/{len(paths)} covers", file=sys.stderr)
    for pool in pools.values():
        pool.shutdown()
    return seconds, readings, loads


def manifest_files(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The manifest of ``root`` and its covers as files (columns path, content_hash), each file hashed once."""
    table = pd.read_csv(root / "MANIFEST.csv")
    paths = [str(root / p) for p in table["path"]]
    return table, pd.DataFrame({"path": paths, "content_hash": [content_hash(p) for p in paths]})


def texts_of(files: pd.DataFrame, settings: ReaderSettings) -> np.ndarray:
    """Each file's cover text as read with ``settings`` (cached by content hash, so each cover is read once)."""
    texts, _ = read_cover_texts(files, settings=settings)
    return row_texts(files["content_hash"], texts)


def artist_precision(table: pd.DataFrame, files: pd.DataFrame, settings: ReaderSettings) -> float:
    """Same-artist precision@10 of words alone on the covers of ``files`` read with ``settings``."""
    texts = texts_of(files, settings)
    hashes = files["content_hash"].to_numpy()
    model = textsearch.fit_text_vectors(list(texts))
    artists = table["artist"].to_numpy()
    hits = []
    for row, digest in enumerate(hashes):
        scores = textsearch.words_similarity(model, texts[row])
        scores[hashes == digest] = -np.inf
        hits.append(np.mean(artists[np.argsort(-scores, kind="stable")[:10]] == artists[row]))
    return float(np.mean(hits))


def genre_figures(
    table: pd.DataFrame, texts: np.ndarray, today: np.ndarray, split: np.ndarray
) -> tuple[float, float]:
    """(macro-F1 of the text genre model on the test part of ``split``, share of covers read as ``today``'s
    reader reads them) for the covers of ``table`` whose cover texts are ``texts``."""
    from sklearn.metrics import f1_score

    from recsys.classify.models import cover_text_model

    genres = table["genre"].to_numpy()
    model = cover_text_model().fit(texts[split == "train"], genres[split == "train"])
    predicted = model.predict(texts[split == "test"])
    return float(f1_score(genres[split == "test"], predicted, average="macro")), float(np.mean(texts == today))


def evaluate_split(table: pd.DataFrame, files: pd.DataFrame) -> np.ndarray:
    """evaluate's leak-free split of the covers of ``table``: near-duplicate covers share a group."""
    from recsys.classify.split import dhashes, near_duplicate_groups, train_validation_test

    groups = near_duplicate_groups(dhashes(files["path"]))
    return train_validation_test(table["genre"].to_numpy(), groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--covers", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "covers")
    parser.add_argument("--sample", type=int, default=60, help="covers in the fixed sample")
    parser.add_argument("--block", type=int, default=5, help="covers read by one setting before the next")
    parser.add_argument("--settings", nargs="*", default=list(SETTINGS), help="names of SETTINGS to run")
    parser.add_argument("--json", type=Path, help="also write figures and readings here")
    parser.add_argument("--artist-covers", type=Path, help="also measure same-artist precision@10 by words here")
    parser.add_argument("--artist-settings", nargs="*", help="settings measured on --artist-covers [default: all]")
    parser.add_argument("--genre-covers", type=Path, help="also measure the text genre model's macro-F1 here")
    parser.add_argument("--genre-settings", nargs="*", help="settings measured on --genre-covers [default: all]")
    args = parser.parse_args()
    names = ["today", *[n for n in args.settings if n != "today"]]
    paths = sample_covers(args.covers, args.sample)
    before = describe_machine()
    seconds, readings, loads = run(paths, names, args.block)
    after = describe_machine()
    baseline = readings["today"]
    rows = []
    for name in names:
        distance = np.array([Levenshtein.normalized_distance(a, b) for a, b in zip(baseline, readings[name])])
        rows.append({
            "setting": name,
            "covers_per_s": len(paths) / seconds[name],
            "speed_up": seconds["today"] / seconds[name],
            "identical": float(np.mean(distance == 0)),
            "mean_distance": float(distance.mean()),
            "max_distance": float(distance.max()),
            "characters": sum(len(text) for text in readings[name]),
        })
    print(f"# OCR throughput, {len(paths)} covers of {args.covers.name}, blocks of {args.block} interleaved")
    print(f"# machine at start: {machine_line(before)}")
    print(f"# machine at end:   {machine_line(after)}; load average per block: "
          f"mean {np.mean(loads):.1f}, min {np.min(loads):.1f}, max {np.max(loads):.1f}")
    print("| setting | covers/s | speed-up | identical | mean edit dist | max edit dist | chars |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['setting']} | {row['covers_per_s']:.2f} | {row['speed_up']:.2f}x | {row['identical']:.2f} "
              f"| {row['mean_distance']:.3f} | {row['max_distance']:.3f} | {row['characters']} |")
    if args.artist_covers:
        table, files = manifest_files(args.artist_covers)
        print(f"\n| setting | same-artist precision@10 by words, {args.artist_covers.name} |\n|---|---:|")
        for name in ["today", *[n for n in args.artist_settings or names if n != "today"]]:
            print(f"| {name} | {artist_precision(table, files, SETTINGS[name][0]):.3f} |")
    if args.genre_covers:
        table, files = manifest_files(args.genre_covers)
        split, today = evaluate_split(table, files), texts_of(files, TODAY)
        print(f"\n| setting | text genre macro-F1, {args.genre_covers.name} (test {np.sum(split == 'test')}) "
              "| covers read as today |\n|---|---:|---:|")
        for name in ["today", *[n for n in args.genre_settings or names if n != "today"]]:
            texts = today if name == "today" else texts_of(files, SETTINGS[name][0])
            f1, identical = genre_figures(table, texts, today, split)
            print(f"| {name} | {f1:.3f} | {identical:.3f} |")
    if args.json:
        settings = {name: dataclasses.asdict(SETTINGS[name][0]) | {"processes": SETTINGS[name][1]} for name in names}
        args.json.write_text(json.dumps({
            "machine": {"start": before, "end": after, "block_loads": loads}, "covers": paths,
            "settings": settings, "rows": rows, "readings": readings,
        }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
