"""Content hashes for shards and files (sha256, streamed; works on local paths and fsspec URLs)."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["CHUNK", "sha256_bytes", "sha256_file", "sha256_open_file"]

CHUNK = 1 << 20
"""Read size for streamed hashing (1 MiB)."""


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def sha256_open_file(f: Any) -> tuple[str, int]:
    """Hex sha256 and byte count of an open binary file object, read to its end."""
    h = hashlib.sha256()
    n = 0
    while True:
        block = f.read(CHUNK)
        if not block:
            break
        h.update(block)
        n += len(block)
    return h.hexdigest(), n


def sha256_file(path: str, fs: Any = None) -> tuple[str, int]:
    """Hex sha256 and size in bytes of ``path`` (local, or on the fsspec filesystem ``fs``)."""
    if fs is None:
        with open(path, "rb") as f:
            return sha256_open_file(f)
    with fs.open(path, "rb") as f:
        return sha256_open_file(f)
