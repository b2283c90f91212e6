"""``geovr shards publish`` / ``pull``: copy a finalised store between fsspec locations.

Resumable (a destination file with the manifest's size and sha256 is skipped), hash-checked
(bytes are hashed while copied; a mismatch deletes the temporary copy and fails), and
crash-safe (each file goes to a ``.tmp-`` name, then is moved into place; ``index.json`` is
copied last, so an interrupted transfer never looks like a finished store).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from geovr.shared.hashing import CHUNK, sha256_file
from geovr.shared.safety import CorruptStoreError
from geovr.shared.stores.fsio import TMP_PREFIX, resolve
from geovr.shared.stores.verify import load_manifest

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


def transfer_store(src: str, dst: str, progress: Any = None) -> TransferReport:
    """Copy the finalised store ``src`` to ``dst`` (both local paths or fsspec URLs)."""
    sfs, sroot, _ = resolve(src)
    dfs, droot, _ = resolve(dst)
    man = load_manifest(sfs, sroot)
    index_sha, _n = sha256_file(f"{sroot}/index.json", sfs)  # copy exactly the manifest that was checked
    files: list[tuple[str, str | None]] = [("header.json", None)]
    for s in man.shards:
        files += [(f"shards/{f.path}", f.sha256) for f in s.files]
        files.append((f"shards/{s.name}.json", None))
    files.append((man.clips_table, man.clips_table_sha256 or None))
    report = TransferReport()
    for rel, digest in files:
        d = f"{droot}/{rel}"
        if digest is None and dfs.exists(d):  # small JSON files the index names without a hash: compare contents
            digest = sha256_file(f"{sroot}/{rel}", sfs)[0]
        if digest is not None and dfs.exists(d) and sha256_file(d, dfs)[0] == digest:
            report.skipped.append(rel)
        else:
            report.bytes_copied += _copy(sfs, f"{sroot}/{rel}", dfs, d, digest)
            report.copied.append(rel)
        if progress is not None:
            progress(rel)
    index = f"{droot}/index.json"
    if not report.copied and dfs.exists(index) and sha256_file(index, dfs)[0] == index_sha:
        report.skipped.append("index.json")  # an unchanged store: nothing copied
    else:
        report.bytes_copied += _copy(sfs, f"{sroot}/index.json", dfs, index, index_sha)
        report.copied.append("index.json")
    return report
