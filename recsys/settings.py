"""How sleeve runs, resolved once into one object that commands pass down.

Like open_clip's ``PreprocessCfg``: the runtime, cache folder, weights location, pixel limit and progress
bars are decided in one place (the CLI's options or a notebook's defaults) instead of being threaded by
hand as five keyword arguments through every layer.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from index.store import repair_hint
from recsys.cache import default_cache_dir
from recsys.encoders.base import ModelSpec, ModelUnavailableError
from recsys.encoders.registry import RUNTIMES
from recsys.images import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from recsys.encoders.base import Encoder


@dataclasses.dataclass(frozen=True)
class Settings:
    """Run-time choices that do not change what a result means (only how fast or where it is kept)."""

    runtime: str = "auto"
    """Where image towers run: "auto" (fastest measured per family) or a name in recsys.encoders.RUNTIMES."""
    cache_dir: Path | None = None
    """Embeddings, cover text and ONNX exports; None: $SLEEVE_CACHE_DIR or ~/.cache/sleeve."""
    weights: str | None = None
    """A local CLIP checkpoint: for a new index, or where an index's checkpoint lies now if it moved."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Images larger than this are refused as decompression bombs."""
    progress: bool = True
    """Progress bars on stderr for long work."""
    threads: int = 0
    """Threads one query may use inside ONNX Runtime (the image tower) and FAISS (the search); 0: each library's
    default, one per core. Concurrent queries in one process, or several processes on one machine, each start
    that many, so fewer threads each can leave cores to the others (``serve --threads``, docs/serve.md)."""

    def __post_init__(self) -> None:
        RUNTIMES.check(self.runtime)
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (the libraries' default) or more, not {self.threads}")
        folder = default_cache_dir() if self.cache_dir is None else Path(self.cache_dir).expanduser()
        object.__setattr__(self, "cache_dir", folder)

    @property
    def cache(self) -> Path:
        """The resolved cache folder (``cache_dir`` is never None after construction)."""
        assert self.cache_dir is not None
        return self.cache_dir

    def limit_search_threads(self) -> None:
        """Give FAISS ``threads`` threads: its OpenMP pool is one per process, so this holds process-wide (it is
        called where an index is opened for queries)."""
        if self.threads:
            import faiss

            faiss.omp_set_num_threads(self.threads)

    def encoder_for(self, spec: ModelSpec, index_dir: str | Path | None = None, source: str | None = None) -> Encoder:
        """The encoder that made ``spec``'s vectors, on this runtime (its weights checksum is verified).

        When it cannot be made, the error names the command that rebuilds ``index_dir`` (from ``source``,
        ``--covers DIR`` or ``--manifest CSV``, when known)."""
        from recsys.encoders.factory import encoder_for_spec

        try:
            return encoder_for_spec(spec, self.runtime, self.cache, self.weights, self.threads)
        except ModelUnavailableError as error:
            if index_dir is None:
                raise
            raise ModelUnavailableError(f"{error}; {repair_hint(index_dir, source)}") from None
