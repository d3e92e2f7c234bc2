"""Editions and duplicates: groups of covers that are one release (re-scans, re-crops, reissues with a banner or
sticker, recoloured prints), found from the look, perceptual hashes and the printed words together.

Only candidate pairs are compared, never all pairs: each cover's nearest covers by look (the index's FAISS
index), the covers it shares content with, and, when the index holds cover text, the covers that share most of
its words (sparse products of the words model, recsys.textsearch). Each candidate pair gets four signals
(pixel-identical, perceptual-hash distance, look cosine, how much of one's printed lines the other holds),
:class:`EditionRules` joins it with a reason or not, and the groups are the connected components of the
joined pairs. The look thresholds are cosines of one encoder family, so each family has its own default
rules (FAMILY_RULES, looked up from the model the index names), chosen on half of the artists of
bench/editions.py and checked on the other half (docs/editions.md).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from index.atomic import atomic_path, write_json
from index.errors import SleeveError
from index.store import CoverIndex, load_index
from recsys import textsearch
from recsys.cache import default_cache_dir, writing_in
from recsys.images import BadImageError, load_cover
from recsys.textstore import texts_by_row

log = logging.getLogger(__name__)

NEIGHBOURS = 10
"""Candidates per cover from the look index and from the words: an edition family larger than this is still
found whole, as each member links to some of the others and groups are connected components."""
HASH_BITS = 64
HASHES_FILE = "perceptual-hashes.parquet"
"""Perceptual hashes by content hash in the cache folder: a cover is hashed once, whatever index holds it."""
REASONS = (
    "pixel-identical",
    "near-identical look",
    "same look and same words (banner or sticker added)",
    "same words, recoloured or cropped picture",
)
DISMISSED_FILE = "editions-dismissed.json"
"""Groups a person said are not one release, in the index folder, keyed by their members' content hashes (so the
choice survives a rebuild, and a group that gains a new member is shown again for review)."""
SIGNAL_COLUMNS = ["a", "b", "identical", "hash_distance", "look", "words", "words_both"]
LINE_MATCH = 0.5
"""A printed line is found in another cover when its best fuzzy ratio (0-1) reaches this; below, it counts 0."""
GROUP_COLUMNS = ["group", "id", "path", "reason", "score"]


@dataclasses.dataclass(frozen=True)
class EditionRules:
    """When a candidate pair is one release; a pair is tried against the rules in REASONS' order.

    - near-identical look: look >= ``look_alone``, or phash distance <= ``hash_distance`` bits of 64 and look
      >= ``look_near`` (a crop or a rotated scan moves the hash more than the look);
    - same look and same words: look >= ``look_same`` and ``words`` (the larger containment, which a banner or
      sticker does not lower) >= ``words_same``;
    - same words, recoloured or cropped: ``words_both`` (the smaller containment: neither cover prints much
      the other lacks, so an artist's name alone is not enough) >= ``words_strict`` and look >= ``look_floor``.
    The words only add evidence, never veto a look match: OCR of a banner copy may read only the banner, and a
    veto (words below 0.3 or 0.5 where both covers print 12 or 20 letters) changed no group on half A of
    bench/editions.py while at 0.5 it refused true pairs (docs/editions.md).
    The words rules apply only where both covers carry a readable line.
    """

    hash_distance: int = 14
    look_near: float = 0.85
    look_alone: float = 0.90
    look_same: float = 0.85
    words_same: float = 0.60
    words_strict: float = 0.80
    look_floor: float = 0.75


MEASURED_FAMILY = "efficientnet-lite0"
"""The family EditionRules' own defaults were chosen for; families without rules of their own get them."""
FAMILY_RULES: dict[str, EditionRules] = {
    MEASURED_FAMILY: EditionRules(),
    "efficientnet-lite2-style": EditionRules(
        hash_distance=10, look_near=0.80, look_alone=0.96, look_same=0.95, words_same=0.60, words_strict=0.70,
        look_floor=0.93,
    ),
}
"""The default rules of each encoder family, chosen on half A of bench/editions.py with that family's vectors
(docs/editions.md): efficientnet-lite2-style puts different covers at higher cosines (lite0's rules join 7.9%
of one artist's different albums there), so most of its look thresholds are higher. Half A cannot choose its
look_near: 0.65 to 0.90 join the same pairs on both halves, and 0.90 parts real reissues on the 4,450 shared
covers that 0.65-0.80 join, so it keeps 0.80."""


def default_rules(model: Mapping[str, Any]) -> EditionRules:
    """The default rules for vectors of ``model`` (an index's ``info.model``, a ModelSpec as a dict): its
    family's FAMILY_RULES, else MEASURED_FAMILY's with a warning, as their cosines may mean otherwise there."""
    family = str(model.get("family", ""))
    if family in FAMILY_RULES:
        return FAMILY_RULES[family]
    log.warning("no edition rules were measured for %s vectors: using the defaults measured on %s, whose look "
                "thresholds may be loose or strict for this model (adjust them with --threshold)",
                family or "this model's", MEASURED_FAMILY)
    return FAMILY_RULES[MEASURED_FAMILY]


def find_editions(
    index: CoverIndex,
    rules: EditionRules | None = None,
    neighbours: int = NEIGHBOURS,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The edition groups of ``index``: one row per member (group, id, path, reason, score), group 1 the
    largest. ``reason`` is the strongest reason that joined the member, ``score`` that link's score (see
    :func:`pair_scores`). Covers in no group are not listed. ``rules`` default to the index's family's
    (:func:`default_rules`). Without cover text, only look and hashes are used (and a warning says how to add
    the words)."""
    rules = default_rules(index.info.model) if rules is None else rules
    texts = texts_by_row(index)
    if texts is None:
        log.warning("the index in %s holds no cover text: editions are grouped by look and hashes only; add "
                    "the words with: python cli.py build-index --read-text --index %s", index.folder, index.folder)
    model = None if texts is None else words_model_of(index, texts)
    pairs = candidate_pairs(index, neighbours, model)
    hashes = perceptual_hashes(index.metadata, cache_dir)
    signals = pair_signals(index, pairs, hashes, texts)
    return group_editions(index.metadata, signals, join_reasons(signals, rules))


def words_model_of(index: CoverIndex, texts: np.ndarray) -> textsearch.TextModel:
    """The words model the index stores, or one fitted on its texts (an index built before sleeve stored it)."""
    if index.words is not None:
        return textsearch.model_from_arrays(index.words)
    return textsearch.fit_text_vectors([str(text) for text in texts])


def candidate_pairs(
    index: CoverIndex, neighbours: int = NEIGHBOURS, model: textsearch.TextModel | None = None
) -> np.ndarray:
    """Pairs (a < b, unique, shape (P, 2)) worth comparing: each cover's ``neighbours`` nearest by look, covers
    of one content hash, and with a words ``model`` each cover's ``neighbours`` best by shared words."""
    count = index.info.count
    found = [_look_neighbours(index, neighbours), _same_content(index.metadata)]
    if model is not None:
        found.append(_words_neighbours(model, neighbours))
    pairs = np.concatenate([np.sort(p, axis=1) for p in found if len(p)] or [np.empty((0, 2), np.int64)])
    pairs = pairs[(pairs[:, 0] != pairs[:, 1]) & (pairs.min(axis=1) >= 0) & (pairs.max(axis=1) < count)]
    return np.unique(pairs, axis=0)


def _look_neighbours(index: CoverIndex, neighbours: int) -> np.ndarray:
    k = min(neighbours + 1, index.info.count)
    vectors = np.ascontiguousarray(index.embeddings, dtype=np.float32)
    _, found = index.faiss_index.search(vectors, k)
    return np.column_stack([np.repeat(np.arange(len(found)), k), found.ravel()]).astype(np.int64)


def _same_content(metadata: pd.DataFrame) -> np.ndarray:
    """Each cover linked to the first cover of its content hash (enough for the groups to hold them all)."""
    hashes = metadata["content_hash"].astype(str).to_numpy()
    first = pd.Series(np.arange(len(hashes))).groupby(hashes).transform("min").to_numpy()
    rows = np.flatnonzero(first != np.arange(len(hashes)))
    return np.column_stack([first[rows], rows]).astype(np.int64)


def _words_neighbours(model: textsearch.TextModel, neighbours: int, chunk: int = 512) -> np.ndarray:
    """Each cover's best covers by the cosine of whole texts, from sparse products (only covers that share
    letter groups are ever compared)."""
    covers = model.covers
    heads, tails = [], []
    for start in range(0, covers.shape[0], chunk):
        products = (covers[start : start + chunk] @ covers.T).tocsr()
        for offset in range(products.shape[0]):
            row = products[offset]
            if row.nnz == 0:
                continue
            best = row.indices[np.argsort(-row.data, kind="stable")[: neighbours + 1]]
            heads.append(np.full(len(best), start + offset))
            tails.append(best)
    if not heads:
        return np.empty((0, 2), np.int64)
    return np.column_stack([np.concatenate(heads), np.concatenate(tails)]).astype(np.int64)


def perceptual_hashes(metadata: pd.DataFrame, cache_dir: str | Path | None = None) -> pd.DataFrame:
    """phash and dhash (64-bit, as int64) of each row's cover, one row per metadata row; computed once per
    content hash and kept in the cache folder (HASHES_FILE). A cover that cannot be read has hash -1 (and is
    hashed again next time), and its pairs are judged without hashes."""
    folder = Path(cache_dir or default_cache_dir())
    target = folder / HASHES_FILE
    with writing_in(folder):
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(folder / f".{HASHES_FILE}.lock"):
            empty = pd.DataFrame(columns=["content_hash", "phash", "dhash"])
            known = pd.read_parquet(target) if target.is_file() else empty
            wanted = metadata.drop_duplicates("content_hash")
            missing = wanted[~wanted["content_hash"].isin(known["content_hash"])]
            new = _hash_files(missing)
            if len(new):
                known = pd.concat([known, new[new["phash"] != -1]], ignore_index=True)
                with atomic_path(target) as temporary:
                    known.to_parquet(temporary, index=False)
    unreadable = int((new["phash"] == -1).sum()) if len(new) else 0
    if unreadable:
        log.warning("%d cover file(s) could not be read for perceptual hashes (moved or deleted?); their pairs "
                    "are judged by look and words", unreadable)
    by_hash = known.set_index("content_hash")
    found = by_hash.reindex(metadata["content_hash"])
    return pd.DataFrame({
        "phash": found["phash"].fillna(-1).astype(np.int64).to_numpy(),
        "dhash": found["dhash"].fillna(-1).astype(np.int64).to_numpy(),
    })


def _hash_files(files: pd.DataFrame) -> pd.DataFrame:
    import imagehash

    rows = []
    for path, content_hash in zip(files["path"], files["content_hash"]):
        try:
            image = load_cover(str(path))
        except BadImageError:
            rows.append((content_hash, -1, -1))
            continue
        rows.append((content_hash, _as_int(imagehash.phash(image)), _as_int(imagehash.dhash(image))))
    return pd.DataFrame(rows, columns=["content_hash", "phash", "dhash"])


def _as_int(image_hash: object) -> int:
    """A 64-bit ImageHash as a signed int64 (its bits unchanged)."""
    value = int(str(image_hash), 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def hash_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Differing bits of two arrays of 64-bit hashes; -1 where either is unknown (-1)."""
    bits = np.bitwise_count(np.bitwise_xor(first, second).view(np.uint64)).astype(np.int64)
    return np.where((first == -1) | (second == -1), -1, bits)


def pair_signals(
    index: CoverIndex, pairs: np.ndarray, hashes: pd.DataFrame, texts: np.ndarray | None = None
) -> pd.DataFrame:
    """The signals of each candidate pair (SIGNAL_COLUMNS): identical content, phash distance (-1 unknown),
    look cosine, and the words of :func:`pair_words` (NaN where either cover has no readable line)."""
    a, b = pairs[:, 0], pairs[:, 1]
    content = index.metadata["content_hash"].astype(str).to_numpy()
    vectors = np.asarray(index.embeddings, dtype=np.float32)
    look = np.einsum("ij,ij->i", vectors[a], vectors[b]) if len(pairs) else np.empty(0, np.float32)
    phash = hashes["phash"].to_numpy()
    words = pair_words(texts if texts is not None else np.full(index.info.count, "", dtype=object), pairs)
    return pd.DataFrame({
        "a": a, "b": b, "identical": content[a] == content[b], "hash_distance": hash_distance(phash[a], phash[b]),
        "look": look.astype(np.float64), **words,
    })


def cover_lines(text: str) -> list[str]:
    """The normalised printed lines of a cover text that can say two covers share words (at least
    textsearch.MIN_LINE_CHARS letters and digits: "CD" or a stray "W'" says nothing)."""
    lines = (textsearch.normalise(line) for line in str(text).splitlines())
    return [line for line in lines if len(line) >= textsearch.MIN_LINE_CHARS]


def containment(lines: Sequence[str], other: Sequence[str]) -> float:
    """The share of ``lines`` (by letters) found in ``other``, fuzzily: each line scores its best
    rapidfuzz ratio with a line of ``other`` or two adjacent ones joined (OCR splits a name over two lines),
    and 0 below LINE_MATCH (unrelated strings of similar letters score about 0.3). OCR of a re-encoded or
    cropped copy misreads letters ("SEPULTURA", "SEPLATURA"), which lowers a line's score without dropping it."""
    from rapidfuzz import fuzz, process

    if not lines or not other:
        return float("nan")
    targets = [*other, *(first + second for first, second in zip(other, other[1:]))]
    best = process.cdist(list(lines), targets, scorer=fuzz.ratio).max(axis=1) / 100
    weights = np.array([len(line) for line in lines], dtype=np.float64)
    return float((np.where(best >= LINE_MATCH, best, 0.0) * weights).sum() / weights.sum())


def pair_words(texts: np.ndarray, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """The words of each pair (a, b) of rows of ``texts``: ``words``, the larger of the two containments (a in
    b, b in a), so that a banner or sticker that adds lines keeps the original's wholly found; ``words_both``,
    the smaller, high only where neither cover prints much the other lacks. NaN where either has no line."""
    lines = [cover_lines(text) for text in texts]
    either, both = np.full(len(pairs), np.nan), np.full(len(pairs), np.nan)
    for n, (a, b) in enumerate(pairs):
        if lines[a] and lines[b]:
            forward, backward = containment(lines[a], lines[b]), containment(lines[b], lines[a])
            either[n], both[n] = max(forward, backward), min(forward, backward)
    return {"words": either, "words_both": both}


def pair_scores(signals: pd.DataFrame) -> np.ndarray:
    """How sure a pair is, in [0, 1]: 1 for identical content, else the mean of the signals it has (look
    cosine, hash similarity 1 - distance / 32 floored at 0, words similarity)."""
    hash_similarity = np.where(signals["hash_distance"] >= 0, np.clip(1 - signals["hash_distance"] / 32, 0, 1), np.nan)
    stacked = np.column_stack([signals["look"], hash_similarity, signals["words"]]).astype(np.float64)
    return np.where(signals["identical"], 1.0, np.nanmean(stacked, axis=1))


def join_reasons(signals: pd.DataFrame, rules: EditionRules = EditionRules()) -> np.ndarray:
    """The reason each pair is one release (one of REASONS), or None where no rule joins it."""
    look, distance = signals["look"], signals["hash_distance"]
    words, both = signals["words"].fillna(-1), signals["words_both"].fillna(-1)
    near_hash = (distance >= 0) & (distance <= rules.hash_distance)
    conditions = [
        signals["identical"],
        (look >= rules.look_alone) | (near_hash & (look >= rules.look_near)),
        (look >= rules.look_same) & (words >= rules.words_same),
        (both >= rules.words_strict) & (look >= rules.look_floor),
    ]
    return np.select([np.asarray(c, dtype=bool) for c in conditions], list(REASONS), default=None).astype(object)


def group_editions(metadata: pd.DataFrame, signals: pd.DataFrame, reasons: np.ndarray) -> pd.DataFrame:
    """Connected components of the joined pairs as GROUP_COLUMNS rows (group 1 the largest, then by first
    row); each member's reason and score are those of its best-scored joined pair."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    joined = signals[pd.notna(reasons)].assign(reason=reasons[pd.notna(reasons)])
    joined = joined.assign(score=pair_scores(joined)) if len(joined) else joined.assign(score=[])
    if joined.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    count = len(metadata)
    graph = sparse.coo_matrix((np.ones(len(joined)), (joined["a"], joined["b"])), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    ends = pd.concat([
        joined[["a", "reason", "score"]].rename(columns={"a": "row"}),
        joined[["b", "reason", "score"]].rename(columns={"b": "row"}),
    ])
    best = ends.sort_values("score", ascending=False, kind="stable").drop_duplicates("row").set_index("row")
    members = best.reset_index().assign(component=lambda frame: labels[frame["row"]])
    by_component = members.groupby("component")["row"]
    members = members.assign(size=by_component.transform("size"), first=by_component.transform("min"))
    members = members.sort_values(["size", "first", "row"], ascending=[False, True, True], kind="stable")
    number = {component: n + 1 for n, component in enumerate(pd.unique(members["component"]))}
    return pd.DataFrame({
        "group": members["component"].map(number).to_numpy(),
        "id": metadata["id"].to_numpy()[members["row"]],
        "path": metadata["path"].to_numpy()[members["row"]],
        "reason": members["reason"].to_numpy(),
        "score": np.round(members["score"].to_numpy(dtype=float), 3),
    })


class EditionRulesError(SleeveError):
    """A --threshold that names no rule or gives no number."""


def rules_from(settings: Sequence[str], base: EditionRules = EditionRules()) -> EditionRules:
    """``base`` with ``NAME=VALUE`` settings (``look_same=0.9``) applied, as --threshold gives them."""
    fields = {field.name: field.type for field in dataclasses.fields(EditionRules)}
    changes: dict[str, float] = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        name = name.strip().replace("-", "_")
        if name not in fields:
            raise EditionRulesError(f"--threshold {setting}: no rule named {name!r}; use one of {', '.join(fields)}")
        try:
            changes[name] = int(value) if fields[name] in (int, "int") else float(value)
        except ValueError:
            raise EditionRulesError(f"--threshold {setting}: {value!r} is not a number") from None
    return dataclasses.replace(base, **changes)


def editions_of(
    index_dir: str | Path, thresholds: Sequence[str] = (), neighbours: int = NEIGHBOURS,
    cache_dir: str | Path | None = None,
) -> pd.DataFrame:
    """find_editions on the index in ``index_dir`` with its family's default rules changed by ``thresholds``
    (NAME=VALUE, see :func:`rules_from`), less the groups dismissed: what ``python cli.py editions`` prints."""
    index = load_index(index_dir)
    rules = rules_from(thresholds, default_rules(index.info.model))
    return without_dismissed(index, find_editions(index, rules, neighbours, cache_dir))


def as_records(groups: pd.DataFrame) -> list[dict[str, object]]:
    """The groups as JSON-ready records: group, score (its members' mean) and members (id, path, reason, score)."""
    return [
        {
            "group": int(number),
            "score": round(float(members["score"].mean()), 3),
            "members": members[["id", "path", "reason", "score"]].to_dict(orient="records"),
        }
        for number, members in groups.groupby("group", sort=True)
    ]


def group_key(content_hashes: Iterable[str]) -> str:
    """The key of a group in DISMISSED_FILE: its members' distinct content hashes, sorted, space-separated."""
    return " ".join(sorted(set(map(str, content_hashes))))


def member_hashes(index: CoverIndex, groups: pd.DataFrame) -> pd.Series:
    """The content hash of each row of ``groups`` (found by the members' ids)."""
    rows = pd.Index(index.metadata["id"]).get_indexer(groups["id"])
    return pd.Series(index.metadata["content_hash"].astype(str).to_numpy()[rows], index=groups.index)


def group_keys(index: CoverIndex, groups: pd.DataFrame) -> pd.Series:
    """Each row's group key (see :func:`group_key`)."""
    hashes = member_hashes(index, groups)
    return hashes.groupby(groups["group"]).transform(group_key)


def dismissed_keys(index_dir: str | Path | None) -> set[str]:
    """The keys of the groups dismissed in ``index_dir`` (none when the file is missing, or for an index in
    memory, which has no folder)."""
    target = Path(index_dir or ".") / DISMISSED_FILE
    if index_dir is None or not target.is_file():
        return set()
    return set(json.loads(target.read_text()))


def dismiss(index: CoverIndex, groups: pd.DataFrame, number: int) -> str:
    """Remember group ``number`` of ``groups`` as not one release, in the index folder (written atomically,
    under a lock so two app sessions cannot lose each other's choice); returns its key. Each entry keeps the
    members' paths, for a person reading the file."""
    members = groups[groups["group"] == number]
    if members.empty:
        raise SleeveError(f"there is no edition group {number}")
    if index.folder is None:
        raise SleeveError("an index in memory has no folder to remember a dismissed group in; save it first")
    key = group_key(member_hashes(index, members))
    target = Path(index.folder) / DISMISSED_FILE
    with FileLock(target.parent / f".{DISMISSED_FILE}.lock"):
        known = json.loads(target.read_text()) if target.is_file() else {}
        known[key] = sorted(map(str, members["path"]))
        write_json(target, known)
    return key


def without_dismissed(index: CoverIndex, groups: pd.DataFrame) -> pd.DataFrame:
    """``groups`` less the groups dismissed in the index folder (numbers unchanged)."""
    dismissed = dismissed_keys(index.folder)
    if not dismissed or groups.empty:
        return groups
    return groups[~group_keys(index, groups).isin(dismissed)]


def group_of_rows(index: CoverIndex, groups: pd.DataFrame) -> np.ndarray:
    """Each index row's group number in ``groups``, -1 for a cover in none."""
    labels = np.full(index.info.count, -1, dtype=np.int64)
    labels[pd.Index(index.metadata["id"]).get_indexer(groups["id"])] = groups["group"].to_numpy(dtype=np.int64)
    return labels
