"""Offline looks measured side by side (issue 21, first step): which image vector makes look-alikes look alike
without CLIP weights. Every candidate is scored by the same code on the same covers:

- same-genre precision@10 on ../shared/covers (4,450 covers, 5 genres, chance 0.2): each cover is a query, the
  covers with its content (itself, exact copies) are left out of its results, as ``sleeve recommend`` does;
  columns split the queries into two halves of the covers (sorted paths, every other one);
- same-artist precision@10 on ../shared/artist-covers (755 covers, 63 artists), the same way, split as
  bench/hybrid.py does: the artists of half A (sorted labels, every other one) and of half B;
- optionally (``--svm``) picture-only genre macro-F1 of ``evaluate``'s RBF SVM on the 4,450 covers, as
  ``evaluate`` computes it: its stratified 60/20/20 split with near-duplicates kept together (seed 42), C chosen
  on validation, the calibrated refit tested; columns split the test covers into the genre halves;
- embedding throughput: covers/s on this machine, from the file on disk to the candidate's vector (decode,
  preprocess, network, pooling), batches of 32, torch on every core, over ``--speed-sample`` covers after one
  warm-up batch. Fitted projections (PCA, whitening) add one small matrix product, not timed.

Candidates: ``lite0`` is sleeve's encoder exactly as ``build-index`` builds it (EfficientNetLite0Encoder: mean of the
last 1280-channel map). The others pool the same network's maps differently (GeM, several layers), take
second-order style statistics of its mid-level maps (channel mean+std; Gram matrices, signed square root,
compressed to 256 dims by a fixed random projection or by PCA fitted on the collection), describe colour and
layout without a network (HSV histograms on a grid, a tiny thumbnail), use EfficientNet-Lite2 (260 px), or
concatenate L2-normalised parts with weights. Parameters (concatenation weights, whitening dims and power) are
chosen on the selection halves only: artist half A and genre half A, by the sum of their precisions relative to
lite0's; half B of each is reported beside them as the confirmation. PCA and whitening are fitted on the indexed
collection itself (all covers of the set being searched, queries included, as an index would fit them on its
covers), then applied to every vector.

Network features are computed once and cached under --cache (keyed by network and file list), so reruns only
score.

    python bench/look.py --svm
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from recsys.encoders import efficientnet, lite_style  # noqa: E402
from recsys.encoders.lite_style import gem, gram_upper  # noqa: E402
from recsys.encoders.preprocess import Preprocess  # noqa: E402
from recsys.images import load_cover  # noqa: E402
from recsys.ingest import content_hash  # noqa: E402

K = 10
BATCH = 32
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# Stage ends (last block of each resolution/width stage) of each network, and the blocks whose Gram matrices
# are kept. lite0: 24@56, 40@28, 80@14, 112@14, 192@7, 320@7 channels@side; lite2 at 260 px likewise.
NETWORKS = {
    "lite0": {"size": 224, "stages": [2, 4, 7, 10, 14, 15], "grams": [4, 7, 10]},
    "lite2": {"size": lite_style.INPUT_SIZE, "stages": [3, 6, 10, 14, 19, 20], "grams": [lite_style.GRAM_BLOCK]},
}
STYLE_BLOCKS = {"lite0": [4, 7, 10, 14], "lite2": [6, 10, 14, 19]}
GEM_BLOCKS = {"lite0": [10, 14], "lite2": list(lite_style.GEM_BLOCKS)}
SHIPPED = "efficientnet-lite2-style"
"""sleeve's encoder family of lite2 multi-layer GeM + STYLE_WEIGHT x the Gram of GRAM_BLOCK by the shipped PCA."""
HSV_BINS = (8, 3, 3)
PROJECTED = 256


# ---------------------------------------------------------------- the networks and their maps


def load_network(name: str) -> torch.nn.Module:
    """The ImageNet network from its wheel, as sleeve loads it."""
    variant = {"lite0": efficientnet.FAMILY, "lite2": lite_style.NETWORK}[name]
    return efficientnet.load_network(variant=variant).eval().to(memory_format=torch.channels_last)


def preprocess_for(name: str) -> Preprocess:
    return efficientnet.lite_preprocess(NETWORKS[name]["size"])


class _Enough(Exception):
    """Raised by a hook once the last map a candidate needs is computed: the rest of the network is skipped."""


def network_features(network: torch.nn.Module, name: str, pixels: torch.Tensor, wanted: set[str]) -> dict:
    """The pooled features of one batch that ``wanted`` names (keys as in :func:`feature_keys`)."""
    maps: dict[int, torch.Tensor] = {}
    needed_blocks = {int(k.split(".")[1][1:]) for k in wanted if k.split(".")[1].startswith("b")}
    needs_head = any(k.split(".")[1].startswith("head") for k in wanted)
    last = max(needed_blocks) if needed_blocks and not needs_head else None
    hooks = []
    for index in needed_blocks:
        def keep(module, inputs, output, index=index):
            maps[index] = output
            if index == last:
                raise _Enough
        hooks.append(network._blocks[index].register_forward_hook(keep))
    head = None
    try:
        with torch.inference_mode():
            try:
                head = network.extract_features(pixels.contiguous(memory_format=torch.channels_last))
            except _Enough:
                pass
            out = {}
            for key in wanted:
                part = key.split(".", 1)[1]
                if part == "head_mean":
                    out[key] = head.mean(dim=(2, 3))
                elif part == "head_gem":
                    out[key] = gem(head)
                else:
                    block, kind = part.split(".")
                    x = maps[int(block[1:])]
                    if kind == "mean":
                        out[key] = x.mean(dim=(2, 3))
                    elif kind == "std":
                        out[key] = x.std(dim=(2, 3))
                    elif kind == "gem":
                        out[key] = gem(x)
                    elif kind == "gram":
                        out[key] = gram_upper(x).half()
            return {key: value.numpy() if value.dtype == torch.float16 else value.float().numpy()
                    for key, value in out.items()}
    finally:
        for hook in hooks:
            hook.remove()


def feature_keys(name: str) -> list[str]:
    spec = NETWORKS[name]
    keys = [f"{name}.head_mean", f"{name}.head_gem"]
    for block in spec["stages"]:
        keys += [f"{name}.b{block}.{kind}" for kind in ("mean", "std", "gem")]
    keys += [f"{name}.b{block}.gram" for block in spec["grams"]]
    return keys


# ---------------------------------------------------------------- colour and layout, no network


def hsv_grid(image: Image.Image, grid: int) -> np.ndarray:
    """HSV histograms (8 hue x 3 saturation x 3 value bins) of each cell of a grid x grid layout, square roots
    (Hellinger), concatenated."""
    small = ImageOps.fit(image, (96, 96), method=Image.Resampling.BILINEAR).convert("HSV")
    hsv = np.asarray(small, dtype=np.int32)
    codes = ((hsv[..., 0] * HSV_BINS[0]) >> 8) * (HSV_BINS[1] * HSV_BINS[2]) + \
        ((hsv[..., 1] * HSV_BINS[1]) >> 8) * HSV_BINS[2] + ((hsv[..., 2] * HSV_BINS[2]) >> 8)
    bins = int(np.prod(HSV_BINS))
    cells = []
    step = 96 // grid
    for row, col in itertools.product(range(grid), repeat=2):
        cell = codes[row * step:(row + 1) * step, col * step:(col + 1) * step]
        histogram = np.bincount(cell.ravel(), minlength=bins).astype(np.float32)
        cells.append(np.sqrt(histogram / histogram.sum()))
    return np.concatenate(cells)


def thumbnail(image: Image.Image) -> np.ndarray:
    """An 8 x 8 RGB thumbnail of the centre square, centred: layout and palette in 192 numbers."""
    small = np.asarray(ImageOps.fit(image, (8, 8), method=Image.Resampling.BOX), dtype=np.float32).ravel() / 255
    return small - small.mean()


def colour_features(image: Image.Image, wanted: set[str]) -> dict:
    out = {}
    for key in wanted:
        if key.startswith("colour.hsv"):
            out[key] = hsv_grid(image, int(key[-1]))
        elif key == "colour.thumb":
            out[key] = thumbnail(image)
    return out


COLOUR_KEYS = ["colour.hsv1", "colour.hsv2", "colour.hsv3", "colour.thumb"]


# ---------------------------------------------------------------- extraction with a cache


def extract(paths: list[Path], wanted: list[str], networks: dict) -> dict[str, np.ndarray]:
    """Every ``wanted`` feature of every path, computed in batches: one decode per cover, one forward pass per
    network. Returns {key: (N, d) array}."""
    by_network: dict[str, set[str]] = {}
    for key in wanted:
        by_network.setdefault(key.split(".")[0], set()).add(key)
    rows: dict[str, list[np.ndarray]] = {key: [] for key in wanted}
    for start in range(0, len(paths), BATCH):
        images = [load_cover(path) for path in paths[start:start + BATCH]]
        for group, keys in by_network.items():
            if group == "colour":
                for image in images:
                    for key, value in colour_features(image, keys).items():
                        rows[key].append(value[None])
            else:
                pixels = torch.from_numpy(np.stack([preprocess_for(group)(image) for image in images]))
                for key, value in network_features(networks[group], group, pixels, keys).items():
                    rows[key].append(value)
    return {key: np.concatenate(parts) for key, parts in rows.items()}


def cached_features(paths: list[Path], group: str, keys: list[str], networks: dict, cache: Path) -> dict:
    digest = hashlib.sha256("\n".join(map(str, paths)).encode() + "|".join(keys).encode()).hexdigest()[:16]
    target = cache / f"{group}-{digest}.npz"
    if target.exists():
        with np.load(target) as stored:
            return {key: stored[key] for key in keys}
    started = time.perf_counter()
    features = extract(paths, keys, networks)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(target, **features)
    print(f"  {group}: {len(paths)} covers in {time.perf_counter() - started:.0f} s, cached to {target}",
          file=sys.stderr)
    return features


# ---------------------------------------------------------------- scoring


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def precision_at_k(vectors: np.ndarray, labels: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Each cover's share of its K nearest covers (by cosine, covers with its content left out) sharing its
    label."""
    vectors = unit(vectors)
    _, codes = np.unique(hashes, return_inverse=True)
    hits = np.empty(len(vectors))
    for start in range(0, len(vectors), 1024):
        block = vectors[start:start + 1024] @ vectors.T
        rows = np.arange(start, min(start + 1024, len(vectors)))
        block[codes[rows][:, None] == codes[None, :]] = -np.inf
        top = np.argpartition(-block, K, axis=1)[:, :K]
        hits[rows] = (labels[top] == labels[rows][:, None]).mean(axis=1)
    return hits


def pca_basis(x: np.ndarray, dims: int, power: float) -> tuple[np.ndarray, np.ndarray]:
    """PCA (and whitening: components divided by eigenvalue ** power; 0 is plain PCA) fitted on ``x``: its
    mean and its (d, dims) basis."""
    mean = x.mean(axis=0)
    _, singular, vt = np.linalg.svd(x - mean, full_matrices=False)
    dims = min(dims, len(singular) - 1)
    eigen = singular[:dims] ** 2 / (len(x) - 1)
    scale = (eigen + 1e-9 * eigen[0]) ** -power
    return mean, (vt[:dims].T * scale).astype(np.float32)


def pca_fit(x: np.ndarray, dims: int, power: float) -> Callable[[np.ndarray], np.ndarray]:
    mean, basis = pca_basis(x, dims, power)
    return lambda y: (y - mean) @ basis


def fit_style_pca(collections: dict, target: Path) -> None:
    """The shipped encoder's fixed PCA of the Gram part, fitted on the selection halves only (genre covers of
    half A and artist covers of half-A artists), so that halves B confirm it."""
    key = f"lite2.b{lite_style.GRAM_BLOCK}.gram"
    x = np.vstack([unit(c.features[key][c.half_a].astype(np.float32)) for c in collections.values()])
    mean, basis = pca_basis(x, PROJECTED, 0.0)
    lite_style.write_pca(target, mean, basis.T)
    print(f"style PCA: {basis.shape[1]} components of {basis.shape[0]} Gram numbers fitted on {len(x)} covers "
          f"of halves A, written to {target}", file=sys.stderr)


def shipped_pca(f: dict) -> np.ndarray:
    """The Gram part projected by the PCA that ships with sleeve's efficientnet-lite2-style encoder."""
    mean, components = lite_style.read_pca()
    return (unit(f[f"lite2.b{lite_style.GRAM_BLOCK}.gram"].astype(np.float32)) - mean) @ components.T


@dataclass
class Candidate:
    name: str
    parts: list[tuple[str, float]]  # (part name, weight); a part is a key of PARTS
    whiten: tuple[int, float] | None = None  # (dims, power) fitted on the collection
    note: str = ""
    results: dict = field(default_factory=dict)

    def needs(self) -> set[str]:
        return {key for part, _ in self.parts for key in PARTS[part][0]}


PARTS: dict[str, tuple[list[str], Callable[[dict], np.ndarray] | None]] = {}
"""part name -> (feature keys it needs, function of {key: array} to its matrix; None: fitted per collection)"""
OTHER_SET: dict[int, dict] = {}
"""id of a collection's features -> the other collection's features (for projections fitted elsewhere)"""


def define_parts() -> None:
    projection_seed = np.random.default_rng(0)
    projections = {}

    def fixed_pca(key: str) -> Callable[[dict], np.ndarray]:
        """PCA fitted on the other collection's covers: a projection that could ship with an encoder."""
        def project(f: dict) -> np.ndarray:
            return pca_fit(unit(OTHER_SET[id(f)][key].astype(np.float32)), PROJECTED, 0.0)(unit(f[key]))
        return project

    def random_projection(key: str) -> Callable[[dict], np.ndarray]:
        def project(f: dict) -> np.ndarray:
            x = f[key].astype(np.float32)
            if x.shape[1] not in projections:
                projections[x.shape[1]] = projection_seed.standard_normal((x.shape[1], PROJECTED)).astype(
                    np.float32) / np.sqrt(PROJECTED)
            return unit(x) @ projections[x.shape[1]]
        return project

    for net in NETWORKS:
        PARTS[f"{net} mean"] = ([f"{net}.head_mean"], lambda f, net=net: f[f"{net}.head_mean"])
        PARTS[f"{net} GeM"] = ([f"{net}.head_gem"], lambda f, net=net: f[f"{net}.head_gem"])
        gem_keys = [f"{net}.b{b}.gem" for b in GEM_BLOCKS[net]] + [f"{net}.head_gem"]
        PARTS[f"{net} multi-layer GeM"] = (
            gem_keys, lambda f, keys=gem_keys: np.hstack([unit(f[k]) for k in keys]))
        style_keys = [f"{net}.b{b}.{s}" for b in STYLE_BLOCKS[net] for s in ("mean", "std")]
        PARTS[f"{net} mid mean+std"] = (
            style_keys, lambda f, net=net: np.hstack(
                [unit(np.hstack([f[f"{net}.b{b}.mean"], f[f"{net}.b{b}.std"]])) for b in STYLE_BLOCKS[net]]))
        for block in NETWORKS[net]["grams"]:
            key = f"{net}.b{block}.gram"
            PARTS[f"{net} Gram b{block} RP{PROJECTED}"] = ([key], random_projection(key))
            PARTS[f"{net} Gram b{block} PCA{PROJECTED}"] = ([key], None)
            PARTS[f"{net} Gram b{block} PCA{PROJECTED} of the other set"] = ([key], fixed_pca(key))
    PARTS[f"lite2 Gram b{lite_style.GRAM_BLOCK} shipped PCA{PROJECTED}"] = (
        [f"lite2.b{lite_style.GRAM_BLOCK}.gram"], shipped_pca)
    PARTS["HSV 8x3x3 global+2x2"] = (
        ["colour.hsv1", "colour.hsv2"], lambda f: np.hstack([unit(f["colour.hsv1"]), unit(f["colour.hsv2"])]))
    PARTS["HSV 8x3x3 3x3"] = (["colour.hsv3"], lambda f: f["colour.hsv3"])
    PARTS["thumbnail 8x8 RGB"] = (["colour.thumb"], lambda f: f["colour.thumb"])


_PART_CACHE: dict[tuple[str, int], np.ndarray] = {}


def part_matrix(part: str, features: dict) -> np.ndarray:
    """A part's unit rows, computed once per feature set (a PCA of a Gram matrix takes a minute)."""
    key = (part, id(features))
    if key not in _PART_CACHE:
        _PART_CACHE[key] = _part_matrix(part, features)
    return _PART_CACHE[key]


def _part_matrix(part: str, features: dict) -> np.ndarray:
    keys, build = PARTS[part]
    if build is not None:
        return unit(build(features))
    x = features[keys[0]].astype(np.float32)  # PCA on the collection itself
    return unit(pca_fit(unit(x), PROJECTED, 0.0)(unit(x)))


def candidate_matrix(candidate: Candidate, features: dict) -> np.ndarray:
    x = np.hstack([weight * part_matrix(part, features) for part, weight in candidate.parts if weight > 0])
    if candidate.whiten:
        x = pca_fit(x, *candidate.whiten)(x)
    return unit(x)


@dataclass
class Collection:
    name: str
    paths: list[Path]
    labels: np.ndarray
    hashes: np.ndarray
    half_a: np.ndarray  # the queries parameters are chosen on
    genres: np.ndarray
    features: dict = field(default_factory=dict)


def load_collection(name: str, manifest: Path, label: str, split_by_label: bool, limit: int | None) -> Collection:
    table = pd.read_csv(manifest).sort_values("path", kind="stable").reset_index(drop=True)
    if limit:
        table = table.sample(n=min(limit, len(table)), random_state=0).sort_values("path").reset_index(drop=True)
    paths = [manifest.parent / p for p in table["path"]]
    labels = table[label].astype(str).str.lower().to_numpy()
    if split_by_label:  # as bench/hybrid.py: the labels of half A are the sorted labels, every other one
        half_a = np.isin(labels, np.unique(labels)[::2])
    else:
        half_a = np.arange(len(paths)) % 2 == 0
    hashes = np.array([content_hash(p) for p in paths])
    return Collection(name, paths, labels, hashes, half_a, table["genre"].astype(str).to_numpy())


def score(candidate: Candidate, collections: dict[str, Collection]) -> dict:
    out = {}
    for key, c in collections.items():
        hits = precision_at_k(candidate_matrix(candidate, c.features), c.labels, c.hashes)
        out[key] = (hits.mean(), hits[c.half_a].mean(), hits[~c.half_a].mean())
    return out


def objective(result: dict, reference: dict) -> float:
    """What parameters are chosen by: the selection halves (A) only, each relative to lite0's."""
    return result["genre"][1] / reference["genre"][1] + result["artist"][1] / reference["artist"][1]


# ---------------------------------------------------------------- throughput and SVM


def throughput(candidate: Candidate, paths: list[Path], networks: dict, encoder) -> float:
    """Covers/s from file to vector for this candidate's features (one warm-up batch not counted)."""
    wanted = sorted(candidate.needs())

    def run(batch: list[Path]) -> None:
        if candidate.name == "lite0":  # sleeve's own encoder, as build-index uses it
            images = [load_cover(p) for p in batch]
            encoder.encode_images(torch.from_numpy(np.stack([encoder.array_transform(i) for i in images])))
        else:
            extract(batch, wanted, networks)

    run(paths[:BATCH])
    started = time.perf_counter()
    for start in range(BATCH, len(paths), BATCH):
        run(paths[start:start + BATCH])
    return (len(paths) - BATCH) / (time.perf_counter() - started)


def svm_split(c: Collection) -> np.ndarray:
    """``evaluate``'s default split of the genre covers: stratified 60/20/20 with near-duplicate covers (by
    difference hash) kept in one part, seed 42; a name per cover."""
    from recsys.classify.split import dhashes, near_duplicate_groups, train_validation_test

    return train_validation_test(c.genres, near_duplicate_groups(dhashes(c.paths)), seed=42)


def svm_macro_f1(x: np.ndarray, c: Collection, split: np.ndarray, cache: Path) -> tuple[float, float, float]:
    """Picture-only genre macro-F1 of ``evaluate``'s RBF SVM on ``x``: C chosen on the validation covers,
    refitted and calibrated on the training covers, tested on the test covers; overall and on the test covers
    of each genre half. Minutes per candidate on 2 cores, so cached by the vectors and the split."""
    import json

    from sklearn.metrics import f1_score

    from recsys.classify.data import LabelledCovers
    from recsys.classify.train import fit_model

    x = np.ascontiguousarray(x, dtype=np.float32)
    digest = hashlib.sha256(x.tobytes() + split.astype(str).tobytes() + c.half_a.tobytes()).hexdigest()[:16]
    target = cache / f"svm-{digest}.json"
    if target.exists():
        return tuple(json.loads(target.read_text()))
    covers = LabelledCovers(np.asarray(c.paths, dtype=object), c.genres.astype(object), x.astype(np.float32))
    fitted = fit_model("svm", covers.subset(split == "train"), covers.subset(split == "validation"))
    test = split == "test"
    predicted = np.asarray(fitted.classes, dtype=object)[fitted.predict_proba(covers.subset(test)).argmax(axis=1)]
    truth, half_a = c.genres[test], c.half_a[test]
    labels = sorted(set(c.genres[test]))

    def f1(rows: np.ndarray) -> float:
        return float(f1_score(truth[rows], predicted[rows], labels=labels, average="macro", zero_division=0))

    scores = f1(np.ones(len(truth), bool)), f1(half_a), f1(~half_a)
    cache.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(scores))
    return scores


def shipped_agreement(c: Collection, candidates: list[Candidate]) -> list[float]:
    """Lowest cosine between the shipped encoder's vectors (PyTorch, then ONNX Runtime) and the bench's
    candidate rows, on the first batch of ``c``."""
    import tempfile

    from recsys.encoders import create_encoder

    shipped = next(candidate for candidate in candidates if candidate.name == SHIPPED)
    expected = candidate_matrix(shipped, c.features)[:BATCH]
    pixels = np.stack([lite_style.PREPROCESS(load_cover(p)) for p in c.paths[:BATCH]])
    lowest = []
    with tempfile.TemporaryDirectory() as folder:
        for runtime in ("torch", "onnx"):
            got = create_encoder(SHIPPED, runtime=runtime, cache_dir=folder).encode_images(pixels)
            lowest.append(float(np.min(np.sum(got * expected, axis=1))))
    return lowest


# ---------------------------------------------------------------- the bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--covers", type=Path, default=SHARED / "covers" / "MANIFEST.csv")
    parser.add_argument("--artists", type=Path, default=SHARED / "artist-covers" / "MANIFEST.csv")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sleeve-look-cache"))
    parser.add_argument("--no-lite2", action="store_true", help="leave EfficientNet-Lite2 out")
    parser.add_argument("--svm", action="store_true", help="add the SVM macro-F1 column (minutes)")
    parser.add_argument("--speed-sample", type=int, default=160, help="covers timed per candidate")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--limit", type=int, help="only the first N covers of each set (a smoke test)")
    parser.add_argument("--fit-style-pca", type=Path, metavar="NPZ",
                        help="only fit the efficientnet-lite2-style encoder's Gram PCA on halves A and write it")
    args = parser.parse_args()
    machine = describe_machine()
    torch.manual_seed(0)
    define_parts()
    nets = [n for n in NETWORKS if not (args.no_lite2 and n == "lite2")]
    networks = {name: load_network(name) for name in nets}
    encoder = efficientnet.EfficientNetLite0Encoder()
    collections = {
        "genre": load_collection("genre", args.covers, "genre", split_by_label=False, limit=args.limit),
        "artist": load_collection("artist", args.artists, "artist", split_by_label=True, limit=args.limit),
    }
    for c in collections.values():
        for group in [*nets, "colour"]:
            keys = COLOUR_KEYS if group == "colour" else feature_keys(group)
            c.features.update(cached_features(c.paths, group, keys, networks, args.cache))

    if args.fit_style_pca:
        fit_style_pca(collections, args.fit_style_pca)
        return
    genre_features, artist_features = collections["genre"].features, collections["artist"].features
    OTHER_SET.update({id(genre_features): artist_features, id(artist_features): genre_features})

    # lite0 as sleeve builds it: the encoder's own vectors must be the cached mean of the last map, unit length.
    sample = collections["artist"].paths[:BATCH]
    own = encoder.encode_images(torch.from_numpy(np.stack([encoder.array_transform(load_cover(p)) for p in sample])))
    drift = float(np.abs(own - unit(collections["artist"].features["lite0.head_mean"][:BATCH])).max())
    assert drift < 1e-4, f"cached lite0 features differ from sleeve's encoder by {drift}"

    candidates = [Candidate("lite0", [("lite0 mean", 1.0)], note="sleeve's encoder today")]
    singles = ["lite0 GeM", "lite0 multi-layer GeM", "lite0 mid mean+std",
               *[p for p in PARTS if p.startswith("lite0 Gram")],
               "HSV 8x3x3 global+2x2", "HSV 8x3x3 3x3", "thumbnail 8x8 RGB"]
    if "lite2" in nets:
        singles += ["lite2 mean", "lite2 GeM", "lite2 multi-layer GeM", "lite2 mid mean+std",
                    *[p for p in PARTS if p.startswith("lite2 Gram") and "shipped" not in p]]
    candidates += [Candidate(p, [(p, 1.0)]) for p in singles]
    if "lite2" in nets:  # sleeve's encoder: its PCA fitted on halves A, its weight chosen on halves A
        style = f"lite2 Gram b{lite_style.GRAM_BLOCK} shipped PCA{PROJECTED}"
        candidates += [
            Candidate(style, [(style, 1.0)], note="PCA fitted once on halves A, shipped with sleeve"),
            Candidate(SHIPPED, [("lite2 multi-layer GeM", 1.0), (style, lite_style.STYLE_WEIGHT)],
                      note=f"sleeve's encoder: lite2 multi-layer GeM + {lite_style.STYLE_WEIGHT:g} x {style}"),
        ]
    for c in candidates:
        c.results = score(c, collections)
    reference = candidates[0].results

    # Concatenations: a content part, a style part and a colour part; weights by half A.
    def best_single(names: list[str]) -> str:
        single = {c.parts[0][0]: c for c in candidates if len(c.parts) == 1 and not c.whiten}
        return max(names, key=lambda n: objective(single[n].results, reference))

    weights = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
    for net, fitted in itertools.product(nets, (True, False)):
        content = best_single([f"{net} mean", f"{net} GeM", f"{net} multi-layer GeM"])
        styles = [n for n in singles if n.startswith((f"{net} mid", f"{net} Gram"))]
        if not fitted:  # what an index could use without fitting anything on its covers
            styles = [n for n in styles if PARTS[n][1] is not None]
        style = best_single(styles)
        if not fitted and style == best_single([n for n in singles if n.startswith((f"{net} mid", f"{net} Gram"))]):
            continue  # the fitted search already found an unfitted style
        colour = best_single(["HSV 8x3x3 global+2x2", "HSV 8x3x3 3x3", "thumbnail 8x8 RGB"])
        tried = []
        for ws, wc in itertools.product(weights, weights):
            c = Candidate("", [(content, 1.0), (style, ws), (colour, wc)])
            c.results = score(c, collections)
            tried.append(c)
        best = max(tried, key=lambda c: objective(c.results, reference))
        ws, wc = best.parts[1][1], best.parts[2][1]
        best.name = f"{content} + {ws:g} x {style} + {wc:g} x {colour}"
        best.note = f"weights chosen on half A among {len(tried)}"
        if not fitted:
            best.note += "; nothing fitted on the collection"
        candidates.append(best)

    # PCA-whitening fitted on the collection, on top of the best so far (by half A).
    base = max(candidates, key=lambda c: objective(c.results, reference))
    tried = []
    for dims, power in itertools.product((64, 128, 256, 512), (0.5, 0.25)):
        c = Candidate("", base.parts, whiten=(dims, power))
        c.results = score(c, collections)
        tried.append(c)
    best = max(tried, key=lambda c: objective(c.results, reference))
    best.name = f"{base.name}, whitened ({best.whiten[0]} dims, eigenvalue^-{best.whiten[1]:g})"
    best.note = f"whitening fitted on each collection; dims and power chosen on half A among {len(tried)}"
    candidates.append(best)
    plain = Candidate(f"lite0, whitened ({best.whiten[0]} dims, eigenvalue^-{best.whiten[1]:g})",
                      [("lite0 mean", 1.0)], whiten=best.whiten, note="the same whitening on today's vectors")
    plain.results = score(plain, collections)
    candidates.append(plain)

    speed_paths = [collections["genre"].paths[i] for i in
                   np.random.default_rng(0).permutation(len(collections["genre"].paths))[:args.speed_sample]]
    speeds = {}
    split = svm_split(collections["genre"]) if args.svm else None
    for c in candidates:
        key = tuple(sorted(c.needs()))
        if key not in speeds:
            speeds[key] = throughput(c, speed_paths, networks, encoder)
        c.results["speed"] = speeds[key]
        c.results["dims"] = candidate_matrix(c, collections["genre"].features).shape[1]
        if args.svm:
            g = collections["genre"]
            c.results["svm"] = svm_macro_f1(candidate_matrix(c, g.features), g, split, args.cache)

    lines = [
        f"# offline looks: precision@{K} by cosine, covers with the query's content left out; "
        f"{len(collections['genre'].paths)} genre covers, {len(collections['artist'].paths)} artist covers "
        f"({len(np.unique(collections['artist'].labels))} artists); {machine_line(machine)}",
        "",
        "| candidate | dims | same-genre P@10 | genre half A / B (covers) | same-artist P@10 | "
        "artist half A / B (artists) |" + (" SVM macro-F1 | SVM half A / B |" if args.svm else "")
        + " covers/s | notes |",
        "|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.svm else "") + "---:|---|",
    ]
    for c in candidates:
        g, a = c.results["genre"], c.results["artist"]
        svm = " {:.3f} | {:.3f} / {:.3f} |".format(*c.results["svm"]) if args.svm else ""
        lines.append(f"| {c.name} | {c.results['dims']} | {g[0]:.3f} | {g[1]:.3f} / {g[2]:.3f} | {a[0]:.3f} | "
                     f"{a[1]:.3f} / {a[2]:.3f} |{svm} {c.results['speed']:.0f} | {c.note} |")
    winners = [c for c in candidates[1:] if c.results["genre"][0] > reference["genre"][0]
               and c.results["artist"][0] > reference["artist"][0]
               and c.results["genre"][2] > reference["genre"][2] and c.results["artist"][2] > reference["artist"][2]
               and (not args.svm or c.results["svm"][0] > reference["svm"][0])]
    lines.append("")
    lines.append(f"lite0 drift check: sleeve's encoder vs the bench's pooled maps, max |difference| {drift:.1e}")
    if "lite2" in nets:
        lines.append(f"{SHIPPED} check: sleeve's encoder (torch, ONNX) vs the bench's rows of the same covers "
                     "(Gram cached as float16), lowest cosine " + ", ".join(
                         f"{cosine:.6f}" for cosine in shipped_agreement(collections["artist"], candidates)))
    also = " and on SVM macro-F1" if args.svm else ""
    lines.append(f"beat lite0 on both precisions, overall and on both halves B{also}: "
                 f"{', '.join(c.name for c in winners) or 'none'}")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
