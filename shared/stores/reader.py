"""``StoreReader``: random access and iteration over a finalised store (Zarr or WebDataset)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from geovr.shared.manifest import Manifest, StoreHeader, header_differences
from geovr.shared.safety import CorruptStoreError, IncompatibleStoreError, TarLimits
from geovr.shared.schema import ClipTargets
from geovr.shared.stores.clipcodec import clip_from_parts
from geovr.shared.stores.fsio import resolve
from geovr.shared.stores.verify import load_manifest, verify_store
from geovr.shared.stores.wds_index import INDEX_SUFFIX
from geovr.shared.stores.wds_shard import WdsShardReader, clip_key
from geovr.shared.stores.zarr_shard import ZarrShardReader, read_zarr_metas

__all__ = ["StoreReader"]


class StoreReader:
    """Read clips of the store at ``root`` (local path or fsspec URL such as ``memory://``, ``s3://``).

    Args:
        root: store directory / URL (must hold ``index.json``; ``NotFinalizedError`` otherwise).
        verify: recompute every file's sha256 first and raise ``CorruptStoreError`` listing problems.
        expect: a ``StoreHeader``, or a partial header dict (e.g. ``{"teacher": ..., "sampling": ...}``),
            the store must match; ``IncompatibleStoreError`` names each differing field.
        tar_limits: bounds on tar members (WebDataset stores).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        verify: bool = False,
        expect: StoreHeader | dict[str, Any] | None = None,
        tar_limits: TarLimits | None = None,
    ) -> None:
        self.url = os.fspath(root).rstrip("/")
        self.fs, self.root, self.is_local = resolve(self.url)
        if self.is_local:
            self.url = self.root
        self.manifest: Manifest = load_manifest(self.fs, self.root)
        self.header: StoreHeader = self.manifest.header
        if expect is not None:
            if isinstance(expect, dict):
                expect = {k: v.to_dict() if hasattr(v, "to_dict") else v for k, v in expect.items()}
            diffs = header_differences(self.header, expect)
            if diffs:
                raise IncompatibleStoreError(f"{self.url}: store does not match the expected config: " + "; ".join(diffs))
        if verify:
            problems = verify_store(self.url)
            if problems:
                raise CorruptStoreError(f"{self.url}: verification failed:\n  " + "\n  ".join(problems))
        self._limits = tar_limits
        self._rows: dict[str, tuple[str, int]] = {}
        self.failures: dict[str, str] = {}
        """``clip_id -> reason`` of clips that failed extraction."""
        self._load_table()
        self._shards: dict[str, Any] = {}
        self.max_open_shards = 16
        """Shard readers kept open (oldest dropped first); each holds its shard's metadata, no file handle."""

    def _load_table(self) -> None:
        from geovr.shared.tables import read_rows

        path = f"{self.root}/{self.manifest.clips_table}"
        try:
            with self.fs.open(path, "rb") as f:
                rows = read_rows(f)
        except FileNotFoundError as e:
            raise CorruptStoreError(f"{path}: missing clip table") from e
        except Exception as e:
            raise CorruptStoreError(f"{path}: unreadable clip table ({type(e).__name__}: {e})") from e
        for r in rows:
            if r["status"] == "ok":
                self._rows[r["clip_id"]] = (r["shard"], int(r["row"]))
            else:
                self.failures[r["clip_id"]] = r["reason"]

    @property
    def clip_ids(self) -> list[str]:
        """Stored clip ids in shard / row order."""
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._rows

    def _shard(self, name: str) -> Any:
        if name not in self._shards:
            if len(self._shards) >= self.max_open_shards:
                self._shards.pop(next(iter(self._shards)))
            if self.header.format == "zarr":
                self._shards[name] = ZarrShardReader(f"{self.url}/shards/{name}", self.is_local)
            else:
                self._shards[name] = self._wds_shard(name)
        return self._shards[name]

    def _wds_shard(self, name: str) -> WdsShardReader:
        """The tar of shard ``name``: indexed (one ranged read per clip) when the manifest lists its index."""
        if not hasattr(self, "_files"):
            self._files = {f.path: f for s in self.manifest.shards for f in s.files}
            self._samples = {s.name: s.samples for s in self.manifest.shards}
        files = self._files
        tar, idx = files.get(f"{name}.tar"), files.get(f"{name}{INDEX_SUFFIX}")
        base = f"{self.root}/shards/{name}"
        if tar is None or idx is None:
            return WdsShardReader(f"{base}.tar", self.fs, self._limits)
        return WdsShardReader(f"{base}.tar", self.fs, self._limits, index_path=f"{base}{INDEX_SUFFIX}", tar_bytes=tar.bytes,
                              num_clips=self._samples[name])

    def __getitem__(self, clip_id: str) -> ClipTargets:
        if clip_id not in self._rows:
            why = f" (extraction failed: {self.failures[clip_id]})" if clip_id in self.failures else ""
            raise KeyError(f"clip {clip_id!r} is not stored in {self.url}{why}")
        name, row = self._rows[clip_id]
        shard = self._shard(name)
        where = f"{self.url}/shards/{name} clip {clip_id!r}"
        if self.header.format == "zarr":
            if row >= len(shard):
                raise CorruptStoreError(f"{where}: row {row} beyond the shard's {len(shard)} clips")
            meta, arrays, frames = shard.read(row)
        else:
            meta, arrays, frames = shard.read_key(clip_key(clip_id), row)
        if meta.get("clip_id") != clip_id:
            raise CorruptStoreError(f"{where}: stored record is for clip {meta.get('clip_id')!r}")
        return clip_from_parts(meta, arrays, frames, self.header, where)

    def iter_meta(self) -> Iterator[dict[str, Any]]:
        """Per-clip metadata (``ClipTargets.meta_dict()``) of every stored clip, shard by shard,
        without reading or decoding any array or frame: Zarr shards' group attributes, WebDataset
        samples' ``.meta.json`` members. Each record's ``clip_id`` is checked against the clip table."""
        by_shard: dict[str, list[tuple[str, int]]] = {}
        for cid, (name, row) in self._rows.items():
            by_shard.setdefault(name, []).append((cid, row))
        for name, rows in by_shard.items():
            where = f"{self.url}/shards/{name}"
            if self.header.format == "zarr":
                metas = read_zarr_metas(where, self.is_local)
                for cid, row in rows:
                    if row >= len(metas):
                        raise CorruptStoreError(f"{where} clip {cid!r}: row {row} beyond the shard's {len(metas)} clips")
                    yield self._checked_meta(metas[row], cid, where)
            else:
                metas = self._shard(name).read_metas([clip_key(cid) for cid, _ in rows], [row for _, row in rows])
                for (cid, _), meta in zip(rows, metas, strict=True):
                    yield self._checked_meta(meta, cid, where)

    @staticmethod
    def _checked_meta(meta: Any, clip_id: str, where: str) -> dict[str, Any]:
        if not isinstance(meta, dict) or meta.get("clip_id") != clip_id:
            got = meta.get("clip_id") if isinstance(meta, dict) else type(meta).__name__
            raise CorruptStoreError(f"{where} clip {clip_id!r}: stored record is for clip {got!r}")
        return meta

    def __iter__(self) -> Iterator[ClipTargets]:
        for cid in self._rows:
            yield self[cid]
