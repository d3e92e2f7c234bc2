"""Build or update an index folder from a collection: find covers, embed what is new, index everything.

Running it again on the same folder is the update: covers that appeared are embedded (only those), covers
that vanished are dropped, and the index is rewritten atomically. The model of an existing index is kept
unless the user explicitly asks for another, which is refused rather than silently mixing vector spaces.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import time
from pathlib import Path

import pandas as pd

from index.registry import INDEX_TYPES
from index.sharded import build_from_rows
from index.store import (
    USER_PREFIX,
    IndexDamagedError,
    IndexFormatError,
    IndexNotFoundError,
    ModelMismatchError,
    load_index,
    one_writer,
    read_info,
    set_aside,
    stage_embeddings,
    write_index,
    write_skipped,
)
from index.words import FIT_STATE
from recsys import hybrid, textsearch
from recsys.cache import EmbeddingCache
from recsys.distribute import Distributor, EncoderRecipe, embed_distributed, fingerprint_distributed
from recsys.embed import embed_missing
from recsys.encoders import Encoder, ModelSpec, create_encoder
from recsys.encoders.base import ModelUnavailableError
from recsys.ingest import CollectionError, fingerprint, read_collection
from recsys.settings import Settings
from recsys.textstore import neighbour_table, read_cover_texts, reader_settings_of, updated_words_model

log = logging.getLogger(__name__)

_FILE_COLUMNS = ["id", "path", "content_hash", "size", "mtime_ns", "genre"]


@dataclasses.dataclass
class BuildSummary:
    index_dir: str
    model: str
    model_key: str
    index_type: str
    covers: int
    embedded: int
    skipped: int
    added: int
    removed: int
    seconds: float
    with_text: bool = False

    def line(self) -> str:
        return (
            f"indexed {self.covers:,} covers with {self.model} ({self.index_type}) in {self.seconds:.1f}s: "
            f"{self.embedded:,} embedded now, {self.covers - self.embedded:,} from cache or duplicates, "
            f"{self.added:,} added, {self.removed:,} removed, {self.skipped:,} skipped"
            + (f" (see {Path(self.index_dir) / 'skipped.csv'})" if self.skipped else "")
            + ("; cover text stored" if self.with_text else "")
        )


@one_writer
def build_index(
    index_dir: str | Path,
    covers: str | Path | None = None,
    manifest: str | Path | None = None,
    encoder: str | Encoder = "auto",
    index_type: str = "auto",
    batch_size: int = 32,
    workers: int | None = None,
    genre_from_folder: bool = True,
    rebuild: bool = False,
    read_text: bool = False,
    ocr: str | None = None,
    settings: Settings | None = None,
    distributor: Distributor | None = None,
    files_per_shard: int | None = None,
    **encoder_options: str,
) -> BuildSummary:
    """Index the covers of a folder or a manifest into ``index_dir`` (created or updated) with the ``encoder``
    family asked for ("auto": see recsys.encoders.registry) and the options it declares (``encoder_options``,
    e.g. CLIP's ``arch``), or with a ready :class:`Encoder`; an existing index keeps its own model.

    ``rebuild`` writes a fresh index, equal to a clean build, over the one in ``index_dir``: it keeps that
    index's model when the index loads and the model can still be made exactly, and otherwise moves the old
    files aside (index.store.set_aside) and builds with the model asked for.
    One writer at a time: a second one raises IndexBusyError (see index.store.one_writer).
    ``settings.weights`` is a local CLIP checkpoint for a new index (or where an index's checkpoint is now).
    With a ``distributor`` (recsys.dask_cluster) the hashing and the embedding run on its workers in shards of
    ``files_per_shard``.
    ``read_text`` also reads the text printed on each cover (recsys.textstore); an index that already holds
    text keeps it, so later runs read the new covers' text without being asked again, with the same reader
    unless ``ocr`` names another (recsys.ocr_readers.OCR_READERS: "exact" or "fast"; see textstore.reader_settings_of).
    """
    started = time.perf_counter()
    settings = settings or Settings()
    collection, left_out = read_collection(covers, manifest, genre_from_folder)

    source = _source_options(covers, manifest)
    existing = None
    if rebuild:
        image_encoder = _encoder_for_rebuild(index_dir, encoder, encoder_options, settings, source)
    else:
        try:
            existing = load_index(index_dir)
        except IndexNotFoundError:
            pass
        except IndexDamagedError as error:
            raise error.with_source(source) from None
        existing_spec = ModelSpec.from_dict(existing.info.model) if existing is not None else None
        image_encoder = _choose_encoder(existing_spec, index_dir, encoder, encoder_options, settings, source)
    previous = existing.metadata if existing is not None else None

    paths = list(collection["path"])
    if distributor is None:
        found, unreadable = fingerprint(paths, known=previous)
    else:  # the workers read and hash their own files; the driver reads none of them
        found, unreadable = fingerprint_distributed(paths, distributor, previous, files_per_shard, settings.progress)
    with EmbeddingCache(settings.cache) as cache:
        if distributor is None:
            report = embed_missing(
                found, image_encoder, cache, batch_size, workers, settings.max_pixels, settings.progress
            )
        else:
            recipe = EncoderRecipe(image_encoder.spec, settings)
            report = embed_distributed(found, recipe, cache, distributor, batch_size, files_per_shard)
        table = _metadata_table(collection, report.files)
        if table.empty:
            write_skipped(Path(index_dir), pd.concat([left_out, unreadable, report.failed], ignore_index=True))
            raise CollectionError(f"no readable covers in {covers or manifest}; see {Path(index_dir) / 'skipped.csv'}")
        staged = stage_embeddings(index_dir, len(table), image_encoder.spec.dim)
        cache.read_into(image_encoder.spec.key, list(table["content_hash"]), staged.rows)
        vectors = staged.rows  # memory-mapped: the build holds no copy of every vector besides the FAISS index's

    chosen_type = INDEX_TYPES.resolve(index_type, count=len(table), dim=image_encoder.spec.dim)
    texts = neighbours = words = look = None
    if read_text or (existing is not None and "text" in existing.info.files):
        reader = reader_settings_of(existing, ocr)
        texts, _ = read_cover_texts(table, settings.cache, settings.progress, distributor=distributor, settings=reader)
        model, fit_state = updated_words_model(table, texts, existing)  # refitted once it drifts (REFIT_SHARE)
        neighbours = neighbour_table(table, vectors, texts, model)  # the graph and engine follow the model
        words = textsearch.model_arrays(model) | {FIT_STATE: fit_state}
        look = hybrid.sampled_look_moments(vectors)  # of this generation's vectors: --by both reads no sample
    faiss_index, search_params = build_from_rows(vectors, chosen_type)
    write_index(
        index_dir, faiss_index, table, staged, image_encoder.spec.to_dict(), image_encoder.spec.key, chosen_type,
        search_params,
        texts=texts,
        neighbours=neighbours,
        words=words,
        look=look,
    )
    skipped = pd.concat([left_out, unreadable, report.failed], ignore_index=True).sort_values("path")
    write_skipped(index_dir, skipped)

    before = set(previous["path"]) if previous is not None else set()
    after = set(table["path"])
    return BuildSummary(
        index_dir=str(index_dir),
        model=image_encoder.spec.label,
        model_key=image_encoder.spec.key,
        index_type=chosen_type,
        covers=len(table),
        embedded=report.computed,
        skipped=len(skipped),
        added=len(after - before),
        removed=len(before - after),
        seconds=time.perf_counter() - started,
        with_text=texts is not None,
    )


def _source_options(covers: str | Path | None, manifest: str | Path | None) -> str:
    """The collection options of this build, as a repair command repeats them."""
    options = [("--covers", covers), ("--manifest", manifest)]
    return " ".join(f"{flag} {shlex.quote(str(value))}" for flag, value in options if value is not None)


def _encoder_for_rebuild(
    index_dir: str | Path, asked: str | Encoder, options: dict[str, str], settings: Settings, source: str
) -> Encoder:
    """The model ``index.json`` names when it can still be made exactly, even when the data files are damaged
    (a repair keeps the index's model and its cached vectors); files that cannot be reused go aside, and with
    no usable model the requested one is used."""
    try:
        load_index(index_dir)
        problem = None
    except IndexNotFoundError:  # nothing to reuse or set aside (leftover data files were removed under the lock)
        return _choose_encoder(None, index_dir, asked, options, settings, source)
    except IndexFormatError as error:
        problem = str(error)
    try:
        spec = ModelSpec.from_dict(read_info(index_dir).model)
        own = settings.encoder_for(spec)
    except (IndexFormatError, ModelUnavailableError, TypeError, ValueError) as error:
        problem, own = problem or str(error), None
    if problem is not None:
        set_aside(index_dir, f"build-index --rebuild could not reuse this index: {problem}")
    if own is None:
        return _choose_encoder(None, index_dir, asked, options, settings, source)
    if asked == "auto":
        return own
    return _choose_encoder(None if problem else spec, index_dir, asked, options, settings, source)


def _choose_encoder(
    existing: ModelSpec | None, index_dir: str | Path, asked: str | Encoder, options: dict[str, str],
    settings: Settings, source: str,
) -> Encoder:
    """A new index gets the requested model; an existing one keeps its own, and a different request is refused."""
    if existing is not None and asked == "auto":
        return settings.encoder_for(existing, index_dir, source)
    if isinstance(asked, Encoder):
        requested = asked
    else:
        requested = create_encoder(asked, settings.weights, settings.runtime, settings.cache, **options)
    if existing is not None and requested.spec.key != existing.key:
        raise ModelMismatchError(
            f"{index_dir} was built with {existing.label} ({existing.key}); you asked for "
            f"{requested.spec.label} ({requested.spec.key}). Use another --index folder for a new model."
        )
    return requested


def _metadata_table(collection: pd.DataFrame, good: pd.DataFrame) -> pd.DataFrame:
    """One row per indexed file: id, path, hash, size, mtime, genre, then the manifest's own columns under
    the ``user:`` prefix, so that no column name of a manifest can collide with sleeve's."""
    own = {c: USER_PREFIX + c for c in collection.columns if c not in ("path", "genre")}
    table = good.merge(collection.drop_duplicates("path").rename(columns=own), on="path", how="left")
    table = table.sort_values("path").reset_index(drop=True)
    table.insert(0, "id", range(len(table)))
    extra = [c for c in table.columns if c not in _FILE_COLUMNS]
    return table[_FILE_COLUMNS + extra]
