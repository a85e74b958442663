"""One cache for every network the package builds or loads (K-CROSS, the segmenter, LPIPS/DISTS/DeepIQA).

A network is built once per key -- what it is, how it was configured, the device -- and kept for the process.
Keys of networks read from a file include :func:`file_version` (path, modification time, size), so a checkpoint
rewritten in place (a retraining, an export) is read again instead of served stale.
:func:`clear_model_cache` empties the cache (tests, or freeing memory).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

__all__ = ["cached_model", "clear_model_cache", "file_version"]

T = TypeVar("T")
_MODELS: dict[Hashable, object] = {}


def cached_model(key: Hashable, build: Callable[[], T]) -> T:
    """The object cached under ``key``; ``build()`` makes it on first use (a failing build caches nothing)."""
    if key not in _MODELS:
        _MODELS[key] = build()
    return _MODELS[key]  # type: ignore[return-value]


def file_version(path: str | Path) -> tuple[str, int, int]:
    """``(resolved path, modification time in ns, size)``: part of the key of anything read from ``path``."""
    path = Path(path).resolve()
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


def clear_model_cache() -> None:
    """Forget every cached network: the next use builds or reads it again."""
    _MODELS.clear()
