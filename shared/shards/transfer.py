"""``geovr shards publish`` / ``pull``: copy a finalised store between fsspec locations.

Resumable (a destination file with the manifest's size and sha256 is skipped), hash-checked
(bytes are hashed while copied; a mismatch deletes the temporary copy and fails), and
crash-safe (each file goes to a ``.tmp-`` name, then is moved into place; ``index.json`` is
copied last, so an interrupted transfer never looks like a finished store).

The source is untrusted: ``index.json`` is read once (those exact bytes are what is copied), every
name in it is checked (``check_manifest_names``), every file copied must be a plain file covered by
a sha256 in it (``header.json`` and sidecars included), and a local destination is written as a
temporary sibling folder ``.tmp-pull-<name>`` that is verified and then renamed onto the absent or
empty destination, so nothing is ever written outside it and a non-empty destination holding
something else is refused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geovr.shared.errors import UsageError
from geovr.shared.hashing import CHUNK, sha256_file
from geovr.shared.manifest import Manifest
from geovr.shared.safety import (
    MAX_JSON_BYTES,
    CorruptStoreError,
    NotFinalizedError,
    check_regular_file,
    load_json_bytes,
    read_bounded,
)
from geovr.shared.stores.fsio import TMP_PREFIX, atomic_write_bytes, resolve
from geovr.shared.stores.verify import verify_store

__all__ = ["TransferReport", "transfer_store"]


@dataclass
class TransferReport:
    """What a transfer did."""

    copied: list[str] = field(default_factory=list)
    """Relative paths copied."""
    skipped: list[str] = field(default_factory=list)
    """Relative paths already present with the right sha256."""
    bytes_copied: int = 0
    """Bytes written to the destination."""


def _copy(sfs: Any, src: str, dfs: Any, dst: str, expect: str | None) -> int:
    parent = dst.rsplit("/", 1)[0]
    dfs.makedirs(parent, exist_ok=True)
    tmp = f"{parent}/{TMP_PREFIX}{dst.rsplit('/', 1)[1]}"
    h = hashlib.sha256()
    n = 0
    try:
        with sfs.open(src, "rb") as fi, dfs.open(tmp, "wb") as fo:
            while block := fi.read(CHUNK):
                h.update(block)
                fo.write(block)
                n += len(block)
        if expect is not None and h.hexdigest() != expect:
            raise CorruptStoreError(f"{src}: sha256 {h.hexdigest()[:16]}... != index.json {expect[:16]}...; not copied")
        dfs.mv(tmp, dst)
    except BaseException:
        if dfs.exists(tmp):
            dfs.rm(tmp)
        raise
    return n


def _read_index(sfs: Any, sroot: str, local: bool) -> tuple[bytes, Manifest]:
    path = f"{sroot}/index.json"
    if not sfs.exists(path):
        raise NotFinalizedError(f"{path}: no index.json; the store is not finalised")
    check_regular_file(path, sfs, sroot if local else None)
    with sfs.open(path, "rb") as f:
        data = read_bounded(f, MAX_JSON_BYTES + 1)
    man = Manifest.from_dict(load_json_bytes(data, path), path)
    missing = sorted(man.expected_meta_files() - {f.path for f in man.meta_files})
    if missing:
        raise CorruptStoreError(f"{path}: {len(missing)} store file(s) are not covered by a hash (first {missing[0]!r}; "
                                f"format {man.format_version}); re-finalize the source store before transferring it")
    if not man.clips_table_sha256:
        raise CorruptStoreError(f"{path}: the clip table {man.clips_table!r} has no sha256; refused")
    return data, man


def _file_list(man: Manifest) -> list[tuple[str, str]]:
    files = [(f.path, f.sha256) for f in man.meta_files]
    files += [(f"shards/{f.path}", f.sha256) for s in man.shards for f in s.files]
    files.append((man.clips_table, man.clips_table_sha256))
    return files


def _prune(tmp: str, keep: set[str]) -> None:
    """Remove from a resumed temporary folder everything that is not one of the files to copy."""
    for dirpath, dirs, files in os.walk(tmp, topdown=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, tmp).replace(os.sep, "/")
            if rel not in keep or os.path.islink(full) or not os.path.isfile(full):
                os.remove(full)


def transfer_store(src: str, dst: str, progress: Any = None) -> TransferReport:
    """Copy the finalised store ``src`` to ``dst`` (both local paths or fsspec URLs).

    Raises ``UsageError`` for a destination that holds anything but this same store (or is inside the
    source), ``StoreError`` for an unsafe or corrupt source (nothing is left in the destination).
    """
    sfs, sroot, slocal = resolve(src)
    dfs, droot, dlocal = resolve(dst)
    index_bytes, man = _read_index(sfs, sroot, slocal)
    files = _file_list(man)
    report = TransferReport()
    if not dlocal:
        dindex = f"{droot}/index.json"
        same_index = False
        if dfs.exists(dindex):
            with dfs.open(dindex, "rb") as f:
                if read_bounded(f, MAX_JSON_BYTES + 1) != index_bytes:
                    raise UsageError(f"{dst}: holds another store (its index.json differs); choose an empty destination")
            same_index = True
        _copy_all(sfs, sroot, slocal, dfs, droot, files, report, progress)
        if same_index and not report.copied:
            report.skipped.append("index.json")  # an unchanged store: nothing copied
        else:
            atomic_write_bytes(dindex, index_bytes, dfs)
            report.copied.append("index.json")
        return report
    if slocal:
        real_src, real_dst = os.path.realpath(sroot), os.path.realpath(droot)
        if os.path.commonpath([real_src, real_dst]) in (real_src, real_dst):
            raise UsageError(f"{dst}: destination and source {src} overlap (one is inside the other)")
    parent, base = os.path.split(droot)
    tmp = os.path.join(parent, f"{TMP_PREFIX}pull-{base}")
    if os.path.islink(tmp) or (os.path.exists(tmp) and not os.path.isdir(tmp)):
        os.remove(tmp)
    if os.path.lexists(droot):
        if os.path.islink(droot) or not os.path.isdir(droot):
            raise UsageError(f"{dst}: destination exists and is not a folder")
        if os.listdir(droot):
            idx = os.path.join(droot, "index.json")
            same = os.path.isfile(idx) and not os.path.islink(idx) and Path(idx).read_bytes() == index_bytes
            if not same:
                raise UsageError(f"{dst}: destination folder is not empty and does not hold this store; "
                                 "pull into a new or empty folder")
            if not verify_store(droot):
                report.skipped = [rel for rel, _ in files] + ["index.json"]
                return report
            # a damaged copy of this same store: repair it through the temporary folder
            shutil.rmtree(tmp, ignore_errors=True)
            os.rename(droot, tmp)
            os.remove(os.path.join(tmp, "index.json"))
    os.makedirs(parent, exist_ok=True)
    os.makedirs(tmp, exist_ok=True)
    _prune(tmp, {rel for rel, _ in files})
    lfs = resolve(tmp)[0]
    _copy_all(sfs, sroot, slocal, lfs, tmp, files, report, progress)
    atomic_write_bytes(os.path.join(tmp, "index.json"), index_bytes)
    report.copied.append("index.json")
    problems = verify_store(tmp)
    if problems:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorruptStoreError(f"{src}: the copy does not verify; nothing was written to {dst}:\n  " + "\n  ".join(problems))
    if os.path.isdir(droot):
        os.rmdir(droot)  # empty (checked above)
    os.rename(tmp, droot)
    return report


def _copy_all(sfs: Any, sroot: str, slocal: bool, dfs: Any, droot: str, files: list[tuple[str, str]],
              report: TransferReport, progress: Any) -> None:
    for rel, digest in files:
        d = f"{droot}/{rel}"
        if not os.path.normpath(d).startswith(os.path.normpath(droot) + "/"):  # names are checked; belt and braces
            raise CorruptStoreError(f"{rel!r}: resolves outside the destination; refused")
        if dfs.exists(d) and sha256_file(d, dfs)[0] == digest:
            report.skipped.append(rel)
        else:
            check_regular_file(f"{sroot}/{rel}", sfs, sroot if slocal else None)
            report.bytes_copied += _copy(sfs, f"{sroot}/{rel}", dfs, d, digest)
            report.copied.append(rel)
        if progress is not None:
            progress(rel)
