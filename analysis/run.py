"""``sleeve analyze``: from an index folder to a separability report, in one call.

Loads the index, fits (or loads from cache) the map, measures separability on the labelled covers, looks
at the covers themselves for thumbnails and traits, and writes the HTML report and optionally a PNG.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from analysis import narrative
from analysis.classifier_metrics import read_recall
from analysis.cluster import MIN_SAMPLES, ReadableHDBSCAN
from analysis.covermap import CoverMap, Layout
from analysis.editions import EditionsSection, editions_section
from analysis.layout_cache import fit_cached, looks_cached
from analysis.profiles import ClusterProfile, cluster_profiles
from analysis.report import ReportData, write_report
from analysis.separability import (
    DEFAULT_NEIGHBOURS,
    SILHOUETTE_MAX_COVERS,
    ClusterAgreement,
    cluster_agreement,
    genre_separability,
    overall_purity,
)
from analysis.thumbnails import (
    DEFAULT_MAX_THUMBNAILS,
    GALLERY_SIZE,
    HOVER_SIZE,
    JPEG_QUALITY,
    sample_rows,
    thumbnail_uri,
)
from analysis.traits import TRAIT_SIZE, TRAITS, image_traits
from analysis.words import word_figures
from index.errors import SleeveError
from index.store import CoverIndex, load_index
from recsys import __version__
from recsys.images import BadImageError, load_cover
from recsys.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_OUT = "reports/analysis.html"
MIN_COVERS = 20
"""Below this a map and clusters say nothing; UMAP also needs a few more points than dimensions."""
FORMATS = ("html", "png")


class AnalysisError(SleeveError):
    """The index cannot be analysed as asked; the message says what to change."""


@dataclasses.dataclass
class AnalysisSummary:
    index_dir: str
    covers: int
    labelled: int
    genres: int
    clusters: int
    noise_share: float
    purity: float
    chance: float
    ranking: list[str]
    sentences: list[str]
    nmi: float
    ari: float
    written: dict[str, str]
    bytes_written: dict[str, int]
    layout_from_cache: bool
    seconds: float
    words: dict[str, Any] | None = None
    """What the words on the covers say (analysis.words.WordFigures.to_dict), None when no text is known."""
    editions: dict[str, Any] | None = None
    """Covers in edition groups, the number of groups and the largest (analysis.editions.EditionsSection)."""

    def lines(self) -> list[str]:
        """A short human summary for stdout: what was written and the ranking."""
        files = ", ".join(f"{path} ({self.bytes_written[kind] / 1e6:.1f} MB)" for kind, path in self.written.items())
        return [
            f"wrote {files}",
            f"{self.covers:,} covers ({self.labelled:,} with a genre), {self.clusters} clusters "
            f"({self.noise_share:.0%} noise), layout {'from cache' if self.layout_from_cache else 'computed'} "
            f"in {self.seconds:.1f}s total",
            f"genre purity of nearest neighbours {self.purity:.2f} (chance {self.chance:.2f}); clusters vs genre: "
            f"NMI {self.nmi:.2f}, ARI {self.ari:.2f}",
            "best to worst separated: " + ", ".join(self.ranking),
            *self.sentences,
            *narrative.words_sentences(self.words),
            *([self.editions["sentence"]] if self.editions else []),
        ]


def analyze(
    index_dir: str | Path,
    out: str | Path = DEFAULT_OUT,
    formats: Iterable[str] = ("html",),
    min_cluster_size: int | None = None,
    min_samples: int = MIN_SAMPLES,
    seed: int = 0,
    neighbours: int = DEFAULT_NEIGHBOURS,
    metrics: str | Path | None = None,
    metrics_model: str | None = None,
    layout_cache_dir: str | Path | None = None,
    max_thumbnails: int = DEFAULT_MAX_THUMBNAILS,
    cover_map: CoverMap | None = None,
    read_text: bool = False,
    settings: Settings | None = None,
) -> AnalysisSummary:
    """Analyse the index in ``index_dir`` and write the report(s) named after ``out``.

    ``formats``: "html" (the interactive report at ``out``) and/or "png" (the maps, ``out`` with .png).
    ``layout_cache_dir`` holds fitted layouts (default: ``<index>/analysis``). ``cover_map`` replaces the default
    UMAP + HDBSCAN map (``min_cluster_size``, ``min_samples`` and ``seed`` then do not apply to it).
    The words section uses the cover text stored in the index or already in the OCR cache (``settings.cache``);
    ``read_text`` first reads the covers it lacks (about 0.25 s a cover, once: the readings are cached).
    """
    started = time.perf_counter()
    settings = settings or Settings()
    formats = tuple(dict.fromkeys(formats))
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise AnalysisError(f"unknown output format {sorted(unknown)}; choose from {', '.join(FORMATS)}")
    recall_model, recall = read_recall(metrics, metrics_model) if metrics is not None else (None, None)
    index = load_index(index_dir)
    genres = index.metadata["genre"].astype("string")
    _check_collection(index, genres, neighbours)

    cover_map = cover_map or CoverMap(min_cluster_size=min_cluster_size, min_samples=min_samples, seed=seed)
    layout_folder = Path(layout_cache_dir) if layout_cache_dir is not None else index.folder / "analysis"
    measured = _measure(index, genres, cover_map, layout_folder, neighbours, seed, recall)
    words = word_figures(_cover_texts(index, read_text, settings.cache, settings.progress), genres.tolist())
    editions = editions_section(index, settings.cache)
    traits, hover = _looks(index, layout_folder, max_thumbnails, seed, settings.progress)
    method = _method_lines(
        index, cover_map.components(index.info.count), measured.k, len(measured.known), recall_model, metrics,
        len(hover), measured.from_cache, layout_folder,
    )
    data = _report_data(index, genres, measured, traits, hover, words, editions, recall_model, method)
    written = _write(Path(out), formats, data)
    purity, chance = overall_purity(measured.table)
    return AnalysisSummary(
        index_dir=str(index.folder),
        covers=index.info.count,
        labelled=len(measured.known),
        genres=len(measured.table),
        clusters=measured.layout.n_clusters,
        noise_share=measured.layout.noise_share,
        purity=purity,
        chance=chance,
        ranking=[str(genre) for genre in measured.table.index],
        sentences=data.ranking,
        nmi=measured.agreement.nmi,
        ari=measured.agreement.ari,
        written=written,
        bytes_written={kind: Path(path).stat().st_size for kind, path in written.items()},
        layout_from_cache=measured.from_cache,
        seconds=time.perf_counter() - started,
        words=words.to_dict() if words else None,
        editions=editions.to_dict(),
    )


@dataclasses.dataclass
class _Measured:
    """The map and the separability measures of one index, before anything is drawn."""

    layout: Layout
    from_cache: bool
    known: np.ndarray  # genres of the labelled covers
    k: int
    table: pd.DataFrame
    confusion: pd.DataFrame
    agreement: ClusterAgreement


def _measure(
    index: CoverIndex, genres: pd.Series, cover_map: CoverMap, layout_folder: Path, neighbours: int, seed: int,
    recall: pd.Series | None,
) -> _Measured:
    embeddings = np.asarray(index.embeddings, dtype=np.float32)
    log.info("fitting or loading the map of %d covers (cache %s)", len(embeddings), layout_folder)
    layout, from_cache = fit_cached(cover_map, embeddings, _index_identity(index), layout_folder)
    labelled = genres.notna().to_numpy()
    known = genres[labelled].astype(str).to_numpy(dtype=object)
    k = min(neighbours, len(known) - 1)
    table, confusion = genre_separability(embeddings[labelled], known, k, seed, recall)
    agreement = cluster_agreement(layout.labels[labelled], known)
    return _Measured(layout, from_cache, known, k, table, confusion, agreement)


def _looks(
    index: CoverIndex, layout_folder: Path, max_thumbnails: int, seed: int, progress: bool
) -> tuple[pd.DataFrame, dict[int, str]]:
    """(traits of every cover, hover thumbnails of a seeded sample), cached beside the layouts."""
    hover_rows = sample_rows(index.info.count, max_thumbnails, seed)
    looks = {
        "index": _index_identity(index),
        "rows": hashlib.sha256(hover_rows.tobytes()).hexdigest(),
        "settings": [HOVER_SIZE, GALLERY_SIZE, JPEG_QUALITY, TRAIT_SIZE, list(TRAITS)],
    }
    return looks_cached(looks, layout_folder, lambda: _look_at_covers(index, hover_rows, progress))


def _report_data(
    index: CoverIndex, genres: pd.Series, measured: _Measured, traits: pd.DataFrame, hover: dict[int, str],
    words: Any, editions: EditionsSection, recall_model: str | None, method: list[str],
) -> ReportData:
    """Everything the report draws, with its sentences."""
    layout, table, k = measured.layout, measured.table, measured.k
    profiles = cluster_profiles(layout.labels, layout.probabilities, layout.reduced, genres, traits)
    overall_shares = genres.dropna().value_counts(normalize=True)
    count = index.info.count
    points = pd.DataFrame(
        {
            "x": layout.picture[:, 0],
            "y": layout.picture[:, 1],
            "genre": genres,
            "cluster": layout.labels,
            "path": index.metadata["path"].astype(str),
            "thumbnail": [hover.get(row, "") for row in range(count)],
        }
    )
    return ReportData(
        title=f"Genre separability of {count:,} covers",
        subtitle=(
            f"index {index.folder} · model {index.info.model_key} · {time.strftime('%Y-%m-%d')} · "
            f"sleeve {__version__}"
        ),
        points=points,
        table=table,
        confusion=measured.confusion,
        agreement=measured.agreement,
        profiles=profiles,
        thumbnails=_gallery_thumbnails(index, profiles),
        overall=narrative.overall_sentence(table, k),
        ranking=narrative.ranking_sentences(table, k),
        overall_shares=overall_shares,
        clusters_statement=narrative.clusters_vs_genre_sentence(measured.agreement, profiles, overall_shares),
        cluster_sentences=[narrative.cluster_sentence(p, overall_shares) for p in profiles],
        method=method,
        neighbours=k,
        recall_model=recall_model,
        words=words,
        words_sentences=narrative.words_sentences(words.to_dict() if words else None),
        editions=editions,
        hover_note=(
            f"Thumbnails are embedded for a seeded sample of {len(hover):,} of the {count:,} covers, "
            "to keep this file small."
            if len(hover) < count
            else ""
        ),
    )


def _write(out: Path, formats: tuple[str, ...], data: ReportData) -> dict[str, str]:
    written: dict[str, str] = {}
    if "html" in formats:
        written["html"] = str(write_report(out, data))
    if "png" in formats:
        from analysis.scatter_png import write_scatter_png

        written["png"] = str(write_scatter_png(out.with_suffix(".png"), data.points, data.title))
    return written


def _cover_texts(
    index: CoverIndex, read_text: bool, cache_dir: str | Path | None, progress: bool
) -> list[str | None]:
    """Each cover's OCR text: the text stored in the index (build-index --read-text), else from the cache keyed
    by content hash (None where it was never read); with ``read_text`` the missing ones are read first.
    Unreadable files stay None and are reported by read_missing."""
    from recsys.ocr import TextCache, cover_text, read_missing, reader_key
    from recsys.textstore import texts_by_row

    stored = texts_by_row(index)
    if stored is not None:
        return [str(text) for text in stored]

    files = index.metadata[["path", "content_hash"]].astype(str)
    with TextCache(cache_dir) as cache:
        if read_text:
            read_missing(files, None, cache, progress)
        found = cache.get(reader_key(), list(files["content_hash"]))
    return [cover_text(found[h]) if h in found else None for h in files["content_hash"]]


def _check_collection(index: CoverIndex, genres: pd.Series, neighbours: int) -> None:
    if index.info.count < MIN_COVERS:
        raise AnalysisError(
            f"{index.folder} holds {index.info.count} covers; a map needs at least {MIN_COVERS}. Index more covers."
        )
    counts = genres.dropna().value_counts()
    if (counts >= 2).sum() < 2:
        raise AnalysisError(
            f"{index.folder} needs at least two genres with two covers each to compare genres; give genres with "
            "genre sub-folders or a 'genre' manifest column and build the index again"
        )
    if neighbours < 1:
        raise AnalysisError("the number of neighbours must be at least 1")


def _index_identity(index: CoverIndex) -> dict[str, Any]:
    """What a cached layout is valid for: this generation of this index's embeddings."""
    return {
        "embeddings": index.info.files["embeddings"],
        "created": index.info.created,
        "count": index.info.count,
        "model_key": index.info.model_key,
    }


def _look_at_covers(
    index: CoverIndex, hover_rows: np.ndarray, progress: bool
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Decode every cover once, small: traits for all (NaN where unreadable), hover thumbnails for the sample."""
    wanted = set(hover_rows.tolist())
    traits = np.full((index.info.count, len(TRAITS)), np.nan)
    hover: dict[int, str] = {}
    unreadable = 0
    paths = index.metadata["path"].astype(str).tolist()
    for row, path in enumerate(tqdm(paths, desc="looking at covers", unit="cover", disable=not progress)):
        try:
            image = load_cover(path, reduce_to=GALLERY_SIZE)
        except BadImageError as error:
            unreadable += 1
            log.debug("no thumbnail for %s: %s", path, error)
            continue
        traits[row] = list(image_traits(image).values())
        if row in wanted:
            hover[row] = thumbnail_uri(image, HOVER_SIZE)
    if unreadable:
        log.warning(
            "%d covers could not be read (moved or deleted since indexing?); they have no thumbnail", unreadable
        )
    return pd.DataFrame(traits, columns=list(TRAITS)), hover


def _gallery_thumbnails(index: CoverIndex, profiles: list[ClusterProfile]) -> dict[int, str]:
    """Gallery-size thumbnails of each cluster's example covers, by row."""
    gallery: dict[int, str] = {}
    paths = index.metadata["path"].astype(str)
    for profile in profiles:
        for row in profile.examples:
            try:
                gallery[row] = thumbnail_uri(load_cover(paths.iloc[row], reduce_to=GALLERY_SIZE), GALLERY_SIZE)
            except BadImageError:
                continue
    return gallery


def _method_lines(
    index: CoverIndex,
    components: dict[str, Any],
    k: int,
    labelled: int,
    recall_model: str | None,
    metrics: str | Path | None,
    thumbnails: int,
    from_cache: bool,
    cache_folder: Path,
) -> list[str]:
    def describe(part: Any) -> str:
        return " ".join(repr(part).split())

    lines = [
        f"Index {index.folder}: {index.info.count:,} covers, {index.info.dim}-d embeddings of {index.info.model_key} "
        f"(file {index.info.files['embeddings']}).",
        f"Picture: {describe(components['picture_reducer'])}.",
        f"Clustering space: {describe(components['cluster_reducer'])}; clusters: {describe(components['clusterer'])}.",
        f"Neighbours: the {k} most cosine-similar other covers in the full embedding, over the {labelled:,} covers "
        "with a genre; chance = (covers of the genre - 1) / (labelled covers - 1).",
        "Silhouette: cosine, in the full embedding"
        + (f", on a seeded sample of {SILHOUETTE_MAX_COVERS:,} covers." if labelled > SILHOUETTE_MAX_COVERS else "."),
        f"Layout {'loaded from' if from_cache else 'computed and saved in'} {cache_folder}; "
        f"{thumbnails:,} hover thumbnails.",
    ]
    if isinstance(components["clusterer"], ReadableHDBSCAN):
        lines.append(
            "HDBSCAN keeps its excess-of-mass clusters unless one of them holds over "
            f"{components['clusterer'].max_cluster_share:.0%} of the clustered covers (one cloud, nothing to read); "
            "then it takes the leaves of its cluster tree, the densest pockets, and leaves the rest as noise."
        )
    if recall_model is not None:
        lines.append(
            f"Recall: classifier {recall_model!r} from {metrics} (the model with the best macro F1 unless named)."
        )
    return lines
