"""Embedding throughput: sleeve's whole pipeline (files -> cached vectors) against the raw forward pass.

For each encoder and runtime it reports, in one run:
- raw forward: images/s of ``encoder.encode_images`` on tensors decoded and preprocessed beforehand;
- pipeline: images/s of what ``build-index`` does per file (hash, decode in worker processes, preprocess,
  forward, commit to the embedding cache), on the same files;
- the ratio of the two, and the cosine agreement of the runtime's vectors with PyTorch fp32.

Every measurement runs in a fresh process forked from a parent that never initialises torch, so allocator
settings and thread pools never leak between rows.
CLIP ViT-B-32 runs with random weights unless --clip-weights is given: no CLIP weights can be installed
here, and speed does not depend on the values of the weights.

    python bench/embed.py --covers ../shared/covers --images 512
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402

CLIP_ARCH = "ViT-B-32"


def measure(config: dict) -> dict:
    """One row, in its own process: raw forward rate, pipeline rate, and vectors for the agreement check."""
    import pandas as pd

    from recsys.cache import EmbeddingCache
    from recsys.embed import embed_missing, tune_allocator
    from recsys.encoders import create_encoder
    from recsys.encoders.base import stack_preprocessed
    from recsys.images import load_cover
    from recsys.ingest import fingerprint

    if config["tuned_allocator"]:
        tune_allocator()
    clip = {"arch": CLIP_ARCH, "weights": config["clip_weights"]} if config["model"] == "clip" else {}
    encoder = create_encoder(config["model"], runtime=config["runtime"], cache_dir=config["onnx_cache"], **clip)
    files = config["files"]
    size = config["batch_size"]
    pixels = [encoder.preprocess(load_cover(path, reduce_to=encoder.input_size)) for path in files]
    batches = [stack_preprocessed(pixels[start : start + size]) for start in range(0, len(pixels), size)]
    encoder.encode_images(batches[0])  # warm-up: first-call allocations and kernel selection
    started = time.perf_counter()
    for batch in batches:
        encoder.encode_images(batch)
    raw_rate = len(files) / (time.perf_counter() - started)

    result = {"raw_rate": raw_rate, "vectors": encoder.encode_images(stack_preprocessed(pixels[:64])).tolist()}
    if config["pipeline"]:
        with tempfile.TemporaryDirectory() as folder, EmbeddingCache(folder) as cache:
            started = time.perf_counter()
            found, _ = fingerprint(files)
            report = embed_missing(
                pd.DataFrame(found), encoder, cache, batch_size=size, workers=config["workers"], progress=False
            )
            result["pipeline_rate"] = report.computed / (time.perf_counter() - started)
    return result


def rows_to_run(models: list[str]) -> list[dict]:
    rows = []
    if "efficientnet-lite0" in models:
        rows.append({"model": "efficientnet-lite0", "runtime": "torch", "tuned_allocator": False, "pipeline": False,
                     "label": "torch eager, glibc malloc defaults"})
        for runtime in ("torch", "onnx", "onnx-int8"):
            rows.append({"model": "efficientnet-lite0", "runtime": runtime, "tuned_allocator": True, "pipeline": True})
    if "efficientnet-lite2-style" in models:  # int8 left out: its agreement is poor for depthwise CNNs
        for runtime in ("torch", "onnx"):
            rows.append({"model": "efficientnet-lite2-style", "runtime": runtime, "tuned_allocator": True,
                         "pipeline": True})
    if "clip" in models:
        for runtime in ("torch", "onnx", "onnx-int8"):
            rows.append({"model": "clip", "runtime": runtime, "tuned_allocator": True, "pipeline": True})
    return rows


def random_clip_checkpoint(folder: str) -> str:
    import open_clip
    import torch

    torch.manual_seed(0)
    path = os.path.join(folder, "clip-random.pt")
    torch.save({"state_dict": open_clip.create_model(CLIP_ARCH).state_dict()}, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--covers", default="../shared/covers", help="folder of covers to read")
    parser.add_argument("--images", type=int, default=512, help="images per measurement")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=None, help="decoding processes [sleeve's default]")
    parser.add_argument("--models", default="efficientnet-lite0,clip")
    parser.add_argument("--clip-weights", help="a real CLIP ViT-B-32 checkpoint instead of random weights")
    parser.add_argument("--json", dest="json_out", help="also write the rows to this JSON file")
    args = parser.parse_args()
    machine = describe_machine()  # before the runs: the load they start on

    from recsys.images import IMAGE_SUFFIXES

    files = sorted(str(p) for p in Path(args.covers).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < args.images:
        sys.exit(f"need {args.images} covers under {args.covers}, found {len(files)}")
    files = files[:: max(1, len(files) // args.images)][: args.images]
    # Measurements fork from this light parent (torch is never initialised here), as a user's build-index
    # process would start its decoding workers; the random CLIP checkpoint is made in a spawned process so
    # that no torch thread pool exists before a fork.
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as scratch:
        clip_weights = args.clip_weights
        if "clip" in args.models and not clip_weights:
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                clip_weights = pool.submit(random_clip_checkpoint, scratch).result()
        results = []
        for row in rows_to_run(args.models.split(",")):
            config = {**row, "files": files, "batch_size": args.batch_size, "workers": args.workers,
                      "onnx_cache": scratch, "clip_weights": clip_weights}
            print(f"measuring {row['model']} {row['runtime']} ...", file=sys.stderr)
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                results.append({**row, **pool.submit(measure, config).result()})

    print(f"# embed throughput: {len(files)} covers from {args.covers}, batch {args.batch_size}")
    print(f"# machine: {machine_line(machine)}")
    print(f"# CLIP weights: {'random (speed only)' if not args.clip_weights else args.clip_weights}\n")
    print("| model | runtime | raw forward img/s | pipeline img/s | pipeline / raw | vs torch eager | cosine to fp32 |")
    print("|---|---|---|---|---|---|---|")
    table = []
    for row in results:
        reference = next(r for r in results if r["model"] == row["model"] and r["runtime"] == "torch"
                         and r["tuned_allocator"])
        base = np.asarray(reference["vectors"])
        agreement = float(np.min(np.sum(np.asarray(row["vectors"]) * base, axis=1)))
        runtime = row.get("label", row["runtime"])
        pipeline = row.get("pipeline_rate")
        line = {
            "model": row["model"], "runtime": runtime, "raw_rate": round(row["raw_rate"], 1),
            "pipeline_rate": round(pipeline, 1) if pipeline else None,
            "pipeline_over_raw": round(pipeline / row["raw_rate"], 2) if pipeline else None,
            "speedup_vs_torch": round(row["raw_rate"] / reference["raw_rate"], 2),
            "min_cosine_to_fp32": round(agreement, 4),
        }
        table.append(line)
        print(f"| {line['model']} | {runtime} | {line['raw_rate']} | {line['pipeline_rate'] or '-'} | "
              f"{line['pipeline_over_raw'] or '-'} | {line['speedup_vs_torch']}x | {line['min_cosine_to_fp32']} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"machine": machine, "rows": table}, indent=2))


if __name__ == "__main__":
    main()
