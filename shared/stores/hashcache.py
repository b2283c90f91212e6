"""Shard hashes verified once per file version: a small cache so a restarted reader does not rehash terabytes.

An entry maps a file's path to its *stamp* plus the sha256 that was verified; a file whose stamp changed
misses and is rehashed. The cache lives in ``$GEOVR_CACHE/verified/`` (default ``~/.cache/geovr``), one JSON
file per store, so a read-only store works and a tampered cache only affects the user who owns it.

Stamps:

- **local files**: ``(size, mtime_ns, ctime_ns, inode)``; any change to the file (``ctime`` cannot be set
  back by a user) makes it miss.
- **remote objects** (``s3://``, ``http(s)://``, any fsspec store): ``(size, ETag, Last-Modified,
  VersionId)`` from a fresh ``fs.info()`` (listing caches are dropped first), and only when the server reports
  a *strong* ETag (``W/`` weak validators and objects without one are never cached: rehashed on every open, as
  before). An object that is rewritten gets a new ETag (S3: the MD5 of the content, or of its parts), a new
  Last-Modified and, in a versioned bucket, a new VersionId, so it misses. The cache file of a remote store is
  keyed by the protocol, the endpoint (``endpoint_url``) and the store's path, so two servers never share
  entries.

Why a remote cache does not weaken the check: the hash of a remote object proves what the server sent
while it was hashed; clip reads that follow are separate requests the server may answer differently (it
already could, between the first open and the reads of one run). A cache hit keeps exactly that guarantee
for the object version the server reports, and every clip read still checks the content it gets (dtypes,
shapes, finite values, frame headers: ``clipcheck``). What the cache assumes is what the reads assume:
that an object the server reports unchanged (same size, strong ETag, Last-Modified, version) holds the same
bytes. Delete ``$GEOVR_CACHE/verified`` (or use a fresh ``GEOVR_CACHE``) to force a full rehash.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from geovr.shared.stores.fsio import atomic_write_bytes

__all__ = ["HashCache", "cache_dir", "local_stamp", "remote_stamp"]


def cache_dir() -> Path:
    """``$GEOVR_CACHE/verified`` (default ``~/.cache/geovr/verified``)."""
    return Path(os.environ.get("GEOVR_CACHE", Path.home() / ".cache" / "geovr")) / "verified"


def local_stamp(st: os.stat_result) -> list:
    """``[size, mtime_ns, ctime_ns, inode]`` of a local file."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _info_get(info: dict[str, Any], *names: str) -> str:
    for n in names:
        for k, v in info.items():
            if k.lower() == n.lower() and v not in (None, ""):
                return str(v)
    return ""


def remote_stamp(fs: Any, path: str) -> list:
    """``[size, etag, last_modified, version_id]`` of a remote object from a fresh ``fs.info``; ``etag`` is ``""``
    (the stamp never hits) when the server reports no strong ETag."""
    with contextlib.suppress(Exception):
        fs.invalidate_cache(path)  # s3fs answers info() from its listing cache, which may be stale
    info = fs.info(path)
    etag = _info_get(info, "ETag")
    if etag.startswith(("W/", "w/")):
        etag = ""
    size = info.get("size")
    if not isinstance(size, int):
        from geovr.shared.safety import CorruptStoreError

        raise CorruptStoreError(f"{path}: the server reports no size for it ({size!r})")
    return [size, etag, _info_get(info, "LastModified", "Last-Modified", "mtime"),
            _info_get(info, "VersionId")]


def _store_key(fs: Any, root: str, is_local: bool) -> str:
    if is_local:
        ident = os.path.realpath(root)
    else:
        opts = getattr(fs, "storage_options", {}) or {}
        endpoint = opts.get("endpoint_url") or (opts.get("client_kwargs") or {}).get("endpoint_url") or ""
        proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        ident = json.dumps(["remote", proto, str(endpoint), root])
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


class HashCache:
    """Verified ``path -> [*stamp, sha256]`` of one store (local, or remote with ``fs``)."""

    def __init__(self, root: str, fs: Any = None, is_local: bool = True) -> None:
        self.fs, self.is_local = fs, is_local
        self.path = cache_dir() / f"{_store_key(fs, root, is_local)}.json"
        self.entries: dict[str, list] = {}
        with contextlib.suppress(OSError, ValueError, TypeError):
            if self.path.stat().st_size < (64 << 20):
                d = json.loads(self.path.read_text())
                if isinstance(d, dict):
                    self.entries = {k: v for k, v in d.items() if isinstance(v, list) and len(v) == 5}

    @classmethod
    def for_store(cls, root: str, fs: Any, is_local: bool) -> HashCache:
        """The cache of the store at ``root`` on ``fs``."""
        return cls(root, fs, is_local)

    def stamp(self, fs: Any, path: str) -> list:
        """The stamp of ``path`` now (its first element is the size in bytes)."""
        return local_stamp(os.stat(path)) if self.is_local else remote_stamp(fs, path)

    @staticmethod
    def _usable(stamp: list) -> bool:
        return len(stamp) == 4 and (isinstance(stamp[1], int) or bool(stamp[1]))  # local, or a strong ETag

    def hit(self, path: str, stamp: list | os.stat_result, sha256: str) -> bool:
        """Was this exact file version verified to have ``sha256``?"""
        if isinstance(stamp, os.stat_result):
            stamp = local_stamp(stamp)
        return self._usable(stamp) and self.entries.get(path) == [*stamp, sha256]

    def add(self, path: str, stamp: list | os.stat_result, sha256: str) -> None:
        if isinstance(stamp, os.stat_result):
            stamp = local_stamp(stamp)
        if self._usable(stamp):
            self.entries[path] = [*stamp, sha256]

    def save(self) -> None:
        """Write the cache (merged with what other processes wrote meanwhile); never fails the caller."""
        with contextlib.suppress(OSError):
            other: dict = {}
            with contextlib.suppress(OSError, ValueError, TypeError):
                d = json.loads(self.path.read_text())
                if isinstance(d, dict):
                    other = d
            merged = {**other, **self.entries}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(str(self.path), json.dumps(merged).encode())
