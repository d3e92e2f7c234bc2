"""The command line offers exactly what the registries hold, and a registered family is built by name."""

from __future__ import annotations

import click
import pytest

import cli
from index.errors import SleeveError
from index.registry import INDEX_TYPES, IndexType
from recsys.encoders import ENCODERS, EncoderError, create_encoder
from recsys.encoders.base import FamilyEncoder
from recsys.encoders.registry import RUNTIMES, EncoderFamily
from recsys.ocr_readers import OCR_READERS as READERS


def _choices(command: click.Command, option: str) -> list[str]:
    (param,) = [p for p in command.params if p.name == option]
    return list(param.type.choices)


def test_cli_choices_and_help_come_from_the_registries() -> None:
    build = cli.main.commands["build-index"]
    assert _choices(build, "model") == ["auto", *ENCODERS]
    assert _choices(build, "index_type") == ["auto", *INDEX_TYPES]
    for name in ("build-index", "recommend", "evaluate", "train-classifier", "predict"):
        assert _choices(cli.main.commands[name], "runtime") == ["auto", *RUNTIMES]
    for name in ("build-index", "read-text"):
        assert _choices(cli.main.commands[name], "ocr") == list(READERS)
    help_text = build.get_help(click.Context(build))
    for name in ENCODERS:
        assert ENCODERS[name].summary.split()[0] in help_text
    for name in INDEX_TYPES:
        assert INDEX_TYPES[name].summary.split(":")[0].split()[0] in help_text


def test_registering_twice_or_auto_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        ENCODERS.register(EncoderFamily("clip", "x:y", "again", "torch"))
    with pytest.raises(ValueError, match="already registered"):
        INDEX_TYPES.register(IndexType("auto", "x:y", "policy, not a type"))
    with pytest.raises(EncoderError, match="unknown model"):
        ENCODERS["resnet"]


def test_an_encoder_without_its_constructors_cannot_be_instantiated() -> None:
    class Incomplete(FamilyEncoder):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_a_family_is_built_through_its_registry_entry() -> None:
    encoder = create_encoder("efficientnet-lite0", runtime="torch")
    assert type(encoder) is ENCODERS["efficientnet-lite0"].load()


def test_every_kind_applies_its_own_auto_rule_and_refuses_unknown_names() -> None:
    assert INDEX_TYPES.resolve("auto", count=10, dim=8) == "flat" and INDEX_TYPES.resolve("hnsw") == "hnsw"
    assert RUNTIMES.resolve("auto", family="efficientnet-lite0") == ENCODERS["efficientnet-lite0"].fastest_runtime
    RUNTIMES.check("auto")
    with pytest.raises(EncoderError, match="unknown runtime 'gpu'; choose one of auto, torch"):
        RUNTIMES.check("gpu")
    with pytest.raises(SleeveError, match="unknown OCR reader 'auto'"):
        READERS.check("auto")  # readers have no auto rule
    assert READERS.help().startswith("exact: ") and INDEX_TYPES.help().startswith("auto: exact (flat)")


def test_encoder_options_come_from_the_family_that_declares_them(tmp_path) -> None:
    from recsys.build import build_index
    from recsys.settings import Settings
    from tests.conftest import make_cover

    build = cli.main.commands["build-index"]
    declared = [option.name for family in ENCODERS.values() for option in family.options]
    assert declared and all(name in [p.name for p in build.params] for name in declared)
    with pytest.raises(EncoderError, match="--arch is an option of clip, not of efficientnet-lite0"):
        create_encoder("efficientnet-lite0", arch="ViT-B-32")
    with pytest.raises(EncoderError, match="no model takes the option 'depth'"):
        create_encoder("auto", depth="3")
    for i in range(3):
        make_cover(tmp_path / "covers" / "rock" / f"{i}.png", seed=i)
    ready = create_encoder("efficientnet-lite0", runtime="torch")
    summary = build_index(tmp_path / "index", covers=tmp_path / "covers", encoder=ready, workers=0,
                          settings=Settings(cache_dir=tmp_path / "cache", progress=False))
    assert summary.model_key == ready.spec.key and summary.covers == 3
