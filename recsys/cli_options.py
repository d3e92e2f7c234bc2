"""The options that several sleeve commands share, declared once (cli.py puts them on its commands).

Each option group hands its command one argument made from its options: ``settings`` (recsys.settings.Settings),
``encoder_options``, ``classifier`` (which classifier guesses a query's genre) or ``cnn_params``.
"""

from __future__ import annotations

from typing import Any

import click

from recsys.console import option_group
from recsys.encoders.registry import ENCODERS, RUNTIMES

DEFAULT_INDEX = "sleeve-index"


index_option = click.option(
    "--index",
    "index_dir",
    default=DEFAULT_INDEX,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Index folder.",
)
cache_option = click.option(
    "--cache",
    "cache_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Cache folder of embeddings and cover text [default: $SLEEVE_CACHE_DIR or ~/.cache/sleeve].",
)
runtime_option = click.option(
    "--runtime", type=click.Choice(RUNTIMES.choices()), default="auto", show_default=True,
    help="Where the image tower runs. " + RUNTIMES.help(),
)
where_option = click.option(
    "--where", multiple=True, metavar="COLUMN=VALUE",
    help="Only covers whose column equals VALUE (case aside), e.g. --where artist=\"Alan Jackson\"; repeatable. "
    "Columns are named as results show them: genre, path and the manifest's, a manifest column that shares a name "
    "of sleeve's as user:NAME (--where user:id=3).",
)
def result_options(command: Any) -> Any:
    """How many results a query returns and which genre they must have (recommend, search)."""
    command = click.option("--genre", help="Only return covers of this genre.")(command)
    return click.option("-k", "--top", "k", default=10, show_default=True, type=click.IntRange(1),
                        help="Number of results.")(command)


host_option = click.option(
    "--host", default="127.0.0.1", show_default=True,
    help="Address to serve on; the default lets only this machine connect.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON to stdout.")
no_progress_option = click.option("--no-progress", is_flag=True, help="Hide progress bars.")
moved_weights_option = click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    help="Where the index's CLIP checkpoint is now, if it moved (its checksum must match).",
)
registered_option = click.option(
    "--registered",
    metavar="NAME[:VERSION|@ALIAS]",
    help="Use this classifier from the MLflow model registry instead of the one beside the index [default: the "
    "newest version].",
)
registry_uri_option = click.option(
    "--tracking-uri", help="MLflow tracking server holding the registry [default: $MLFLOW_TRACKING_URI]."
)


def settings_of(**options: Any) -> Any:
    """The run-time options, resolved once into :class:`recsys.settings.Settings`."""
    from recsys.settings import Settings

    if "no_progress" in options:
        options["progress"] = not options.pop("no_progress")
    return Settings(**options)


encoder_options = option_group(
    "encoder_options",
    lambda **given: {name: value for name, value in given.items() if value is not None},
    *(
        click.option(f"--{option.name}", help=f"{family.name}: {option.help} [default: {option.default}].")
        for family in ENCODERS.values()
        for option in family.options
    ),
)
"""The options each encoder family declares (recsys.encoders.registry), for a new index."""
query_settings = option_group("settings", settings_of, cache_option, runtime_option, moved_weights_option)
"""How a query cover is encoded (recommend, predict)."""
serve_settings = option_group(
    "settings",
    settings_of,
    cache_option,
    runtime_option,
    moved_weights_option,
    click.option("--threads", default=0, show_default=True, type=click.IntRange(0, 256),
                 help="Threads one query may use in ONNX Runtime (the image tower) and FAISS, per worker; 0: one per "
                 "core. Fewer leave cores to concurrent queries (docs/serve.md)."),
)
"""How a server's workers encode query covers and how many threads each query may take."""
work_settings = option_group(
    "settings", settings_of, cache_option, runtime_option, moved_weights_option, no_progress_option
)
"""How the index's covers are encoded for long work (evaluate, train-classifier)."""
build_settings = option_group(
    "settings",
    settings_of,
    click.option("--weights", type=click.Path(dir_okay=False), help="Local CLIP checkpoint (instead of --pretrained)."),
    runtime_option,
    cache_option,
    click.option("--max-pixels", default=64_000_000, show_default=True, type=click.IntRange(1),
                 help="Refuse images larger than this (decompression bombs)."),
    no_progress_option,
)
"""How build-index encodes the collection's covers."""
classifier_source = option_group(
    "classifier", lambda **source: source, registered_option, registry_uri_option
)
"""Which classifier guesses a query's genre: the one beside the index, or one in an MLflow registry."""
cnn_training = option_group(
    "cnn_params",
    lambda cnn_epochs, cnn_views: {"max_epochs": cnn_epochs, "views": cnn_views},
    click.option("--cnn-epochs", default=8, show_default=True, type=click.IntRange(1),
                 help="Most epochs of the CNN fine-tune (early stopping on validation may end it sooner)."),
    click.option("--cnn-views", default=4, show_default=True, type=click.IntRange(1),
                 help="Augmented views cached per training cover for the CNN fine-tune."),
)
"""How long the CNN fine-tune may train (evaluate, train-classifier)."""
