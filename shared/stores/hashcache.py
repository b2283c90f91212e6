"""Shard hashes verified once per file version: a small cache so a restarted reader does not rehash terabytes.

An entry is keyed by the file's path and ``(size, mtime_ns, ctime_ns, inode)`` and stores the sha256 that was
verified; any change to the file (``ctime`` cannot be set back by a user) makes it miss and rehash. The
cache lives in ``$GEOVR_CACHE/verified/`` (default ``~/.cache/geovr``), one JSON file per store, so a
read-only store works and a tampered cache only affects the user who owns it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from geovr.shared.stores.fsio import atomic_write_bytes

__all__ = ["HashCache", "cache_dir"]


def cache_dir() -> Path:
    """``$GEOVR_CACHE/verified`` (default ``~/.cache/geovr/verified``)."""
    return Path(os.environ.get("GEOVR_CACHE", Path.home() / ".cache" / "geovr")) / "verified"


def _stamp(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


class HashCache:
    """Verified ``path -> [size, mtime_ns, ctime_ns, inode, sha256]`` of one local store."""

    def __init__(self, root: str) -> None:
        key = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:32]
        self.path = cache_dir() / f"{key}.json"
        self.entries: dict[str, list] = {}
        with contextlib.suppress(OSError, ValueError, TypeError):
            if self.path.stat().st_size < (64 << 20):
                d = json.loads(self.path.read_text())
                if isinstance(d, dict):
                    self.entries = {k: v for k, v in d.items() if isinstance(v, list) and len(v) == 5}

    def hit(self, path: str, st: os.stat_result, sha256: str) -> bool:
        """Was this exact file version verified to have ``sha256``?"""
        return self.entries.get(path) == [*_stamp(st), sha256]

    def add(self, path: str, st: os.stat_result, sha256: str) -> None:
        self.entries[path] = [*_stamp(st), sha256]

    def save(self) -> None:
        """Write the cache (merged with what other processes wrote meanwhile); never fails the caller."""
        with contextlib.suppress(OSError):
            other = HashCache.__new__(HashCache)
            other.path, other.entries = self.path, {}
            with contextlib.suppress(OSError, ValueError, TypeError):
                d = json.loads(self.path.read_text())
                if isinstance(d, dict):
                    other.entries = d
            merged = {**other.entries, **self.entries}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(str(self.path), json.dumps(merged).encode())
