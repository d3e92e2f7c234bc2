"""sleeve command line: declares the commands and their options and calls library functions, nothing more.

Results go to stdout (a table, or JSON with --json); logs and progress bars go to stderr; exit codes and one-line
errors come from recsys.console.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from api.server import DEFAULT_TIMEOUT_S
from index.registry import INDEX_TYPES
from recsys.classify.catalog import CLASSIFIERS
from recsys.cli_options import (
    build_settings, cache_option, classifier_source, cnn_training, encoder_options, host_option, index_option,
    json_option, no_progress_option, query_settings, registry_uri_option, result_options, serve_settings, settings_of,
    where_option, work_settings,
)
from recsys.console import (
    friendly_errors, option_group, print_answers, print_cover_texts, print_outcome, print_results,
)
from recsys.encoders.registry import ENCODERS
from recsys.ocr_readers import OCR_READERS


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """sleeve: find look-alike album covers, classify their genre and analyse how genres cluster."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


@main.command("build-index")
@friendly_errors
@click.option("--covers", type=click.Path(), help="Folder of covers (recursive); a sub-folder name is the genre.")
@click.option("--manifest", type=click.Path(), help="CSV with a 'path' column, optional 'genre' and metadata columns.")
@index_option
@click.option("--model", type=click.Choice(ENCODERS.choices()), default="auto", show_default=True,
              help=ENCODERS.help()[:-1] + ". An existing index keeps its model.")
@encoder_options
@click.option("--index-type", type=click.Choice(INDEX_TYPES.choices()), default="auto", show_default=True,
              help=INDEX_TYPES.help())
@build_settings
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1))
@click.option("--workers", type=click.IntRange(0), help="Decoding processes [default: cores - 1, 1 to 4].")
@click.option("--no-folder-genre", is_flag=True, help="Do not take genres from folder names.")
@click.option("--rebuild", is_flag=True,
              help="Write a fresh index over a damaged one in place (vectors come from the cache).")
@click.option(
    "--cluster",
    metavar="ADDRESS",
    help="Hash and embed on a Dask cluster: tcp://HOST:PORT of a running `dask scheduler`, or local:N for N worker "
    "processes here. Workers must see the cover paths (shared file system) and have sleeve installed.",
)
@click.option("--shard-size", "files_per_shard", type=click.IntRange(1),
              help="Files per cluster task [default: up to 256, fewer for small collections so that every worker "
              "gets work].")
@click.option("--read-text", is_flag=True,
              help="Also read the text printed on each cover (OCR, cached) for recommend --by words/both and search; "
              "an index with text keeps reading new covers' text on later runs.")
@click.option("--ocr", type=click.Choice(OCR_READERS.names()),
              help="How --read-text reads: " + OCR_READERS.help()[:-1] + " [default: the reader that read the index's "
              "text, else exact; implies --read-text].")
@json_option
def build_index_command(
    covers: str | None, manifest: str | None, model: str, encoder_options: dict[str, str], no_folder_genre: bool,
    cluster: str | None, read_text: bool, ocr: str | None, as_json: bool, **options: Any,
) -> None:
    """Embed a collection of covers and build (or update) its similarity index.

    Re-running on the same --index adds new covers and drops vanished ones; only new covers are
    embedded, and an interrupted run resumes where it stopped. Unreadable files, and files that are not
    regular files (pipes, devices), are skipped and listed in INDEX/skipped.csv.

    One writer per index: while a build-index writes a folder, a second one on the same --index fails at
    once with exit code 1 and changes nothing (run it again when the first has finished). Readers
    (recommend, analyze) keep working meanwhile and see the old index or the new one.

    Example: python cli.py build-index --covers ../shared/covers
    """
    from recsys.build import build_index

    if (covers is None) == (manifest is None):
        raise click.UsageError("give exactly one of --covers or --manifest")
    distributor = None
    if cluster is not None:  # Dask is imported only here; the click context stops the cluster client at exit
        from recsys.dask_cluster import open_distributor

        distributor = click.get_current_context().with_resource(open_distributor(cluster))
    summary = build_index(
        covers=covers, manifest=manifest, encoder=model, genre_from_folder=not no_folder_genre, **encoder_options,
        read_text=read_text or ocr is not None, ocr=ocr, distributor=distributor, **options,
    )
    print_outcome(summary.__dict__, summary.line(), as_json)


@main.command("recommend")
@friendly_errors
@click.option("--cover", "covers", multiple=True, type=click.Path(),
              help="Query cover image file, or a folder of covers (recursive); repeat for more queries.")
@click.option("--text", help='Query text, e.g. "a dark cover with a skull" (CLIP indexes only).')
@result_options
@where_option
@click.option("--by", type=click.Choice(["look", "words", "both"]),
              help="Rank a --cover by its look, by the words printed on it, or both fused "
              "[default: both when the index holds text (build-index --read-text), else look].")
@click.option("--collapse-editions", is_flag=True,
              help="One cover per edition group (re-scans, reissues: see the editions command), filled up to -k.")
@index_option
@query_settings
@classifier_source
@json_option
def recommend_command(
    covers: tuple[str, ...], text: str | None, k: int, genre: str | None, where: tuple[str, ...], by: str | None,
    collapse_editions: bool, index_dir: str, settings: Any, classifier: dict[str, str | None], as_json: bool,
) -> None:
    """Print the covers most similar to a cover (or a text): rank, similarity, genre, path, metadata, and
    for a cover which part the result owes its rank to (match: look, words or both).

    A query cover that is itself in the index is left out of its own results. Several --cover options or a
    folder are answered one after another in one process, so start-up is paid once; each table is headed
    by its query, and with --json each query is one JSON line {"query": ..., "results": [...]} (exactly one
    --cover file prints one indented object, as always). A cover that cannot be read is reported on stderr
    and the others are answered; the exit code is then 1.

    Example: python cli.py recommend --cover my-cover.jpg -k 10 --by both --where artist="Alan Jackson"
    """
    from recsys.answer import QueryAnswerer
    from recsys.filters import parse_where

    if bool(covers) == (text is not None):
        raise click.UsageError("give --cover (one or more) or --text")
    if text is not None and (by is not None or where or collapse_editions):
        raise click.UsageError(
            "--by, --where and --collapse-editions rank a --cover; to find covers by their printed words use: "
            "sleeve search"
        )
    if text is not None:
        from recsys.recommend import Recommender

        results = Recommender.open(index_dir, settings).similar_to_text(text, k=k, genre=genre)
        print_results({"query": {"text": text}, "results": results.to_dict(orient="records")}, results, as_json)
        return
    answerer = QueryAnswerer.open(index_dir, settings, **classifier)
    failed = print_answers(answerer, covers, as_json, k=k, genre=genre, by=by, where=parse_where(where),
                           collapse_editions=collapse_editions)
    sys.exit(1 if failed else 0)


@main.command("fetch-covers")
@friendly_errors
@click.option("--genre", "genres", multiple=True, required=True, help="MusicBrainz genre tag; repeat for more genres.")
@click.option("--per-genre", default=100, show_default=True, type=click.IntRange(1), help="Covers wanted per genre.")
@click.option("--out", "out_dir", default="covers", show_default=True, type=click.Path(file_okay=False),
              help="Collection folder: OUT/<genre>/<mbid>-front.jpg and OUT/manifest.csv.")
@click.option("--back", is_flag=True, help="Also store back covers where the archive has them.")
@click.option("--size", type=click.Choice(["250", "500", "1200"]), default="250", show_default=True,
              help="Thumbnail size, pixels on the longest side.")
@click.option("--type", "primary_type", type=click.Choice(["album", "ep", "single", "broadcast", "other", "any"]),
              default="album", show_default=True, help="Kind of release group to search for.")
@click.option("--contact", help="E-mail or URL MusicBrainz can reach you at [default: from the config file].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file with [musicbrainz] contact [default: $SLEEVE_CONFIG or ~/.config/sleeve/config.toml].")
@click.option("--musicbrainz-url", help="MusicBrainz web service root [default: https://musicbrainz.org/ws/2].")
@click.option("--coverart-url", help="Cover Art Archive root [default: https://coverartarchive.org].")
@click.option("--musicbrainz-interval", default=1.0, show_default=True, type=click.FloatRange(0),
              help="Seconds between MusicBrainz requests; lower only for a mirror (musicbrainz.org gets at least 1).")
@no_progress_option
@json_option
def fetch_covers_command(
    size: str, primary_type: str, contact: str | None, config_path: str | None, no_progress: bool, as_json: bool,
    **options: Any,
) -> None:
    """Grow a collection: find release groups by genre tag on MusicBrainz, store their covers from the
    Cover Art Archive in OUT/<genre>/ and list them in OUT/manifest.csv for build-index --manifest.

    Runs again resume: covers already on disk are skipped. At most one request per second goes to
    MusicBrainz. Exit code 1 if some covers could not be fetched (they are listed), 2 for a usage error.

    Example: python cli.py fetch-covers --genre jazz --genre metal --per-genre 500 --out covers/
    """
    from recsys.fetch import fetch_covers
    from recsys.user_config import ConfigError, musicbrainz_contact

    try:
        summary = fetch_covers(
            **options,
            contact=musicbrainz_contact(contact, config_path),
            size=int(size),
            primary_type=None if primary_type == "any" else primary_type,
            progress=not no_progress,
        )
    except ConfigError as error:
        raise click.UsageError(str(error)) from None
    print_outcome(summary.to_dict(), summary.lines(), as_json)
    sys.exit(0 if summary.ok else 1)


@main.command("analyze")
@friendly_errors
@index_option
@click.option("--out", default="reports/analysis.html", show_default=True, type=click.Path(dir_okay=False),
              help="Report file; a PNG goes beside it with the same name.")
@click.option("--format", "formats", type=click.Choice(["html", "png"]), multiple=True, default=("html",),
              show_default=True, help="What to write; repeat for both: --format html --format png.")
@click.option("--open", "open_report", is_flag=True, help="Open the HTML report in the web browser.")
@click.option("--min-cluster-size", type=click.IntRange(2),
              help="HDBSCAN minimum cluster size [default: 1% of covers].")
@click.option("--min-samples", default=5, show_default=True, type=click.IntRange(1),
              help="HDBSCAN neighbours that judge density; higher gives fewer, denser clusters.")
@click.option("--seed", default=0, show_default=True, type=int, help="UMAP seed (same seed, same report).")
@click.option("-k", "--neighbours", default=10, show_default=True, type=click.IntRange(1),
              help="Nearest neighbours for genre purity and confusability.")
@click.option("--metrics", type=click.Path(dir_okay=False),
              help="metrics.json of sleeve evaluate: adds per-genre recall.")
@click.option("--metrics-model", help="Model in --metrics to show [default: best macro F1].")
@click.option("--analysis-cache", "layout_cache_dir", type=click.Path(file_okay=False),
              help="Folder for cached layouts [default: INDEX/analysis].")
@click.option("--max-thumbnails", default=1500, show_default=True, type=click.IntRange(0),
              help="Hover thumbnails at most (a seeded sample beyond that keeps the file small).")
@click.option("--read-text", is_flag=True,
              help="Read (OCR) the text of covers whose text is not cached yet, for the section on what the words "
                   "say; about 0.1 s a cover on 2 cores, once. Without it the section uses only text already read.")
@option_group("settings", settings_of, cache_option, no_progress_option)
@json_option
def analyze_command(open_report: bool, as_json: bool, **options: Any) -> None:
    """Map the covers (UMAP), cluster them (HDBSCAN) and rank how well genres separate, as an HTML report.

    The report opens offline: covers coloured by genre and by cluster with the cover on hover, the
    genre confusability heatmap, the separability ranking with a sentence per genre, example covers
    of each cluster, and what the words printed on the covers say (the words that mark each genre, how many
    covers carry text, their languages) when cover text has been read (--read-text, evaluate's text models
    or any other command that reads cover text). The layout is cached, so a second run with the same settings
    is quick.

    Example: python cli.py analyze --index sleeve-index --out reports/analysis.html --open
    """
    if options["metrics_model"] is not None and options["metrics"] is None:
        raise click.UsageError("--metrics-model needs --metrics")
    import webbrowser
    from pathlib import Path

    from analysis.run import analyze

    summary = analyze(**options)
    print_outcome(summary.__dict__, summary.lines(), as_json)
    if open_report and "html" in summary.written:
        webbrowser.open(Path(summary.written["html"]).resolve().as_uri())


@main.command("evaluate")
@friendly_errors
@index_option
@click.option("--models", "models", multiple=True,
              help="Models to compare, comma-separated or repeated [default: all]. " + CLASSIFIERS.help())
@click.option("--cv", type=click.IntRange(3), help="Stratified group k-fold instead of one 60/20/20 split.")
@click.option("--test-covers", type=click.Path(file_okay=False),
              help="Train on the whole index, test on this labelled folder (<genre>/ sub-folders).")
@click.option("--test-manifest", type=click.Path(dir_okay=False),
              help="Train on the whole index, test on the covers of this manifest CSV (path, genre).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for metrics.json, results.md, confusion-<model>.png, split.csv, predictions.csv.")
@click.option("--seed", default=42, show_default=True, type=int, help="Seed of the split (same seed, same split).")
@click.option("--bootstrap", "bootstrap_samples", default=1000, show_default=True, type=click.IntRange(10),
              help="Bootstrap resamples for the 95% intervals.")
@cnn_training
@click.option("--mlflow", is_flag=True,
              help="Also log one MLflow run per model (extra sleeve[tracking]).")
@click.option("--tracking-uri",
              help="MLflow tracking URI, e.g. a server's http://127.0.0.1:5000 [default: a SQLite store in "
                   "OUT/mlflow].")
@work_settings
@json_option
def evaluate_command(models: tuple[str, ...], as_json: bool, **options: Any) -> None:
    """Compare genre classifiers on one leak-free split of the index's labelled covers (near-duplicate covers
    never straddle train and test) and write metrics with 95% bootstrap intervals, a markdown table and
    confusion matrices to OUT.

    Hyper-parameters are tuned on the validation covers only; the test covers are used once. The text models
    read each cover's printed text once by OCR (about 0.1 s a cover on 2 cores) and cache it beside the embeddings.
    With a text model, the models (but zero-shot and cnn) are also fitted on an artist-aware split that keeps
    covers whose printed name lines read alike together, and results.md shows both macro-F1s: the drop is
    how much of a score came from recognising names seen in training.

    Example: python cli.py evaluate --index sleeve-index --out eval/ --models linear,svm,cnn
    """
    from recsys.classify.evaluate import evaluate
    from recsys.classify.results import results_table

    if options["test_covers"] and options["test_manifest"]:
        raise click.UsageError("give at most one of --test-covers or --test-manifest")
    chosen = [name.strip() for value in models for name in value.split(",") if name.strip()]
    metrics = evaluate(**options, **({"models": chosen} if chosen else {}))
    print_outcome(metrics, results_table(metrics), as_json)


@main.command("train-classifier")
@friendly_errors
@index_option
@click.option("--model", "classifier", default="linear", show_default=True, type=click.Choice(CLASSIFIERS.names()),
              help="Which classifier to store beside the index. " + CLASSIFIERS.help())
@click.option("--seed", default=42, show_default=True, type=int, help="Seed of the tuning split.")
@click.option("--register", "register_as", metavar="NAME",
              help="Also log the stored classifier to MLflow as a new version of registered model NAME.")
@registry_uri_option
@cnn_training
@work_settings
@json_option
def train_classifier_command(
    register_as: str | None, tracking_uri: str | None, as_json: bool, **options: Any
) -> None:
    """Train a genre classifier on the index's labelled covers and store it in INDEX/classifier/.

    Hyper-parameters are chosen on a group-aware 80/20 split, then the model is refitted on every cover
    (the CNN keeps its early-stopped weights). It is stored without pickle and only loads for this index's
    model. predict and recommend use it. With --register it also becomes a new version of a registered model
    on an MLflow server, which predict and recommend take with --registered.

    Example: python cli.py train-classifier --index sleeve-index --model svm --register sleeve-genre
    """
    import dataclasses

    from recsys.classify.model_registry import register_classifier, resolve_tracking_uri
    from recsys.classify.train import train_classifier

    if register_as:
        resolve_tracking_uri(tracking_uri)  # before training: a missing URI is known at once
    info = train_classifier(**options)
    lines, data = [info.line(options["index_dir"])], dataclasses.asdict(info)
    if register_as:
        data["registered"] = registered = register_classifier(options["index_dir"], register_as, tracking_uri)
        name, number, uri = registered["name"], registered["version"], registered["tracking_uri"]
        lines.append(f"registered as {name} version {number} at {uri}")
    print_outcome(data, lines, as_json)


@main.command("read-text")
@friendly_errors
@click.argument("covers", nargs=-1, required=True, type=click.Path())
@click.option("--ocr", type=click.Choice(OCR_READERS.names()), default="exact", show_default=True,
              help="The reader, as build-index --ocr names it: see how the fast reader reads a cover.")
@json_option
def read_text_command(covers: tuple[str, ...], ocr: str, as_json: bool) -> None:
    """Show the text on COVERS (artist, title, label marks) as OCR reads it: one line of the cover per
    line with the recogniser's confidence. The text models of evaluate and train-classifier read the same.

    Exit code 1 when some cover could not be read (each is reported on stderr; the others are printed).

    Example: python cli.py read-text cover.jpg other-cover.png
    """
    from recsys.ocr import CoverTextReader, read_covers, settings_for

    results = read_covers(CoverTextReader(settings=settings_for(len(covers), OCR_READERS[ocr].load())), covers)
    sys.exit(1 if print_cover_texts(results, as_json) else 0)


@main.command("search")
@friendly_errors
@click.argument("query")
@result_options
@where_option
@index_option
@json_option
def search_command(
    query: str, k: int, genre: str | None, where: tuple[str, ...], index_dir: str, as_json: bool
) -> None:
    """Find covers by the words printed on them: rank, score (share of the query found), genre, path, the
    cover's text, metadata. Case, accents, spaces and most OCR slips ("ALANIACKSON") do not matter.

    Needs an index built with --read-text.

    Example: python cli.py search "alan jackson" -k 5
    """
    from index.store import load_index
    from recsys.filters import parse_where
    from recsys.recommend import Recommender

    results = Recommender(load_index(index_dir)).search_text(query, k=k, genre=genre, where=parse_where(where))
    answer = {"query": query, "results": results.to_dict(orient="records")}
    print_results(answer, results, as_json, empty="no covers carry that text")


@main.command("predict")
@friendly_errors
@click.option("--cover", required=True, type=click.Path(), help="Cover image file.")
@index_option
@click.option("-k", "--top", "k", default=3, show_default=True, type=click.IntRange(1), help="Genres to show.")
@query_settings
@classifier_source
@json_option
def predict_command(
    cover: str, index_dir: str, k: int, settings: Any, classifier: dict[str, str | None], as_json: bool
) -> None:
    """Print the most probable genres of a cover with their probabilities, from the classifier stored
    beside the index (make one with train-classifier), or a version registered in MLflow (--registered).

    Example: python cli.py predict --cover my-cover.jpg
    """
    from recsys.classify.predict import predict_cover

    prediction = predict_cover(index_dir, cover, k=k, settings=settings, **classifier)
    print_outcome(prediction, [f"{row['genre']:<20} {row['probability']:.3f}" for row in prediction["genres"]], as_json)


@main.command("app")
@index_option
@host_option
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535), help="Port to serve on.")
def app_command(index_dir: str, host: str, port: int) -> None:
    """Open the collection in the browser (Streamlit): look-alikes of an uploaded or picked cover, its
    genre and printed text, search by words, the cluster map and what the index holds.

    Prints the URL to open; Ctrl-C stops the server. The same as running by hand:
    streamlit run webapp/app.py -- --index INDEX

    Example: python cli.py app --index sleeve-index --port 8501
    """
    from webapp.launch import run_app

    sys.exit(run_app(index_dir, host=host, port=port))


@main.command("serve")
@friendly_errors
@index_option
@host_option
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to serve on.")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="A web site whose pages may call the API from the browser, e.g. https://shop.example; "
              "repeatable [default: none, CORS off].")
@click.option("--show-paths", is_flag=True, help="Put each cover's server path in the answers (off: id and file name).")
@click.option("--max-upload-mb", default=20, show_default=True, type=click.IntRange(1, 200),
              help="Largest uploaded cover; a bigger request gets 413.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Server processes on the one port, one per core at most. Each loads its own model and FAISS "
              "index: about 220 MB a worker on 4,450 covers, plus 80 MB once for the supervisor of several "
              "(docs/serve.md); the memory-mapped embeddings are shared.")
@click.option("--timeout", default=DEFAULT_TIMEOUT_S, show_default=True, type=click.FloatRange(0, min_open=True),
              metavar="SECONDS",
              help="A request not answered within this gets 504; its query finishes in the background.")
@serve_settings
def serve_command(index_dir: str, settings: Any, **options: Any) -> None:
    """Serve the index as a read-only JSON API over HTTP: look-alikes of an uploaded or indexed cover,
    search by printed words, genre of an upload, index info, thumbnails; docs at /docs.

    With $SLEEVE_API_TOKEN set, every query needs the header Authorization: Bearer <token>. A new generation
    written by build-index is served from the next request on, without a restart. See docs/serve.md.

    Example: SLEEVE_API_TOKEN=secret python cli.py serve --index sleeve-index --port 8000
    """
    from api.server import serve

    serve(index_dir, settings=settings, **options)


@main.command("editions")
@friendly_errors
@index_option
@click.option("--threshold", "thresholds", multiple=True, metavar="RULE=VALUE",
              help="Change a rule's threshold, e.g. --threshold look_same=0.9; repeatable. The defaults are the "
              "index's encoder family's (recsys.editions.FAMILY_RULES, chosen in docs/editions.md); for "
              "efficientnet-lite0: hash_distance=14, look_near=0.85, look_alone=0.90, look_same=0.85, "
              "words_same=0.60, words_strict=0.80, look_floor=0.75.")
@click.option("-k", "--neighbours", default=10, show_default=True, type=click.IntRange(1),
              help="Candidates per cover by look and by words.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write the groups to this CSV file.")
@cache_option
@json_option
def editions_command(
    index_dir: str, thresholds: tuple[str, ...], neighbours: int, csv_path: str | None, cache_dir: str | None,
    as_json: bool,
) -> None:
    """Group the covers that are one release: re-scans, crops, reissues with a banner or sticker, recoloured
    prints. One row per member: group, id, path, why it was joined, score. Covers in no group are not listed.

    Uses the look, perceptual hashes (cached by content) and, in an index built with --read-text, the printed
    words; works on any index, without a rebuild.

    Example: python cli.py editions --index sleeve-index --csv editions.csv
    """
    from recsys.editions import as_records, editions_of

    groups = editions_of(index_dir, thresholds, neighbours, cache_dir)
    if csv_path:
        groups.to_csv(csv_path, index=False)
    print_results({"groups": as_records(groups)}, groups, as_json,
                  empty="no editions found: every cover is a release of its own")


if __name__ == "__main__":
    main()
