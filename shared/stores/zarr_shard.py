"""One shard as a Zarr v3 group (sharding codec: one shard file per array).

Group layout (all clips of the shard concatenated along axis 0, in row order):

- ``clip_offsets`` int64 ``[n+1]``: clip ``i`` owns frames ``clip_offsets[i]:clip_offsets[i+1]``.
- per-frame arrays (``pose_enc``, ``extrinsics``, ``intrinsics``, ``depth``, ``depth_conf``,
  ``feat_lXX``) ``[N, ...]``: chunks of ~1 MiB (``rows_per_chunk``), ``shards=`` the whole array, zstd.
- per-clip arrays (``feat_lXX_scale`` for int8 features) ``[n, C]``.
- ``frames`` uint8 ``[total_bytes]`` (encoded images back to back) and ``frame_offsets``
  int64 ``[N+1]``: frame ``j`` is ``frames[frame_offsets[j]:frame_offsets[j+1]]``.
- group attributes: ``geovr_shard`` (layout version), ``clips`` (``ClipTargets.meta_dict()``
  per row), ``frame_arrays`` and ``clip_arrays`` (array names).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from geovr.shared.safety import CorruptStoreError

__all__ = ["ZarrShardReader", "encode_zarr_shard", "read_zarr_metas", "write_zarr_shard"]

LAYOUT_VERSION = 1
BYTES_CHUNK = 1 << 20
"""Inner chunk of the ``frames`` byte array (1 MiB)."""
CHUNK_BYTES = 1 << 20
"""Target bytes of one inner chunk of a per-frame / per-clip array: ``max(1, CHUNK_BYTES // row_bytes)``
rows per chunk. Big rows (paper-size depth, features: ~0.4 MB/frame) stay at 1-2 frames per chunk; small
ones (poses, intrinsics, int8 scales) become one chunk per shard instead of one per frame, which cut
zarr's per-chunk encode cost (the extraction overhead, issue #15) without changing the group layout."""


def rows_per_chunk(data: np.ndarray) -> int:
    """Rows (axis-0 entries) per inner chunk so one chunk holds about ``CHUNK_BYTES``."""
    row = max(1, int(np.prod(data.shape[1:], dtype=np.int64)) * data.dtype.itemsize)
    return max(1, CHUNK_BYTES // row)


def _layout(data: np.ndarray, chunk0: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(chunks, shards)`` of an array: ``chunk0`` rows per inner chunk, one shard holding the whole array."""
    shape = data.shape
    chunks = (max(1, min(chunk0, shape[0])),) + tuple(max(1, s) for s in shape[1:])
    n0 = max(1, shape[0])
    shards = (-(-n0 // chunks[0]) * chunks[0],) + chunks[1:]
    return chunks, shards


async def _write_group(store: Any, arrays: dict[str, tuple[np.ndarray, int]], attrs: dict[str, Any]) -> None:
    import asyncio

    import zarr
    import zarr.api.asynchronous as za
    import zarr.codecs

    group = await za.open_group(store=store, mode="w-", zarr_format=3)

    async def one(name: str, data: np.ndarray, chunk0: int) -> None:
        chunks, shards = _layout(data, chunk0)
        arr = await group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks, shards=shards,
                                       compressors=zarr.codecs.ZstdCodec(level=3), fill_value=0)
        if data.size:
            await arr.setitem(Ellipsis, data)

    await asyncio.gather(*(one(n, d, c) for n, (d, c) in arrays.items()))
    await group.update_attributes(attrs)


def encode_zarr_shard(
    metas: list[dict[str, Any]],
    frame_arrays: list[dict[str, np.ndarray]],
    clip_arrays: list[dict[str, np.ndarray]],
    frames: list[list[bytes]],
) -> dict[str, bytes]:
    """A whole shard as the files of a Zarr v3 group, in memory: ``{path inside the group folder: bytes}``.

    Zarr builds the group in a ``MemoryStore`` (whose keys are exactly the file paths a ``LocalStore`` writes,
    byte for byte); all arrays are created and written concurrently in one call on zarr's event loop.
    """
    import zarr
    from zarr.core.sync import sync

    lengths = [len(f) for f in frames]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    arrays: dict[str, tuple[np.ndarray, int]] = {"clip_offsets": (offsets, len(offsets))}
    names = sorted(frame_arrays[0]) if frame_arrays else []
    cnames = sorted(clip_arrays[0]) if clip_arrays else []
    for name in names:
        data = np.concatenate([fa[name] for fa in frame_arrays], axis=0)
        arrays[name] = (data, rows_per_chunk(data))
    for name in cnames:
        data = np.stack([ca[name] for ca in clip_arrays], axis=0)
        arrays[name] = (data, rows_per_chunk(data))
    flat = [b for fs in frames for b in fs]
    fo = np.concatenate([[0], np.cumsum([len(b) for b in flat], dtype=np.int64)]).astype(np.int64)
    arrays["frame_offsets"] = (fo, len(fo))
    arrays["frames"] = (np.frombuffer(b"".join(flat), dtype=np.uint8), BYTES_CHUNK)
    attrs = {"geovr_shard": LAYOUT_VERSION, "clips": metas, "frame_arrays": names, "clip_arrays": cnames}
    files: dict[str, Any] = {}
    sync(_write_group(zarr.storage.MemoryStore(files), arrays, attrs))
    return {key: buf.to_bytes() for key, buf in files.items()}


def write_zarr_shard(
    path: str,
    metas: list[dict[str, Any]],
    frame_arrays: list[dict[str, np.ndarray]],
    clip_arrays: list[dict[str, np.ndarray]],
    frames: list[list[bytes]],
) -> list[tuple[str, int, str]]:
    """Write a whole shard as a new Zarr v3 group folder at local ``path`` (must not exist); returns
    ``(path inside the folder, bytes, sha256)`` of every file written, sorted by path.

    The group is encoded in memory (``encode_zarr_shard``) and its files written here, one plain write each:
    no I/O round trips through zarr's thread pool, and each file is hashed from the bytes written rather
    than read back (issue #15: 30 % less CPU per shard than zarr's ``LocalStore``, same files).
    """
    import hashlib

    files = encode_zarr_shard(metas, frame_arrays, clip_arrays, frames)
    os.makedirs(path)
    out = []
    for key in sorted(files):
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"zarr produced an unexpected file key {key!r}")
        full = os.path.join(path, *parts)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        data = files[key]
        with open(full, "xb") as f:
            f.write(data)
        out.append((key, len(data), hashlib.sha256(data).hexdigest()))
    return out


def read_zarr_metas(url: str, is_local: bool) -> list[dict[str, Any]]:
    """Per-clip metadata (``ClipTargets.meta_dict()`` per row) of a Zarr shard from its group
    attributes alone: no array is opened or decoded."""
    import zarr

    try:
        store = (
            zarr.storage.LocalStore(url, read_only=True)
            if is_local
            else zarr.storage.FsspecStore.from_url(url, read_only=True)
        )
        group = zarr.open_group(store, mode="r", zarr_format=3)
        metas = group.attrs["clips"]
    except Exception as e:  # zarr raises many types for broken groups
        raise CorruptStoreError(f"{url}: unreadable Zarr shard attributes ({type(e).__name__}: {e})") from e
    if not isinstance(metas, list) or not all(isinstance(m, dict) for m in metas):
        raise CorruptStoreError(f"{url}: shard attribute 'clips' is not a list of objects")
    return list(metas)


class ZarrShardReader:
    """Random access to the clips of one Zarr shard (local path or fsspec URL).

    Opening reads the group metadata and every array's metadata once (concurrently); a clip read
    then fetches all its arrays in one batch of concurrent requests on zarr's event loop rather
    than one blocking round trip per array (per-array metadata re-reads and sequential waits made
    a clip read ~10x slower on small clips, see ``benchmarks/scale.py``).
    """

    def __init__(self, url: str, is_local: bool) -> None:
        import zarr
        from zarr.core.sync import sync

        self.url = url
        self._sync = sync
        try:
            store = (
                zarr.storage.LocalStore(url, read_only=True)
                if is_local
                else zarr.storage.FsspecStore.from_url(url, read_only=True)
            )
            sync(self._open(store))
        except CorruptStoreError:
            raise
        except Exception as e:  # zarr raises many types for broken groups
            raise CorruptStoreError(f"{url}: unreadable Zarr shard ({type(e).__name__}: {e})") from e

    def _check_chunks(self, name: str, arr: Any) -> None:
        """Chunks may not exceed the array's own shape, nor shards that shape rounded up to whole chunks (they
        decide allocation on read)."""
        chunks = tuple(arr.chunks)
        limit = tuple(max(d, 1) for d in arr.shape)
        if len(chunks) != len(limit) or any(c > d for c, d in zip(chunks, limit, strict=True)):
            raise CorruptStoreError(f"{self.url}: array {name!r} chunks {chunks} exceed its shape {arr.shape}")
        shards = getattr(arr, "shards", None)
        if shards is not None and any(s > -(-d // c) * c for s, c, d in zip(shards, chunks, limit, strict=False)):
            raise CorruptStoreError(f"{self.url}: array {name!r} shards {shards} exceed its shape {arr.shape}")

    def array_info(self, name: str) -> tuple[Any, tuple[int, ...]]:
        """``(dtype, shape)`` of a stored array from its metadata, nothing read."""
        arr = self.arrays[name]
        self._check_chunks(name, arr)
        return arr.dtype, tuple(arr.shape)

    async def _open(self, store: Any) -> None:
        import asyncio

        import zarr.api.asynchronous as za

        group = await za.open_group(store=store, mode="r", zarr_format=3)
        attrs = dict(group.attrs)
        self.metas: list[dict[str, Any]] = list(attrs["clips"])
        self.frame_arrays: list[str] = [str(n) for n in attrs["frame_arrays"]]
        self.clip_arrays: list[str] = [str(n) for n in attrs["clip_arrays"]]
        for n in self.frame_arrays + self.clip_arrays:
            if not n.replace("_", "").isalnum() or n in ("frames", "clip_offsets", "frame_offsets"):
                raise CorruptStoreError(f"{self.url}: array name {n!r} is not a plain target name")
        names = [*self.frame_arrays, *self.clip_arrays, "frames", "clip_offsets", "frame_offsets"]
        arrays = await asyncio.gather(*(group.getitem(n) for n in names))
        self.arrays: dict[str, Any] = dict(zip(names, arrays, strict=True))
        for n in names:
            self._check_chunks(n, self.arrays[n])
        n_clips = len(self.metas)
        co = self.arrays["clip_offsets"]
        if tuple(co.shape) != (n_clips + 1,) or co.dtype != np.int64:
            raise CorruptStoreError(f"{self.url}: clip_offsets has shape {co.shape} {co.dtype}, expected "
                                    f"({n_clips + 1},) int64")
        fo = self.arrays["frame_offsets"]
        if len(fo.shape) != 1 or fo.dtype != np.int64 or fo.shape[0] > n_clips * 4096 + 1:
            raise CorruptStoreError(f"{self.url}: frame_offsets has shape {fo.shape} {fo.dtype}")
        offsets, frame_offsets = await asyncio.gather(
            self.arrays["clip_offsets"].getitem(slice(None)), self.arrays["frame_offsets"].getitem(slice(None)))
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.frame_offsets = np.asarray(frame_offsets, dtype=np.int64)
        if len(self.frame_offsets) != int(self.offsets[-1]) + 1:
            raise CorruptStoreError(f"{self.url}: frame_offsets has {len(self.frame_offsets)} entries, clip_offsets "
                                    f"end at {int(self.offsets[-1])}")
        if np.any(np.diff(self.offsets) < 0) or np.any(np.diff(self.frame_offsets) < 0) or self.offsets[0] != 0:
            raise CorruptStoreError(f"{self.url}: clip_offsets / frame_offsets are not non-decreasing from 0")

    def __len__(self) -> int:
        return len(self.metas)

    async def _read(self, row: int, a: int, b: int, fa: int, fb: int) -> list[Any]:
        import asyncio

        jobs = [self.arrays[n].getitem(slice(a, b)) for n in self.frame_arrays]
        jobs += [self.arrays[n].getitem(row) for n in self.clip_arrays]
        jobs.append(self.arrays["frames"].getitem(slice(fa, fb)))
        return list(await asyncio.gather(*jobs))

    def read(self, row: int, check: Any = None, max_frame_bytes: int | None = None
             ) -> tuple[dict[str, Any], dict[str, np.ndarray], list[bytes]]:
        """``(meta, arrays, frames)`` of the clip at ``row``.

        ``check(name, dtype, shape, per_frame)`` is called with each array's metadata before it is read
        (per-frame arrays: shape without the leading ``S``); ``max_frame_bytes`` bounds the frame bytes.
        """
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        fo = self.frame_offsets[a : b + 1]
        if len(fo) != b - a + 1 or a > b:
            raise CorruptStoreError(f"{self.url}: row {row}: clip_offsets [{a}, {b}) outside frame_offsets")
        n_total = int(self.offsets[-1])
        for n in self.frame_arrays + self.clip_arrays:
            dtype, shape = self.array_info(n)
            per_frame = n in self.frame_arrays
            lead = n_total if per_frame else len(self.metas)
            if not shape or shape[0] != lead:
                raise CorruptStoreError(f"{self.url}: array {n!r} has shape {shape}, expected {lead} rows")
            if check is not None:
                check(n, dtype, shape[1:], per_frame)
        fdtype, fshape = self.array_info("frames")
        if fshape != (int(self.frame_offsets[-1]),) or fdtype != np.uint8:
            raise CorruptStoreError(f"{self.url}: frames has shape {fshape} {fdtype}, frame_offsets end at "
                                    f"{int(self.frame_offsets[-1])}")
        if max_frame_bytes is not None and np.any(np.diff(fo) > max_frame_bytes):
            raise CorruptStoreError(f"{self.url}: row {row} has a frame over {max_frame_bytes} bytes")
        try:
            got = self._sync(self._read(row, a, b, int(fo[0]), int(fo[-1])))
        except Exception as e:
            raise CorruptStoreError(f"{self.url}: cannot read row {row} ({type(e).__name__}: {e})") from e
        names = [*self.frame_arrays, *self.clip_arrays]
        arrays = {n: np.asarray(v) for n, v in zip(names, got[:-1], strict=True)}
        blob = np.asarray(got[-1]).tobytes()
        base = int(fo[0])
        frames = [blob[int(x) - base : int(y) - base] for x, y in zip(fo[:-1], fo[1:], strict=True)]
        return self.metas[row], arrays, frames
