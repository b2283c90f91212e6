"""``StoreReader``: random access and iteration over a finalised store (Zarr or WebDataset)."""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from collections.abc import Container, Iterator
from typing import Any

from geovr.shared.hashing import sha256_bytes, sha256_file
from geovr.shared.manifest import Manifest, ShardEntry, StoreHeader, header_differences
from geovr.shared.safety import (
    CorruptStoreError,
    IncompatibleStoreError,
    LocalFileChecker,
    TarLimits,
    check_regular_file,
)
from geovr.shared.schema import ClipTargets
from geovr.shared.stores.clipcheck import ReadLimits, check_arrays, check_frames, check_meta, check_shape
from geovr.shared.stores.clipcodec import clip_from_parts
from geovr.shared.stores.fsio import resolve
from geovr.shared.stores.hashcache import HashCache, local_stamp
from geovr.shared.stores.verify import list_store_files, load_manifest, verify_store
from geovr.shared.stores.wds_index import INDEX_SUFFIX, verify_tar_index
from geovr.shared.stores.wds_shard import WdsShardReader, clip_key
from geovr.shared.stores.zarr_shard import INDEX_FILE, ZarrShardReader, read_zarr_metas, verify_zarr_index

__all__ = ["StoreReader"]


class StoreReader:
    """Read clips of the store at ``root`` (local path or fsspec URL such as ``memory://``, ``s3://``).

    Args:
        root: store directory / URL (must hold ``index.json``; ``NotFinalizedError`` otherwise).
        verify: recompute every file's sha256 first and raise ``CorruptStoreError`` listing problems.
        expect: a ``StoreHeader``, or a partial header dict (e.g. ``{"teacher": ..., "sampling": ...}``),
            the store must match; ``IncompatibleStoreError`` names each differing field.
        tar_limits: bounds on tar members (WebDataset stores).
        verify_shards: check each shard's files (plain files, sizes, sha256 against ``index.json``; a
            WebDataset tar's members against its offset index) the first time the shard is opened; verified
            file versions are remembered in ``$GEOVR_CACHE/verified`` (local: size, mtime, ctime, inode;
            remote: size, strong ETag, Last-Modified, VersionId; see ``hashcache``) so a restart does not rehash.
        limits: bounds on a clip's frames, frame size and feature values, checked before allocation.

    Every clip read is checked against the header (dtypes, shapes, one feature width, finite values,
    frame image headers) and refused with a ``StoreError`` naming the shard and clip.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        verify: bool = False,
        expect: StoreHeader | dict[str, Any] | None = None,
        tar_limits: TarLimits | None = None,
        verify_shards: bool = True,
        limits: ReadLimits | None = None,
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
        self.read_limits = limits or ReadLimits()
        self.verify_shards = verify_shards
        self._entries: dict[str, ShardEntry] = {e.name: e for e in self.manifest.shards}
        self._verified: set[str] = set()
        self._rows: dict[str, tuple[str, int]] = {}
        self.failures: dict[str, str] = {}
        """``clip_id -> reason`` of clips that failed extraction."""
        self._load_table()
        self._shards: OrderedDict[str, Any] = OrderedDict()
        self._shard_bytes: dict[str, int] = {}
        self._hash_cache: HashCache | None = None
        self._array_metas: dict[bytes, Any] = {}
        self.max_open_shards = 65536
        """Shard handles kept open (least recently used dropped first); no file handle is held. A handle
        costs ~100 KB per 1000-clip indexed Zarr shard, 32 bytes per clip for WebDataset, see ``nbytes``."""
        self.max_open_bytes = 256 << 20
        """Memory bound of the kept handles together (their ``nbytes``), least recently used dropped first."""

    def _load_table(self) -> None:
        from geovr.shared.tables import read_rows

        path = f"{self.root}/{self.manifest.clips_table}"
        check_regular_file(path, self.fs, self.root if self.is_local else None)
        try:
            with self.fs.open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError as e:
            raise CorruptStoreError(f"{path}: missing clip table") from e
        if self.manifest.clips_table_sha256 and sha256_bytes(data) != self.manifest.clips_table_sha256:
            raise CorruptStoreError(f"{path}: sha256 does not match index.json (corrupted or replaced)")
        try:
            rows = read_rows(io.BytesIO(data))
        except Exception as e:
            raise CorruptStoreError(f"{path}: unreadable clip table ({type(e).__name__}: {e})") from e
        for r in rows:
            try:
                cid, shard, row, status = str(r["clip_id"]), str(r["shard"]), int(r["row"]), str(r["status"])
            except (KeyError, TypeError, ValueError) as e:
                raise CorruptStoreError(f"{path}: malformed row {r!r}") from e
            if status == "ok":
                entry = self._entries.get(shard)
                if entry is None or not 0 <= row < entry.samples:
                    raise CorruptStoreError(f"{path}: clip {cid!r} points at shard {shard!r} row {row}, "
                                            "which index.json does not list")
                self._rows[cid] = (shard, row)
            else:
                self.failures[cid] = str(r.get("reason", ""))

    def verify_shard(self, name: str, cache: HashCache | None = None) -> None:
        """Check shard ``name``'s files against ``index.json`` (plain files, sizes, sha256), once per reader;
        ``CorruptStoreError`` / ``UnsafeContentError`` naming the file otherwise. A WebDataset tar with an offset
        index is hashed in the same pass that rebuilds its index from the tar's headers (``verify_tar_index``):
        a duplicate or appended member, or an index that does not describe the tar, is refused here too.
        Verified file versions are remembered in the hash cache (``HashCache``) only when the whole shard passed;
        the reader loads its store's cache once and shares it across shards (saved when a file was hashed)."""
        if name in self._verified:
            return
        entry = self._entries[name]
        own = cache is None
        if cache is None:
            if self._hash_cache is None:
                self._hash_cache = HashCache.for_store(self.root, self.fs, self.is_local)
            cache = self._hash_cache
        checker = LocalFileChecker(self.root) if self.is_local else None
        tar_name = f"{name}.tar"
        index_name = f"{name}{INDEX_SUFFIX}"
        names = {f.path for f in entry.files}
        indexed = self.header.format == "wds" and {tar_name, index_name} <= names
        # the reader opens the shard's tar, or any file zarr finds in its folder: each must be a listed (hashed,
        # checked) file; an unlisted one (a symlink, a FIFO, unhashed data) is refused as `shards verify` does
        if self.header.format == "wds":
            unlisted = [] if tar_name in names else [tar_name]
        else:
            unlisted = [f"{name}/{rel}" for rel in list_store_files(self.fs, f"{self.root}/shards/{name}")
                        if f"{name}/{rel}" not in names]
        if unlisted:
            raise CorruptStoreError(f"{self.root}/shards/{unlisted[0]}: shard file not listed in index.json; refused")
        todo = []  # (entry, path, stamp) of the files the cache does not vouch for; the tar last
        for f in sorted(entry.files, key=lambda f: f.path == tar_name):
            path = f"{self.root}/shards/{f.path}"
            if checker is not None:  # local: one lstat per file and folder; a plain file's lstat is its stat
                stamp = local_stamp(checker.check(path))
            else:
                check_regular_file(path, self.fs, None)
                stamp = cache.stamp(self.fs, path)
            if int(stamp[0]) != f.bytes:
                raise CorruptStoreError(f"{path}: {stamp[0]} bytes, index.json says {f.bytes} (truncated or rewritten)")
            # a tar is checked against its index again whenever either of the two changed
            if not cache.hit(path, stamp, f.sha256) or (f.path == tar_name and indexed and todo):
                todo.append((f, path, stamp))
        passed = []
        for f, path, stamp in todo:
            if indexed and f.path == tar_name:
                rows = sorted((row, cid) for cid, (s, row) in self._rows.items() if s == name)
                keys = [clip_key(cid) for _row, cid in rows]
                problems = verify_tar_index(self.fs, path, f"{self.root}/shards/{index_name}", entry.samples, keys,
                                            f.sha256, self._limits)
                if problems:
                    raise CorruptStoreError(problems[0])
            else:
                digest, _n = sha256_file(path, None if self.is_local else self.fs)
                if digest != f.sha256:
                    raise CorruptStoreError(f"{path}: sha256 {digest[:16]}... != index.json {f.sha256[:16]}... "
                                            "(corrupted)")
            passed.append((path, stamp, f.sha256))
        if passed and self.header.format == "zarr" and {f"{name}/{INDEX_FILE}", f"{name}/zarr.json"} <= names:
            # the clip index must describe the group exactly (checked whenever one of the shard's files changed)
            problems = verify_zarr_index(f"{self.url}/shards/{name}", self.is_local, self.fs,
                                         f"{self.root}/shards/{name}", entry.samples)
            if problems:
                raise CorruptStoreError(problems[0])
        for path, stamp, sha in passed:
            cache.add(path, stamp, sha)
        if own and passed:
            cache.save()
        self._verified.add(name)

    def verify_all_shards(self) -> dict[str, str]:
        """Verify every shard (sharing one hash cache); return ``shard -> problem`` for those that fail."""
        from geovr.shared.safety import StoreError

        cache = HashCache.for_store(self.root, self.fs, self.is_local)
        bad: dict[str, str] = {}
        for name in self._entries:
            try:
                self.verify_shard(name, cache)
            except StoreError as e:
                bad[name] = str(e)
        cache.save()
        return bad

    def clips_in_shard(self, name: str) -> list[str]:
        """Stored clip ids of shard ``name``."""
        return [cid for cid, (s, _row) in self._rows.items() if s == name]

    @property
    def clip_ids(self) -> list[str]:
        """Stored clip ids in shard / row order."""
        return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, clip_id: object) -> bool:
        return clip_id in self._rows

    def _check_plain(self, name: str) -> None:
        """Every file of shard ``name`` is a plain file inside the store (no hashing: metadata-only reads)."""
        checker = LocalFileChecker(self.root) if self.is_local else None
        for f in self._entries[name].files:
            path = f"{self.root}/shards/{f.path}"
            if checker is not None:
                checker.check(path)
            else:
                check_regular_file(path, self.fs, None)

    def _shard(self, name: str, verify: bool | None = None) -> Any:
        if verify if verify is not None else self.verify_shards:
            self.verify_shard(name)  # once per reader (a no-op afterwards)
        elif name not in self._verified:
            self._check_plain(name)
        shard = self._shards.get(name)
        if shard is not None:
            self._shards.move_to_end(name)
            return shard
        shard = self._zarr_shard(name) if self.header.format == "zarr" else self._wds_shard(name)
        self._shards[name] = shard
        self._shard_bytes[name] = int(shard.nbytes)
        total = sum(self._shard_bytes.values())
        while len(self._shards) > 1 and (len(self._shards) > self.max_open_shards or total > self.max_open_bytes):
            old, _ = self._shards.popitem(last=False)
            total -= self._shard_bytes.pop(old)
        return shard

    def _zarr_shard(self, name: str) -> ZarrShardReader:
        """The Zarr group of shard ``name``: opened through its ``clip_index.npy`` when the manifest lists one."""
        url = f"{self.url}/shards/{name}"
        entry = self._entries[name]
        files = {f.path: f for f in entry.files}
        group = files.get(f"{name}/zarr.json")
        if f"{name}/{INDEX_FILE}" not in files or group is None:
            return ZarrShardReader(url, self.is_local)
        return ZarrShardReader(url, self.is_local, fs=self.fs, index=f"{self.root}/shards/{name}/{INDEX_FILE}",
                               group_bytes=group.bytes, n_clips=entry.samples, meta_cache=self._array_metas)

    def _wds_shard(self, name: str) -> WdsShardReader:
        """The tar of shard ``name``: indexed (one ranged read per clip) when the manifest lists its index."""
        if not hasattr(self, "_files"):
            self._files = {f.path: f for s in self.manifest.shards for f in s.files}
            self._samples = {s.name: s.samples for s in self.manifest.shards}
        files = self._files
        tar, idx = files.get(f"{name}.tar"), files.get(f"{name}{INDEX_SUFFIX}")
        base = f"{self.root}/shards/{name}"
        if tar is None:
            raise CorruptStoreError(f"{base}.tar: shard file not listed in index.json; refused")
        if idx is None:
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
        lim = self.read_limits
        if self.header.format == "zarr":
            if row >= len(shard):
                raise CorruptStoreError(f"{where}: row {row} beyond the shard's {len(shard)} clips")
            record = shard.meta(row)
            s, fhw, hw = check_meta(record, where, lim)
            if shard.num_frames(row) != s:
                raise CorruptStoreError(f"{where}: clip_offsets give {shard.num_frames(row)} frames, metadata {s}")

            def pre(n: str, dtype: Any, shape: tuple[int, ...], per_frame: bool) -> None:
                check_shape(n, dtype, shape, s, hw, self.header, where, lim, per_frame)

            meta, arrays, frames = shard.read(row, check=pre, max_frame_bytes=lim.max_frame_bytes, meta=record)
        else:
            meta, arrays, frames = shard.read_key(clip_key(clip_id), row)
            s, fhw, hw = check_meta(meta, where, lim)
        if meta.get("clip_id") != clip_id:
            raise CorruptStoreError(f"{where}: stored record is for clip {meta.get('clip_id')!r}")
        check_arrays(arrays, s, hw, self.header, where, lim)
        check_frames(frames, s, fhw, self.header, where, lim)
        return clip_from_parts(meta, arrays, frames, self.header, where)

    def iter_meta(self, exclude: Container[str] = ()) -> Iterator[dict[str, Any]]:
        """Per-clip metadata (``ClipTargets.meta_dict()``) of every stored clip not in ``exclude``, shard by
        shard, without reading or decoding any array or frame: Zarr shards' group attributes, WebDataset
        samples' ``.meta.json`` members. Each record's ``clip_id`` is checked against the clip table; each
        shard's files are checked to be plain files first (hashes are ``verify_shard``'s job)."""
        by_shard: dict[str, list[tuple[str, int]]] = {}
        for cid, (name, row) in self._rows.items():
            if cid not in exclude:
                by_shard.setdefault(name, []).append((cid, row))
        for name, rows in by_shard.items():
            where = f"{self.url}/shards/{name}"
            if self.header.format == "zarr":
                self._check_plain(name)
                if not any(f.path == f"{name}/zarr.json" for f in self._entries[name].files):  # zarr opens it
                    raise CorruptStoreError(f"{where}/zarr.json: shard file not listed in index.json; refused")
                metas = read_zarr_metas(where, self.is_local)
                for cid, row in rows:
                    if row >= len(metas):
                        raise CorruptStoreError(f"{where} clip {cid!r}: row {row} beyond the shard's {len(metas)} clips")
                    yield self._checked_meta(metas[row], cid, where)
            else:
                metas = self._shard(name, verify=False).read_metas([clip_key(cid) for cid, _ in rows], [row for _, row in rows])
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
