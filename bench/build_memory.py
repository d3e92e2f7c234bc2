"""Peak memory of ``build-index`` on a synthetic collection whose vectors are all cached (docs/scale.md).

``--make`` writes N small files and caches one synthetic unit vector per file, so the build does everything but
decode and embed: hash the files, join the metadata, read the vectors, build the FAISS index, write the folder.
Without it the build runs once in this process, with the sleeve found first on PYTHONPATH (so one collection can
be built by two checkouts), and prints the peak anonymous memory (RssAnon, sampled every 5 ms: the heap, where
an array of every vector would sit) and VmHWM (peak RSS, which also counts pages of memory-mapped files).

    python bench/build_memory.py --make /tmp/bm --count 100000 --dim 512
    PYTHONPATH=. python bench/build_memory.py /tmp/bm --index-type ivfpq
"""

from __future__ import annotations

import argparse
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SPEC = {"family": "synthetic", "arch": "families", "weights_sha256": "0" * 64}


def make(root: Path, count: int, dim: int) -> None:
    """N files under root/covers/rock and their vectors (families of unit vectors) in root/cache."""
    from recsys.cache import EmbeddingCache
    from recsys.ingest import content_hash

    folder = root / "covers" / "rock"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(1_000, dim)).astype(np.float32)
    with EmbeddingCache(root / "cache") as cache:
        for start in range(0, count, 10_000):
            paths = [folder / f"{i:07d}.jpg" for i in range(start, min(start + 10_000, count))]
            for path in paths:
                path.write_bytes(path.name.encode())
            rows = centres[rng.integers(0, 1_000, len(paths))] + rng.normal(size=(len(paths), dim)).astype(np.float32)
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
            cache.put(_spec(dim).key, [content_hash(p) for p in paths], rows)
    (root / "dim").write_text(str(dim))


def _spec(dim: int) -> Any:
    from recsys.encoders import ModelSpec

    return ModelSpec(**SPEC, dim=dim)


def build(root: Path, index_type: str) -> dict[str, Any]:
    """Build root/index from the cached collection and measure this process's peak memory."""
    from recsys.build import build_index
    from recsys.encoders import Encoder
    from recsys.settings import Settings

    class CachedOnly(Encoder):
        spec = _spec(int((root / "dim").read_text()))
        input_size = 8
        transform = staticmethod(lambda image: image)

        def encode_images(self, batch: Any) -> np.ndarray:
            raise RuntimeError("every vector should be cached")

    shutil.rmtree(root / "index", ignore_errors=True)
    peak = {"RssAnon": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak["RssAnon"] = max(peak["RssAnon"], _status_kib("RssAnon"))

    sampler = threading.Thread(target=sample, daemon=True)
    before = _status_kib("RssAnon")
    sampler.start()
    started = time.perf_counter()
    summary = build_index(
        root / "index", covers=root / "covers", encoder=CachedOnly(), index_type=index_type,
        settings=Settings(cache_dir=root / "cache", progress=False),
    )
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "index_type": summary.index_type, "covers": summary.covers, "seconds": round(seconds, 1),
        "rss_anon_before_mb": before // 1024, "peak_rss_anon_mb": peak["RssAnon"] // 1024,
        "vm_hwm_mb": _status_kib("VmHWM") // 1024,
    }


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--make", action="store_true", help="write the synthetic collection and its cache")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--index-type", default="flat")
    args = parser.parse_args()
    if args.make:
        make(args.root, args.count, args.dim)
    else:
        print(json.dumps(build(args.root, args.index_type)))


if __name__ == "__main__":
    main()
