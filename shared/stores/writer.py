"""``StoreWriter``: whole-shard, crash-safe writes of ``ClipTargets`` (one writer per shard prefix).

Commit protocol per shard: write everything under a ``.tmp-`` name (the sidecar too, holding the
files' hashes), fsync all of it in one concurrent batch, rename atomically to ``shards/<prefix>-<seq:05d>``
(Zarr group) or ``shards/<prefix>-<seq:05d>.tar``, fsync the folder, then rename the sidecar to
``shards/<name>.json`` and fsync the folder again. **The sidecar is the commit point**: a
shard without one is an interrupted write and is deleted by ``done()``. Ranks write with
different prefixes (``r000``, ``r001``, ...) into the same store; ``finalize_store`` merges.

A writer holds the exclusive lock ``STORE/.lock-<prefix>`` from construction to :meth:`StoreWriter.close`
(a second writer of the same prefix is refused with ``UsageError``), lists the shard folder once
(cleanup + next sequence number) and then counts shards in memory.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

import numpy as np

from geovr.shared.manifest import FileEntry, StoreHeader, header_differences
from geovr.shared.safety import IncompatibleStoreError, read_json_file
from geovr.shared.schema import ClipTargets
from geovr.shared.stores.clipcodec import clip_to_parts, frame_shapes
from geovr.shared.stores.finalize import read_sidecars
from geovr.shared.stores.fsio import (
    TMP_PREFIX,
    atomic_write_json,
    fsync_dir,
    fsync_paths,
    json_bytes,
    resolve,
    tmp_name,
    tree_entries,
)
from geovr.shared.stores.lock import PrefixLock
from geovr.shared.stores.sidecar import SHARD_NAME_RE, ClipFailure, ShardInfo, file_entries
from geovr.shared.stores.wds_index import INDEX_SUFFIX, build_wds_index
from geovr.shared.stores.wds_shard import write_wds_shard
from geovr.shared.stores.zarr_shard import write_zarr_shard

__all__ = ["StoreWriter", "committed_status", "open_or_create_header"]

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_]+$")


def open_or_create_header(root: str, header: StoreHeader) -> None:
    """Write ``root/header.json``, or check an existing one matches ``header`` (refuse naming the fields)."""
    path = os.path.join(root, "header.json")
    if os.path.exists(path):
        found = StoreHeader.from_dict(read_json_file(path), path)
        diffs = header_differences(found, header)
        if diffs:
            raise IncompatibleStoreError(
                f"{path}: the store was created with a different header; differing fields: " + "; ".join(diffs)
            )
        return
    os.makedirs(root, exist_ok=True)
    atomic_write_json(path, header.to_dict())


def committed_status(shards_dir: str) -> dict[str, str]:
    """``clip_id -> "ok" | "failed"`` over the committed shards (every prefix) of a local ``shards/`` folder
    (empty if there is none); reads the sidecars only."""
    status: dict[str, str] = {}
    for info in read_sidecars(shards_dir):
        for f in info.failures:
            status.setdefault(f.clip_id, "failed")
        for c in info.clips:
            status[c] = "ok"
    return status


class StoreWriter:
    """Writes whole shards of one prefix into a local store directory ``root``."""

    def __init__(self, root: str | os.PathLike[str], header: StoreHeader, shard_prefix: str = "r000") -> None:
        _fs, path, is_local = resolve(root)
        if not is_local:
            raise ValueError(f"{root}: StoreWriter writes local stores; publish remote copies with `geovr shards publish`")
        if not _PREFIX_RE.match(shard_prefix):
            raise ValueError(f"shard_prefix {shard_prefix!r} must match [A-Za-z0-9_]+ (no '-' or '.')")
        self.root = path
        self.header = header
        self.prefix = shard_prefix
        self.shards_dir = os.path.join(path, "shards")
        open_or_create_header(path, header)
        os.makedirs(self.shards_dir, exist_ok=True)
        self._lock: PrefixLock | None = PrefixLock(path, shard_prefix)
        self._seq: int | None = None

    def close(self) -> None:
        """Release the prefix lock (also released by the kernel if the process dies)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __del__(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ resume

    def _cleanup(self) -> None:
        """One listing of ``shards/``: delete this prefix's temp leftovers and shards without a sidecar
        (interrupted writes), and find the next sequence number."""
        entries = os.listdir(self.shards_dir)
        names = set(entries)
        seqs = [-1]
        for entry in entries:
            full = os.path.join(self.shards_dir, entry)
            if entry.startswith(f"{TMP_PREFIX}{self.prefix}-"):
                shutil.rmtree(full) if os.path.isdir(full) and not os.path.islink(full) else os.remove(full)
                continue
            stem = entry.split(".", 1)[0]
            m = SHARD_NAME_RE.match(stem)
            if not m or m.group(1) != self.prefix:
                continue
            if entry in (stem, f"{stem}.tar", f"{stem}{INDEX_SUFFIX}") and f"{stem}.json" not in names:
                shutil.rmtree(full) if os.path.isdir(full) and not os.path.islink(full) else os.remove(full)
                continue
            seqs.append(int(m.group(2)))
        self._seq = max(seqs) + 1

    def clean(self) -> None:
        """Delete this prefix's interrupted-write leftovers now (otherwise done before the first shard)."""
        self._cleanup()

    def shards(self) -> list[ShardInfo]:
        """All committed shards of the store (every prefix), sorted by name."""
        return read_sidecars(self.shards_dir)

    def done(self) -> dict[str, str]:
        """``clip_id -> "ok" | "failed"`` over committed shards; also removes interrupted-write leftovers."""
        self._cleanup()
        return committed_status(self.shards_dir)

    # ------------------------------------------------------------------ write

    def write_shard(self, clips: list[ClipTargets], failures: list[ClipFailure] | None = None) -> ShardInfo:
        """Write ``clips`` (+ failure records) as one new committed shard; returns its sidecar info.

        Raises ``ValueError`` naming the clip if a clip does not match the header, ids repeat, or
        (Zarr) clips disagree on per-frame shapes.
        """
        failures = list(failures or [])
        if not clips and not failures:
            raise ValueError("write_shard needs at least one clip or failure")
        ids = [c.clip_id for c in clips] + [f.clip_id for f in failures]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"write_shard: clip ids repeated within one shard: {dup}")
        if self._lock is None:
            raise ValueError(f"{self.root}: StoreWriter is closed")
        if self._seq is None:
            self._cleanup()
        parts = [clip_to_parts(c, self.header) for c in clips]
        metas = [p[0] for p in parts]
        frame_arrays: list[dict[str, np.ndarray]] = [p[1] for p in parts]
        clip_arrays: list[dict[str, np.ndarray]] = [p[2] for p in parts]
        self._check_shapes(clips, frame_arrays)
        assert self._seq is not None
        name = f"{self.prefix}-{self._seq:05d}"
        fmt = self.header.format
        final = os.path.join(self.shards_dir, name + (".tar" if fmt == "wds" else ""))
        tmp = os.path.join(self.shards_dir, f"{TMP_PREFIX}{name}-{os.getpid()}")
        tmp_idx = f"{tmp}{INDEX_SUFFIX}"
        side = os.path.join(self.shards_dir, f"{name}.json")
        tmp_side = tmp_name(side)
        try:
            frames = [c.frames for c in clips]
            if fmt == "wds":
                ext = "jpg" if self.header.frame_encoding == "jpeg" else "png"
                write_wds_shard(tmp, metas, frame_arrays, clip_arrays, frames, ext)
                with open(tmp_idx, "wb") as f:  # offset index beside the tar (wds_index.py)
                    f.write(build_wds_index(tmp))
                # hashed from the temporary files, before the renames that commit them
                files = file_entries(self.shards_dir, name, fmt, {f"{name}.tar": tmp, f"{name}{INDEX_SUFFIX}": tmp_idx})
            else:
                written = write_zarr_shard(tmp, metas, frame_arrays, clip_arrays, frames)  # hashed as written
                files = [FileEntry(path=f"{name}/{key}", bytes=size, sha256=digest) for key, size, digest in written]
            info = ShardInfo(
                name=name, format=fmt, files=files,
                clips=[c.clip_id for c in clips], num_frames=[c.num_frames for c in clips], failures=failures,
            )
            with open(tmp_side, "wb") as f:
                f.write(json_bytes(info.to_dict()))
            # every file of the shard and the sidecar's temporary made durable in one concurrent batch
            fsync_paths([*tree_entries(tmp), *([tmp_idx] if fmt == "wds" else []), tmp_side])
            if fmt == "wds":  # the index first: a tar without sidecar is removed with it
                os.rename(tmp_idx, os.path.join(self.shards_dir, name + INDEX_SUFFIX))
            os.rename(tmp, final)
            fsync_dir(self.shards_dir)
            os.replace(tmp_side, side)  # the commit point: the shard is durable under its final name
            fsync_dir(self.shards_dir)
        except BaseException:
            self._seq = None  # re-list (and clean) before the next shard
            raise
        self._seq += 1
        return info

    def _check_shapes(self, clips: list[ClipTargets], frame_arrays: list[dict[str, Any]]) -> None:
        if self.header.format != "zarr" or not frame_arrays:
            return
        ref = frame_shapes(frame_arrays[0])
        for clip, fa in zip(clips[1:], frame_arrays[1:], strict=True):
            got = frame_shapes(fa)
            if got != ref:
                diff = {k: (ref.get(k), got.get(k)) for k in set(ref) | set(got) if ref.get(k) != got.get(k)}
                raise ValueError(
                    f"clip {clip.clip_id!r}: per-frame shapes differ from clip {clips[0].clip_id!r} in the same "
                    f"Zarr shard: {diff}; group clips by resolution into separate shards"
                )
