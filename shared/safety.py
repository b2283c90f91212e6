"""Safe reading of untrusted store files: no pickle, bounded sizes, checked tar members.

Shards are shared between labs, so every file is untrusted input. Every failure raises a
``StoreError`` subclass whose message names the file and the problem.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CorruptStoreError",
    "IncompatibleStoreError",
    "NotFinalizedError",
    "StoreError",
    "TarLimits",
    "UnsafeContentError",
    "check_tar_member",
    "load_json_bytes",
    "load_npy_bytes",
    "read_json_file",
    "safe_tar_members",
]

MAX_JSON_BYTES = 64 << 20
"""Largest JSON document (index, sidecar, header, per-clip meta) a reader accepts: 64 MiB."""


class StoreError(Exception):
    """Base class of every store problem (corrupt, unsafe, incompatible, unfinished)."""


class UnsafeContentError(StoreError):
    """A file asks for something a reader must never do (pickle, path escape, link, oversize)."""


class CorruptStoreError(StoreError):
    """A file is missing, truncated, malformed or its hash does not match the manifest."""


class IncompatibleStoreError(StoreError):
    """A store's format version, header or teacher/sampling config does not match what was expected."""


class NotFinalizedError(StoreError):
    """The store has no ``index.json`` yet (``finalize_store`` was not run)."""


@dataclass(frozen=True)
class TarLimits:
    """Bounds applied to every tar member before anything is read from it."""

    max_member_bytes: int = 4 << 30
    """Largest single member in bytes (4 GiB)."""
    max_total_bytes: int = 64 << 30
    """Largest sum of member sizes in bytes (64 GiB)."""
    max_members: int = 1_000_000
    """Most members one tar may hold."""


def load_json_bytes(data: bytes, name: str, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON document from bytes; ``name`` (the file) is used in error messages."""
    if len(data) > max_bytes:
        raise UnsafeContentError(f"{name}: JSON document of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptStoreError(f"{name}: not valid UTF-8 JSON ({e})") from e


def read_json_file(path: str, fs: Any = None, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read and parse a bounded JSON file (local path, or on fsspec filesystem ``fs``)."""
    opener = open if fs is None else fs.open
    try:
        with opener(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError as e:
        raise CorruptStoreError(f"{path}: file is missing") from e
    return load_json_bytes(data, path, max_bytes)


def load_npy_bytes(data: bytes, name: str) -> np.ndarray:
    """Load a ``.npy`` payload without pickle; object / structured dtypes are refused."""
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise UnsafeContentError(f"{name}: .npy holds Python objects (pickle); refused") from e
        raise CorruptStoreError(f"{name}: not a valid .npy file ({e})") from e
    except (OSError, EOFError) as e:
        raise CorruptStoreError(f"{name}: not a valid .npy file ({e})") from e
    if not isinstance(arr, np.ndarray):
        raise CorruptStoreError(f"{name}: expected a single .npy array, got {type(arr).__name__}")
    if arr.dtype.hasobject or arr.dtype.fields is not None:
        raise UnsafeContentError(f"{name}: .npy dtype {arr.dtype} is not a plain numeric dtype; refused")
    return arr


def check_tar_member(m: tarfile.TarInfo, tar_name: str, limits: TarLimits) -> None:
    """Refuse absolute paths, ``..`` components, links, devices and oversized members."""
    name = m.name
    where = f"{tar_name}: member {name!r}"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeContentError(f"{where} has an absolute path")
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        raise UnsafeContentError(f"{where} escapes the archive with '..'")
    if m.issym() or m.islnk():
        raise UnsafeContentError(f"{where} is a {'symlink' if m.issym() else 'hard link'}; links are refused")
    if not (m.isfile() or m.isdir()):
        raise UnsafeContentError(f"{where} is a device, fifo or other special file; refused")
    if m.size > limits.max_member_bytes:
        raise UnsafeContentError(f"{where} is {m.size} bytes, over the {limits.max_member_bytes}-byte limit")


def safe_tar_members(tf: tarfile.TarFile, tar_name: str, limits: TarLimits | None = None) -> list[tarfile.TarInfo]:
    """All members of an open tar, each checked (and the total bounded) before any is read."""
    limits = limits or TarLimits()
    out: list[tarfile.TarInfo] = []
    total = 0
    try:
        for m in tf:
            check_tar_member(m, tar_name, limits)
            total += m.size
            if total > limits.max_total_bytes:
                raise UnsafeContentError(f"{tar_name}: members total over {limits.max_total_bytes} bytes")
            if len(out) >= limits.max_members:
                raise UnsafeContentError(f"{tar_name}: more than {limits.max_members} members")
            out.append(m)
    except tarfile.TarError as e:
        raise CorruptStoreError(f"{tar_name}: corrupt or truncated tar ({e})") from e
    return out
