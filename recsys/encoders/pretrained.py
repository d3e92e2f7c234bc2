"""Find CLIP weights without surprises: a given file, open_clip's cache, or a download where a network exists.

open_clip's own download retries for about a minute when the Hub cannot be reached. Here the cache is
checked first, the Hub is probed once with a short timeout, and a missing checkpoint becomes one clear
message that says how to get it and which encoder works without it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import open_clip
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache

from recsys.encoders.base import WeightsUnavailableError

_HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def register_arch(arch: str) -> str:
    """Return the open_clip model name for ``arch``: a built-in name, or a model-config JSON file that is
    registered with open_clip (its name is the file stem), as for custom or test architectures."""
    if arch.endswith(".json"):
        path = Path(arch)
        if not path.is_file():
            raise WeightsUnavailableError(f"model config not found: {arch}")
        open_clip.add_model_config(path)
        return path.stem
    if arch not in open_clip.list_models():
        raise WeightsUnavailableError(
            f"unknown open_clip architecture {arch!r}; see open_clip.list_models() or pass a config JSON"
        )
    return arch


def resolve_checkpoint(
    arch: str, pretrained: str | None, weights: str | None, cache_dir: str | None = None
) -> str:
    """Path to a local checkpoint for ``arch``: ``weights`` if given, else the cached or downloaded file
    of the ``pretrained`` tag. Raises :class:`WeightsUnavailableError` with instructions otherwise."""
    if weights:
        if not os.path.isfile(weights):
            raise WeightsUnavailableError(f"--weights file not found: {weights}")
        return weights
    if not pretrained:
        raise WeightsUnavailableError(f"CLIP {arch} needs a pretrained tag or --weights PATH")
    config = open_clip.get_pretrained_cfg(arch, pretrained)
    if not config:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise WeightsUnavailableError(f"{arch} has no pretrained tag {pretrained!r} (known tags: {tags})")
    cached = _cached_checkpoint(config, cache_dir)
    if cached:
        return cached
    host = _download_host(config)
    if not _reachable(host):
        raise WeightsUnavailableError(_missing_weights_message(arch, pretrained, host))
    try:
        return open_clip.download_pretrained(config, cache_dir=cache_dir)
    except Exception as error:  # any network or Hub failure means the same thing to the user
        raise WeightsUnavailableError(f"{_missing_weights_message(arch, pretrained, host)}\n({error})") from None


def _cached_checkpoint(config: dict, cache_dir: str | None) -> str | None:
    if config.get("hf_hub"):
        # open_clip's convention: "org/repo/" means the default file names, "org/repo/file" one file.
        repo_id, filename = os.path.split(config["hf_hub"])
        names = _HUB_FILES
        if filename:
            stem, suffix = os.path.splitext(filename)
            names = (stem + ".safetensors", filename) if suffix in (".bin", ".pth") else (filename,)
        for name in names:
            hit = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    if config.get("url"):
        target = Path(cache_dir or Path.home() / ".cache" / "clip") / os.path.basename(config["url"])
        if target.is_file():
            return str(target)
    return None


def _download_host(config: dict) -> str:
    if config.get("hf_hub"):
        return urlparse(hub_constants.ENDPOINT).hostname or "huggingface.co"
    return urlparse(config.get("url", "")).hostname or "huggingface.co"


def _reachable(host: str, timeout: float = 3.0) -> bool:
    if hub_constants.HF_HUB_OFFLINE:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _missing_weights_message(arch: str, pretrained: str, host: str) -> str:
    return (
        f"CLIP weights {arch}/{pretrained} are not in the local cache and {host} cannot be reached.\n"
        f"  To get them: on a machine with network run\n"
        f"    python -c \"import open_clip; open_clip.create_model('{arch}', pretrained='{pretrained}')\"\n"
        f"  and copy ~/.cache/huggingface to this machine, or download the checkpoint file and pass "
        f"--weights PATH.\n"
        f"  Without them, use an offline encoder: --model efficientnet-lite2-style (or efficientnet-lite0)"
    )
