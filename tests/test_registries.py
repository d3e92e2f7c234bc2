"""The command line offers exactly what the registries hold, and a registered family is built by name."""

from __future__ import annotations

import click
import pytest

import cli
from index.registry import IndexType, get_index_type, list_index_types, register_index_type
from recsys.encoders import EncoderError, create_encoder, get_family, list_encoders
from recsys.encoders.base import FamilyEncoder
from recsys.encoders.registry import RUNTIMES, EncoderFamily, register_encoder
from recsys.ocr import READERS


def _choices(command: click.Command, option: str) -> list[str]:
    (param,) = [p for p in command.params if p.name == option]
    return list(param.type.choices)


def test_cli_choices_and_help_come_from_the_registries() -> None:
    build = cli.main.commands["build-index"]
    assert _choices(build, "model") == ["auto", *list_encoders()]
    assert _choices(build, "index_type") == ["auto", *list_index_types()]
    for name in ("build-index", "recommend", "evaluate", "train-classifier", "predict"):
        assert _choices(cli.main.commands[name], "runtime") == ["auto", *RUNTIMES]
    for name in ("build-index", "read-text"):
        assert _choices(cli.main.commands[name], "ocr") == list(READERS)
    help_text = build.get_help(click.Context(build))
    for name in list_encoders():
        assert get_family(name).summary.split()[0] in help_text
    for name in list_index_types():
        assert get_index_type(name).summary.split(":")[0].split()[0] in help_text


def test_registering_twice_or_auto_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_encoder(EncoderFamily("clip", "x:y", "again", "torch"))
    with pytest.raises(ValueError, match="already registered"):
        register_index_type(IndexType("auto", "x:y", "policy, not a type"))
    with pytest.raises(EncoderError, match="unknown model"):
        get_family("resnet")


def test_an_encoder_without_its_constructors_cannot_be_instantiated() -> None:
    class Incomplete(FamilyEncoder):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


def test_a_family_is_built_through_its_registry_entry() -> None:
    encoder = create_encoder("efficientnet-lite0", runtime="torch")
    assert type(encoder) is get_family("efficientnet-lite0").encoder_class()
