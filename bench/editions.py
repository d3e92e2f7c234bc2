"""Editions benchmark: are edition families found, and are different albums of one artist kept apart?

There is no labelled edition set in ../shared, so families are made from real covers of
../shared/artist-covers with the changes editions have: re-encoded and resized, cropped 2-10%, a banner or a
sticker with words ("DELUXE EDITION", "REMASTERED"...) drawn on, colour and contrast shifted, a label logo
box in a corner, a scan rotated 1-3 degrees. Each of BASES_PER_ARTIST albums per artist gets EDITS edited
copies (kinds drawn at random, fixed seed); up to OTHER_ALBUMS other covers of each artist stay as they are,
the hard negatives (a subset of the 755: OCR time). One index of all of them is built with --read-text
(``--model``, efficientnet-lite0 unless told: the look thresholds are cosines of one family).

Thresholds are chosen on the families of half A of the artists (sorted names, every other one) and the
table reports half B. Pairs are counted within a half; a predicted pair is two covers in one group.
- pair precision / recall over pairs of covers; group precision: groups whose members are all one family;
  group recall: families found whole and alone; "same artist joined": the share of pairs of one artist and
  different albums put in one group.
- "hash alone": phash distance over every pair (imagededup's brute force); "look alone": look cosine over the
  FAISS neighbour pairs; "words alone": the words both ways (recsys.editions.pair_words' ``words_both``, the
  smaller containment: the larger joins every album that prints the artist's name alone) over the words
  neighbour pairs; "sleeve (default rules)": the rules of recsys.editions over its candidates at the
  defaults of the index's family (recsys.editions.FAMILY_RULES); "sleeve (rules chosen on half A)": the
  same rules with the thresholds chosen by pair F1 on half A and, among rules that tie (half A's families
  are often all found), by the F1 of the joined pairs themselves before groups are formed (more true pairs
  joined directly: a family held by more than one link).

    python bench/editions.py --work /tmp/editions-bench
    python bench/editions.py --work /tmp/editions-lite2 --model efficientnet-lite2-style
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import describe_machine, machine_line  # noqa: E402
from index.store import load_index, shown_name  # noqa: E402
from recsys import editions  # noqa: E402
from recsys.build import build_index  # noqa: E402
from recsys.settings import Settings  # noqa: E402
from recsys.textstore import texts_by_row  # noqa: E402

ARTIST_COVERS = Path(__file__).resolve().parents[2] / "shared" / "artist-covers"
BASES_PER_ARTIST = 1
OTHER_ALBUMS = 4
"""Each artist's other covers kept as hard negatives: OCR reads ~1 cover a second on 2 busy cores, so the
collection is cut to what fits a run of ten minutes."""
EDITS = 4
BANNERS = ("DELUXE EDITION", "REMASTERED", "40TH ANNIVERSARY", "EXPANDED EDITION", "LIMITED EDITION")
LABELS = ("EMI", "Sony Music", "Polydor", "Columbia")
KINDS = ("reencode", "crop", "banner", "sticker", "colour", "label", "rotate")


def reencode(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Down to 60-90% and back up, through a JPEG of quality 40-75: another shop's scan of the same print."""
    size = image.size
    small = image.resize([max(32, int(side * rng.uniform(0.6, 0.9))) for side in size], Image.BICUBIC)
    from io import BytesIO

    buffer = BytesIO()
    small.save(buffer, "JPEG", quality=int(rng.integers(40, 76)))
    return Image.open(BytesIO(buffer.getvalue())).convert("RGB").resize(size, Image.BICUBIC)


def crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    width, height = image.size
    share = rng.uniform(0.02, 0.10)
    left, top = int(width * share * rng.uniform()), int(height * share * rng.uniform())
    right, bottom = width - int(width * share) + left, height - int(height * share) + top
    return image.crop((left, top, right, bottom)).resize(image.size, Image.BICUBIC)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def banner(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A band across the top or bottom with an edition's words."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    width, height = out.size
    band = int(height * 0.12)
    top = 0 if rng.uniform() < 0.5 else height - band
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    draw.rectangle([0, top, width, top + band], fill=colour)
    ink = (255, 255, 255) if sum(colour) < 380 else (0, 0, 0)
    text = str(rng.choice(BANNERS))
    draw.text((width / 2, top + band / 2), text, fill=ink, font=_font(int(band * 0.7)), anchor="mm")
    return out


def sticker(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A round sticker in a corner saying what the reissue adds."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    width, height = out.size
    radius = int(width * 0.14)
    x = radius + 4 if rng.uniform() < 0.5 else width - radius - 4
    y = radius + 4 if rng.uniform() < 0.5 else height - radius - 4
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(230, 30, 40))
    draw.text((x, y), str(rng.choice(("REMASTERED", "BONUS\nTRACKS", "DELUXE"))), fill=(255, 255, 255),
              font=_font(int(radius * 0.38)), anchor="mm", align="center")
    return out


def colour(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Another print: colour saturation, contrast and brightness shifted."""
    out = ImageEnhance.Color(image).enhance(rng.uniform(0.5, 1.5))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.7, 1.3))
    return ImageEnhance.Brightness(out).enhance(rng.uniform(0.8, 1.2))


def label(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Another label's logo box in a corner."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    width, height = out.size
    box = int(width * 0.16)
    x = 3 if rng.uniform() < 0.5 else width - box - 3
    draw.rectangle([x, height - box // 2 - 3, x + box, height - 3], fill=(250, 250, 250), outline=(0, 0, 0))
    draw.text((x + box / 2, height - box / 4 - 3), str(rng.choice(LABELS)), fill=(0, 0, 0),
              font=_font(max(8, box // 5)), anchor="mm")
    return out


def rotate(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A scan 1-3 degrees askew, the corners filled with the scanner's white."""
    angle = rng.uniform(1, 3) * rng.choice((-1, 1))
    return image.rotate(angle, resample=Image.BICUBIC, fillcolor=(245, 245, 245))


EDITORS = {"reencode": reencode, "crop": crop, "banner": banner, "sticker": sticker, "colour": colour,
           "label": label, "rotate": rotate}


def make_collection(work: Path, seed: int = 0) -> pd.DataFrame:
    """Up to BASES_PER_ARTIST + OTHER_ALBUMS real covers per artist plus EDITS edited copies of BASES_PER_ARTIST albums per artist, as a manifest
    (path, genre, artist, album, family, kind) written to work/manifest.csv."""
    table = pd.read_csv(ARTIST_COVERS / "MANIFEST.csv")
    table["path"] = [str(ARTIST_COVERS / p) for p in table["path"]]
    table = table[["path", "genre", "artist", "album"]].assign(family=-1, kind="original")
    table = table.sort_values("path").groupby("artist").head(BASES_PER_ARTIST + OTHER_ALBUMS)
    rng = np.random.default_rng(seed)
    bases = table.groupby("artist").head(BASES_PER_ARTIST)
    copies = []
    (work / "edits").mkdir(parents=True, exist_ok=True)
    for family, (row, base) in enumerate(bases.iterrows()):
        table.loc[row, "family"] = family
        image = Image.open(base["path"]).convert("RGB")
        for kind in rng.choice(KINDS, size=EDITS, replace=False):
            target = work / "edits" / f"{family:03d}-{kind}.jpg"
            EDITORS[str(kind)](image, rng).save(target, quality=92)
            copies.append({**base.to_dict(), "path": str(target), "family": family, "kind": str(kind)})
    collection = pd.concat([table, pd.DataFrame(copies)], ignore_index=True)
    collection.to_csv(work / "manifest.csv", index=False)
    return collection


def truth_of(metadata: pd.DataFrame) -> np.ndarray:
    """A family per row: the edit family, else a family of its own (-row - 1), pixel-identical rows sharing one."""
    family = metadata["family"].to_numpy().astype(np.int64)
    own = -np.arange(len(family)) - 1
    family = np.where(family >= 0, family, own)
    first = pd.Series(np.arange(len(family))).groupby(metadata["content_hash"].to_numpy()).transform("min")
    return np.where(family >= 0, family, own[first.to_numpy()])


def evaluate(rows: np.ndarray, pairs: np.ndarray, metadata: pd.DataFrame, truth: np.ndarray) -> dict[str, float]:
    """Scores of the groups made by joining ``pairs`` (row pairs), counted over ``rows`` (one half)."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    inside = np.isin(pairs[:, 0], rows) & np.isin(pairs[:, 1], rows) if len(pairs) else np.zeros(0, bool)
    pairs = pairs[inside]
    count = len(metadata)
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    labels, family = labels[rows], truth[rows]
    artist = metadata["artist"].str.lower().to_numpy()[rows]
    album = metadata["album"].str.lower().to_numpy()[rows]

    def same(values: np.ndarray) -> np.ndarray:
        return values[:, None] == values[None, :]

    upper = np.triu(np.ones((len(rows), len(rows)), bool), 1)
    predicted, actual = same(labels) & upper, same(family) & upper
    hard = same(artist) & ~same(album) & upper & ~actual
    hits = int((predicted & actual).sum())
    groups = pd.DataFrame({"group": labels, "family": family})
    sizes = groups.groupby("group")["family"].agg(["size", "nunique"])
    found = sizes[sizes["size"] > 1]
    families = groups.groupby("family")["group"].agg(["size", "nunique", "first"])
    real = families[families["size"] > 1]
    whole = [f for f, r in real.iterrows() if r["nunique"] == 1 and sizes.loc[r["first"], "size"] == r["size"]]
    return {
        "pair precision": hits / max(1, int(predicted.sum())),
        "pair recall": hits / max(1, int(actual.sum())),
        "group precision": float((found["nunique"] == 1).mean()) if len(found) else 0.0,
        "group recall": len(whole) / max(1, len(real)),
        "same artist joined": float((predicted & hard).sum() / max(1, hard.sum())),
    }


def all_pairs(rows: np.ndarray) -> np.ndarray:
    return np.array(list(itertools.combinations(np.sort(rows), 2)), dtype=np.int64)


def f1(scores: dict[str, float]) -> float:
    p, r = scores["pair precision"], scores["pair recall"]
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def best_threshold(values: np.ndarray, pairs: np.ndarray, grid: np.ndarray, above: bool, judge) -> tuple:
    """The grid value whose joined pairs score the best pair F1 on half A."""
    results = [(f1(judge(pairs[values >= t] if above else pairs[(values <= t) & (values >= 0)])), t) for t in grid]
    return max(results)[1]


def index_family(index: Path) -> str | None:
    """The encoder family ``index`` was built with, None where no index is there yet."""
    record = index / "index.json"
    return json.loads(record.read_text())["model"]["family"] if record.is_file() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="folder for the edited covers, index and cache")
    parser.add_argument("--model", default="efficientnet-lite0", help="encoder family of the index built here")
    args = parser.parse_args()
    work = args.work
    if not (work / "manifest.csv").is_file():
        make_collection(work)
    settings = Settings(cache_dir=work / "cache", progress=False)
    family = index_family(work / "index")
    if family is None:
        started = time.perf_counter()
        build_index(work / "index", manifest=work / "manifest.csv", encoder=args.model, read_text=True,
                    settings=settings)
        print(f"index built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    elif family != args.model:
        parser.error(f"{work / 'index'} holds {family} vectors, not {args.model}: use another --work")
    index = load_index(work / "index")
    metadata = index.metadata.rename(columns=shown_name)
    truth = truth_of(metadata)

    started = time.perf_counter()
    texts = texts_by_row(index)
    model = editions.words_model_of(index, texts)
    candidates = editions.candidate_pairs(index, editions.NEIGHBOURS, model)
    hashes = editions.perceptual_hashes(index.metadata, work / "cache")
    signals = editions.pair_signals(index, candidates, hashes, texts)
    seconds = time.perf_counter() - started

    artists = sorted(metadata["artist"].str.lower().unique())
    halves = {"A": set(artists[0::2]), "B": set(artists[1::2])}
    rows = {half: np.flatnonzero(metadata["artist"].str.lower().isin(names)) for half, names in halves.items()}
    judge = {half: (lambda pairs, h=half: evaluate(rows[h], pairs, metadata, truth)) for half in halves}

    phash = hashes["phash"].to_numpy()
    brute = {half: all_pairs(rows[half]) for half in halves}
    brute_distance = {h: editions.hash_distance(phash[p[:, 0]], phash[p[:, 1]]) for h, p in brute.items()}
    look_pairs = editions.candidate_pairs(index, editions.NEIGHBOURS)
    look_values = np.einsum("ij,ij->i", *(np.asarray(index.embeddings)[look_pairs[:, i]] for i in (0, 1)))
    words_pairs = np.unique(np.sort(editions._words_neighbours(model, editions.NEIGHBOURS), axis=1), axis=0)
    words_pairs = words_pairs[words_pairs[:, 0] != words_pairs[:, 1]]
    words_values = editions.pair_words(texts, words_pairs)["words_both"]
    words_values = np.nan_to_num(words_values, nan=-1.0)

    chosen = {
        "hash alone (phash distance <=)": best_threshold(brute_distance["A"], brute["A"], np.arange(0, 33, 2),
                                                          False, judge["A"]),
        "look alone (cosine >=)": best_threshold(look_values, look_pairs, np.arange(0.70, 1.0, 0.02), True,
                                                 judge["A"]),
        "words alone (both ways >=)": best_threshold(words_values, words_pairs, np.arange(0.3, 1.0, 0.05), True,
                                                      judge["A"]),
    }
    pairs_of = {
        "hash alone (phash distance <=)": lambda t, h: brute[h][(brute_distance[h] <= t) & (brute_distance[h] >= 0)],
        "look alone (cosine >=)": lambda t, h: look_pairs[look_values >= t],
        "words alone (both ways >=)": lambda t, h: words_pairs[words_values >= t],
    }
    chosen_rules = choose_rules(signals, judge["A"], truth, rows["A"])
    rules = {"default rules": editions.default_rules(index.info.model), "rules chosen on half A": chosen_rules}
    joined = {name: signals[pd.notna(editions.join_reasons(signals, r))][["a", "b"]].to_numpy()
              for name, r in rules.items() if r is not None}

    print(f"# {machine_line(describe_machine())}")
    print(f"encoder: {index.info.model_key}")
    print(f"collection: {len(metadata)} covers ({int((metadata['kind'] != 'original').sum())} edited copies in "
          f"{int(pd.to_numeric(metadata['family']).max()) + 1} families), {len(candidates)} candidate pairs; signals in "
          f"{seconds:.1f} s (hashes and words model included)")
    print(f"sleeve default rules of {index.info.model['family']}: {rules['default rules']}")
    print(f"sleeve rules chosen on half A: {chosen_rules or 'none of RULE_GRID joins at most 2% same-artist pairs'}")
    print()
    header = ["signal", "threshold (half A)", "half", "pair precision", "pair recall", "group precision",
              "group recall", "same artist joined"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for half in ("A", "B"):
        for name, threshold in chosen.items():
            _row(name, f"{threshold:.2f}", half, judge[half](pairs_of[name](threshold, half)))
        for name, pairs in joined.items():
            _row(f"sleeve ({name})", "see above" if "chosen" in name else "defaults", half, judge[half](pairs))
    kinds = metadata["kind"].to_numpy()
    missed = [kinds[r] for r in rows["B"] if kinds[r] != "original"]
    print(f"\nedit kinds in half B: {pd.Series(missed).value_counts().to_dict()}")


def _row(name: str, threshold: str, half: str, scores: dict[str, float]) -> None:
    print(f"| {name} | {threshold} | {half} | " + " | ".join(f"{v:.3f}" for v in scores.values()) + " |")


RULE_GRID = (
    (6, 10, 14),                                 # hash_distance
    (0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95),  # look_near
    (0.90, 0.92, 0.94, 0.96, 0.98),              # look_alone
    (0.80, 0.85, 0.90, 0.95, 0.97),              # look_same
    (0.6, 0.7),                                  # words_same
    (0.7, 0.8),                                  # words_strict
    (0.75, 0.80, 0.85, 0.90, 0.93, 0.96),        # look_floor
)
"""The thresholds tried, in EditionRules' order. The look thresholds reach above lite0's defaults because
another encoder family puts the same pairs at other cosines (efficientnet-lite2-style's are higher), and past
each value efficientnet-lite2-style chose at an edge of a narrower grid. Rules that tie on both scores keep
the first in this order, so a look_near at the grid's low edge can mean only that half A cannot tell it from
higher ones (docs/editions.md)."""


def choose_rules(signals: pd.DataFrame, judge, truth: np.ndarray, rows: np.ndarray) -> editions.EditionRules | None:
    """The rules of RULE_GRID with the best pair F1 on half A (``rows``), among those joining at most 2% of
    same-artist different-album pairs (None where no rule does); ties broken by the F1 of the joined pairs
    themselves (see the module's docstring)."""
    inside = signals[np.isin(signals["a"], rows) & np.isin(signals["b"], rows)]
    true = truth[inside["a"]] == truth[inside["b"]]
    best: tuple[tuple[float, float], editions.EditionRules | None] = ((-1.0, -1.0), None)
    for values in itertools.product(*RULE_GRID):
        rules = editions.EditionRules(*values)
        joined = pd.notna(editions.join_reasons(inside, rules))
        scores = judge(inside[joined][["a", "b"]].to_numpy())
        direct = 2 * int((joined & true).sum()) / max(1, int(joined.sum()) + int(true.sum()))
        if scores["same artist joined"] <= 0.02 and (f1(scores), direct) > best[0]:
            best = ((f1(scores), direct), rules)
    return best[1]


if __name__ == "__main__":
    main()
