"""Per-cover costs of each build step, the inputs of docs/scale.md's plan for 1M to 100M covers.

Measured one step at a time, in this process, on real covers (decode, embed, OCR) and on synthetic 512-d unit
vectors (IVF-PQ training and adding):
Each step reports wall and CPU milliseconds per item (CPU: all threads of this process; see Clock).
- decode: read, decode and preprocess one file (one thread), as a decoding worker does;
- embed: the forward pass of the encoder on decoded batches (all cores), EfficientNet-Lite0 on ONNX Runtime
  (build-index's offline default) and CLIP ViT-B-32 on PyTorch (random weights: speed does not depend on them);
- OCR: recsys.ocr's RapidOCR reading of one cover (all cores), as read-text does;
- IVF-PQ: training seconds for a sample, and add cost per vector for several list counts (the coarse assignment
  grows with the number of lists), on one thread so that the per-core cost can be scaled to N machines.

    python bench/scale.py --covers ../shared/covers
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402


class Clock:
    """Wall and CPU (all threads of this process) milliseconds per item of what runs inside ``with``.

    On a shared machine the wall time grows with the load; the CPU time is what the step costs a core, the figure
    that scales to machines of one's own.
    """

    def __init__(self, results: dict[str, float], name: str, count: int) -> None:
        self.results, self.name, self.count = results, name, count

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.results[f"{self.name}_wall_ms"] = round(1000 * (time.perf_counter() - self.wall) / self.count, 3)
        self.results[f"{self.name}_cpu_ms"] = round(1000 * (time.process_time() - self.cpu) / self.count, 3)


def measure_images(files: list[str], ocr_count: int, scratch: str) -> dict[str, float]:
    """Milliseconds per cover for decode, each encoder's forward pass, and OCR."""
    import torch

    from bench.embed import CLIP_ARCH, random_clip_checkpoint
    from recsys.embed import tune_allocator
    from recsys.encoders import create_encoder
    from recsys.images import load_cover
    from recsys.ocr import CoverTextReader

    tune_allocator()
    cnn = create_encoder("efficientnet-lite0", runtime="onnx", cache_dir=scratch)
    results: dict[str, float] = {}
    with Clock(results, "decode", len(files)):
        pixels = [cnn.preprocess(load_cover(path, reduce_to=cnn.input_size)) for path in files]
    batches = [torch.stack(pixels[start : start + 32]) for start in range(0, len(pixels), 32)]
    clip = create_encoder("clip", arch=CLIP_ARCH, weights=random_clip_checkpoint(scratch), runtime="torch")
    for name, encoder in (("embed_efficientnet_onnx", cnn), ("embed_clip_vit_b32_torch", clip)):
        encoder.encode_images(batches[0])  # warm-up: first-call allocations and kernel selection
        with Clock(results, name, len(files)):
            for batch in batches:
                encoder.encode_images(batch)
    reader = CoverTextReader()
    reader.read(files[0])  # warm-up: model load
    with Clock(results, "ocr", ocr_count):
        for path in files[:ocr_count]:
            reader.read(path)
    return results


def measure_ivfpq(dim: int, vectors: int, list_counts: list[int]) -> dict[str, float]:
    """Training (ms in all) and adding (ms per vector), one thread, for each number of inverted lists."""
    import faiss

    from index.faiss_index import pq_subquantizers

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    data = centres[rng.integers(0, 1000, vectors)] + 0.5 * rng.normal(size=(vectors, dim)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    results: dict[str, float] = {}
    for nlist in list_counts:
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_subquantizers(dim), 8, faiss.METRIC_INNER_PRODUCT)
        index.cp.max_points_per_centroid = max(39, vectors // nlist)
        with Clock(results, f"ivfpq_train_{nlist}_lists_{vectors}_points_total", 1):
            index.train(data)
        with Clock(results, f"ivfpq_add_{nlist}_lists", vectors):
            index.add(data)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--covers", type=Path, default=Path("../shared/covers"))
    parser.add_argument("--images", type=int, default=128, help="covers for decode and embed")
    parser.add_argument("--ocr-images", type=int, default=16, help="covers for OCR (about 0.3 s each)")
    parser.add_argument("--vectors", type=int, default=40_000, help="synthetic 512-d vectors for IVF-PQ")
    parser.add_argument("--lists", default="256,1024,4096")
    args = parser.parse_args()

    from recsys.images import IMAGE_SUFFIXES

    files = sorted(str(p) for p in args.covers.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    files = files[:: max(1, len(files) // args.images)][: args.images]
    before = describe_machine()
    with tempfile.TemporaryDirectory() as scratch:
        results = measure_images(files, args.ocr_images, scratch)
    results |= measure_ivfpq(512, args.vectors, [int(n) for n in args.lists.split(",")])
    print(f"# machine before: {machine_line(before)}")
    print(f"# machine after:  {machine_line(describe_machine())}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
