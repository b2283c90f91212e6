"""Safe reading of untrusted store files: no pickle, bounded sizes, checked tar members.

Shards are shared between labs, so every file is untrusted input. Every failure raises a
``StoreError`` subclass whose message names the file and the problem.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CorruptStoreError",
    "IncompatibleStoreError",
    "LocalFileChecker",
    "NotFinalizedError",
    "StoreError",
    "TarLimits",
    "UnsafeContentError",
    "check_regular_file",
    "check_rel_path",
    "check_tar_member",
    "is_local_fs",
    "load_json_bytes",
    "load_npy_bytes",
    "read_bounded",
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
    except RecursionError as e:
        raise UnsafeContentError(f"{name}: JSON nested too deeply; refused") from e


def check_rel_path(rel: object, where: str) -> str:
    """``rel`` as a safe ``/``-separated path relative to a store root, else ``UnsafeContentError``.

    Refused: non-strings, empty, absolute (``/x``, ``\\x``, ``C:``), ``..`` / ``.`` / empty components,
    backslashes, NUL and other control characters. ``where`` names the file the name was read from.
    """
    if not isinstance(rel, str) or not rel:
        raise UnsafeContentError(f"{where}: path {rel!r} is not a non-empty string")
    if rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":") or "\\" in rel:
        raise UnsafeContentError(f"{where}: path {rel!r} is absolute or uses backslashes; refused")
    if any(ord(c) < 32 or c == "\x7f" for c in rel):
        raise UnsafeContentError(f"{where}: path {rel!r} holds control characters; refused")
    parts = rel.split("/")
    if ".." in parts:
        raise UnsafeContentError(f"{where}: path {rel!r} escapes the store with '..'; refused")
    if any(p in ("", ".") for p in parts):
        raise UnsafeContentError(f"{where}: path {rel!r} has empty or '.' components; refused")
    return rel


def is_local_fs(fs: Any) -> bool:
    if fs is None:
        return True
    proto = getattr(fs, "protocol", None)
    protos = proto if isinstance(proto, tuple) else (proto,)
    return "file" in protos or "local" in protos


def _lstat_plain(path: str) -> os.stat_result:
    """``lstat`` of a local path that must be a plain file (not a symlink, FIFO, device, socket or folder)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError as e:
        raise CorruptStoreError(f"{path}: file is missing") from e
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeContentError(f"{path}: is a symlink; store files must be plain files")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeContentError(f"{path}: is a FIFO, device, socket or folder, not a plain file; refused")
    return st


def index_mismatch(stored: np.ndarray, rebuilt: np.ndarray) -> tuple[int, list | None, list | None] | None:
    """``None`` when a shard's stored offset index equals the one rebuilt from the shard itself; else ``(row,
    rebuilt row, stored row)`` of the first row that differs (``None`` for a row past either end, or for a stored
    array that is not a table)."""
    if stored.shape == rebuilt.shape and np.array_equal(stored, rebuilt):
        return None
    n = min(len(stored), len(rebuilt)) if stored.ndim and rebuilt.ndim else 0
    row = next((i for i in range(n) if not np.array_equal(stored[i], rebuilt[i])), n)
    return (row, rebuilt[row].tolist() if row < len(rebuilt) else None,
            stored[row].tolist() if stored.ndim == 2 and row < len(stored) else None)


def check_regular_file(path: str, fs: Any = None, root: str | None = None) -> None:
    """Refuse anything but a plain file at ``path`` before it is opened: a symlink, FIFO, device, socket
    or folder would leak private files or hang a reader. For local files, with ``root`` given, the real
    path must also lie inside ``root`` (no symlinked parent folder). Missing -> ``CorruptStoreError``."""
    if is_local_fs(fs):
        _lstat_plain(path)
        if root is not None:
            real, real_root = os.path.realpath(path), os.path.realpath(root)
            if os.path.commonpath([real, real_root]) != real_root:
                raise UnsafeContentError(f"{path}: resolves to {real}, outside the store {root} (symlinked folder)")
        return
    try:
        info = fs.info(path)
    except FileNotFoundError as e:
        raise CorruptStoreError(f"{path}: file is missing") from e
    if info.get("type") != "file" or info.get("islink"):
        raise UnsafeContentError(f"{path}: is a {info.get('type')!r}, not a plain file; refused")


class LocalFileChecker:
    """``check_regular_file(path, None, root)`` for many local files under one ``root`` (one shard's files): the
    root's real path is resolved once and each folder's once (one ``lstat`` per folder, ``realpath`` only where a
    folder is a symlink), instead of a full ``realpath`` of the file and of the root per call (~80 µs each).
    Meant to live for one check of one shard: a folder swapped for a symlink afterwards is seen by the next one."""

    def __init__(self, root: str) -> None:
        self.root = os.path.normpath(root)
        self.real_root = os.path.realpath(root)
        self._dirs: dict[str, str] = {self.root: self.real_root}

    def _real_dir(self, d: str) -> str:
        real = self._dirs.get(d)
        if real is None:
            parent, name = os.path.split(d)
            if not name or parent == d:
                real = os.path.realpath(d)
            else:
                try:
                    st = os.lstat(d)
                except FileNotFoundError as e:
                    raise CorruptStoreError(f"{d}: folder is missing") from e
                real = os.path.realpath(d) if stat.S_ISLNK(st.st_mode) else os.path.join(self._real_dir(parent), name)
            self._dirs[d] = real
        return real

    def check(self, path: str) -> os.stat_result:
        """Refuse what ``check_regular_file`` refuses; return the file's ``lstat`` (that of a plain file)."""
        path = os.path.normpath(path)
        st = _lstat_plain(path)
        real = os.path.join(self._real_dir(os.path.dirname(path)), os.path.basename(path))
        if os.path.commonpath([real, self.real_root]) != self.real_root:
            raise UnsafeContentError(f"{path}: resolves to {real}, outside the store {self.root} (symlinked folder)")
        return st


def read_bounded(f: Any, max_bytes: int) -> bytes:
    """At most ``max_bytes`` from an open binary file, read in 1 MiB blocks (``f.read(n)`` would allocate ``n``
    up front, 64 MiB per small JSON file)."""
    parts, n = [], 0
    while n < max_bytes:
        block = f.read(min(1 << 20, max_bytes - n))
        if not block:
            break
        parts.append(block)
        n += len(block)
    return b"".join(parts)


def read_json_file(path: str, fs: Any = None, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read and parse a bounded JSON file (local path, or on fsspec filesystem ``fs``)."""
    check_regular_file(path, fs)
    opener = open if fs is None else fs.open
    try:
        with opener(path, "rb") as f:
            data = read_bounded(f, max_bytes + 1)
    except FileNotFoundError as e:
        raise CorruptStoreError(f"{path}: file is missing") from e
    return load_json_bytes(data, path, max_bytes)


NUMERIC_KINDS = "biuf"
"""numpy dtype kinds a store array may have: bool, signed / unsigned int, float."""


def load_npy_bytes(data: bytes, name: str) -> np.ndarray:
    """Load a ``.npy`` payload without pickle; only plain numeric dtypes (``NUMERIC_KINDS``) are accepted.

    The header is parsed and its shape checked against the payload size *before* anything is allocated.
    """
    from numpy.lib import format as npf

    f = io.BytesIO(data)
    try:
        version = npf.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npf.read_array_header_1_0(f, max_header_size=10_000)
        elif version == (2, 0):
            shape, fortran, dtype = npf.read_array_header_2_0(f, max_header_size=10_000)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except ValueError as e:
        raise CorruptStoreError(f"{name}: not a valid .npy file ({e})") from e
    except (OSError, EOFError, SyntaxError, TypeError) as e:
        raise CorruptStoreError(f"{name}: not a valid .npy file ({type(e).__name__}: {e})") from e
    if dtype.hasobject:
        raise UnsafeContentError(f"{name}: .npy holds Python objects (pickle); refused")
    if dtype.fields is not None or dtype.kind not in NUMERIC_KINDS or dtype.subdtype is not None:
        raise UnsafeContentError(f"{name}: .npy dtype {dtype} is not a plain numeric dtype; refused")
    count = 1
    for d in shape:
        if not isinstance(d, int) or d < 0:
            raise CorruptStoreError(f"{name}: .npy shape {shape} is invalid")
        count *= d
    payload = len(data) - f.tell()
    if count * dtype.itemsize != payload:
        raise CorruptStoreError(f"{name}: .npy header says shape {shape} {dtype} ({count * dtype.itemsize} bytes) "
                                f"but holds {payload} bytes")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=f.tell())
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return arr.copy()


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
