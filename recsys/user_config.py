"""Per-user settings that do not belong on every command line, read from a small TOML file.

The first is the contact MusicBrainz asks every client to put in its User-Agent, so that it can reach
the person behind a misbehaving script instead of blocking it::

    # ~/.config/sleeve/config.toml
    [musicbrainz]
    contact = "you@example.org"
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from index.errors import SleeveError

CONFIG_ENV = "SLEEVE_CONFIG"


class ConfigError(SleeveError):
    """The user's settings or options are missing or unusable; the message says what to change where."""


def default_config_path() -> Path:
    """``$SLEEVE_CONFIG``, else ``$XDG_CONFIG_HOME/sleeve/config.toml`` (``~/.config`` when unset)."""
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "sleeve" / "config.toml"


def read_config(path: str | Path | None = None) -> dict:
    """The settings in ``path`` (default: :func:`default_config_path`); {} when the default file does not
    exist. A file named explicitly must exist."""
    explicit = path is not None or bool(os.environ.get(CONFIG_ENV))
    path = Path(path).expanduser() if path is not None else default_config_path()
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file not found: {path}") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read config file {path}: {error}") from None


def musicbrainz_contact(contact: str | None = None, config_path: str | Path | None = None) -> str:
    """The contact for the User-Agent: ``contact`` if given, else ``[musicbrainz] contact`` from the config."""
    source = "--contact"
    if contact is None:
        path = config_path if config_path is not None else default_config_path()
        section = read_config(config_path).get("musicbrainz") or {}
        contact = section.get("contact") if isinstance(section, dict) else None
        source = f"[musicbrainz] contact in {path}"
        if contact is None:
            raise ConfigError(
                "MusicBrainz asks every client for a way to contact its user (an e-mail address or a URL): "
                f'pass --contact you@example.org, or write contact = "you@example.org" under [musicbrainz] in {path}'
            )
    if not isinstance(contact, str) or not contact.strip() or any(ord(c) < 32 or ord(c) == 127 for c in contact):
        raise ConfigError(f"{source} must be a one-line e-mail address or URL, not {contact!r}")
    return contact.strip()
