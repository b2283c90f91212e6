"""One shard as a Zarr v3 group (sharding codec: one shard file per array).

Group layout (all clips of the shard concatenated along axis 0, in row order):

- ``clip_offsets`` int64 ``[n+1]``: clip ``i`` owns frames ``clip_offsets[i]:clip_offsets[i+1]``.
- per-frame arrays (``pose_enc``, ``extrinsics``, ``intrinsics``, ``depth``, ``depth_conf``,
  ``feat_lXX``) ``[N, ...]``: chunks of one frame, ``shards=`` the whole array, zstd.
- per-clip arrays (``feat_lXX_scale`` for int8 features) ``[n, C]``.
- ``frames`` uint8 ``[total_bytes]`` (encoded images back to back) and ``frame_offsets``
  int64 ``[N+1]``: frame ``j`` is ``frames[frame_offsets[j]:frame_offsets[j+1]]``.
- group attributes: ``geovr_shard`` (layout version), ``clips`` (``ClipTargets.meta_dict()``
  per row), ``frame_arrays`` and ``clip_arrays`` (array names).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geovr.shared.safety import CorruptStoreError

__all__ = ["ZarrShardReader", "read_zarr_metas", "write_zarr_shard"]

LAYOUT_VERSION = 1
BYTES_CHUNK = 1 << 20
"""Inner chunk of the ``frames`` byte array (1 MiB)."""


def _create(group: Any, name: str, data: np.ndarray, chunk0: int) -> None:
    import zarr.codecs

    shape = data.shape
    chunks = (max(1, min(chunk0, shape[0])),) + tuple(max(1, s) for s in shape[1:])
    n0 = max(1, shape[0])
    shards = (-(-n0 // chunks[0]) * chunks[0],) + chunks[1:]
    arr = group.create_array(
        name, shape=shape, dtype=data.dtype, chunks=chunks, shards=shards,
        compressors=zarr.codecs.ZstdCodec(level=3), fill_value=0,
    )
    if data.size:
        arr[...] = data


def write_zarr_shard(
    path: str,
    metas: list[dict[str, Any]],
    frame_arrays: list[dict[str, np.ndarray]],
    clip_arrays: list[dict[str, np.ndarray]],
    frames: list[list[bytes]],
) -> None:
    """Write a whole shard as a new Zarr v3 group at local ``path`` (must not exist)."""
    import zarr

    group = zarr.open_group(zarr.storage.LocalStore(path), mode="w-", zarr_format=3)
    lengths = [len(f) for f in frames]
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    _create(group, "clip_offsets", offsets, len(offsets))
    names = sorted(frame_arrays[0]) if frame_arrays else []
    cnames = sorted(clip_arrays[0]) if clip_arrays else []
    for name in names:
        _create(group, name, np.concatenate([fa[name] for fa in frame_arrays], axis=0), 1)
    for name in cnames:
        _create(group, name, np.stack([ca[name] for ca in clip_arrays], axis=0), 1)
    flat = [b for fs in frames for b in fs]
    fo = np.concatenate([[0], np.cumsum([len(b) for b in flat], dtype=np.int64)]).astype(np.int64)
    blob = np.frombuffer(b"".join(flat), dtype=np.uint8)
    _create(group, "frame_offsets", fo, len(fo))
    _create(group, "frames", blob, BYTES_CHUNK)
    group.attrs.update(
        {"geovr_shard": LAYOUT_VERSION, "clips": metas, "frame_arrays": names, "clip_arrays": cnames}
    )


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
    """Random access to the clips of one Zarr shard (local path or fsspec URL)."""

    def __init__(self, url: str, is_local: bool) -> None:
        import zarr

        self.url = url
        try:
            store = (
                zarr.storage.LocalStore(url, read_only=True)
                if is_local
                else zarr.storage.FsspecStore.from_url(url, read_only=True)
            )
            self.group = zarr.open_group(store, mode="r", zarr_format=3)
            attrs = dict(self.group.attrs)
            self.metas: list[dict[str, Any]] = list(attrs["clips"])
            self.frame_arrays: list[str] = [str(n) for n in attrs["frame_arrays"]]
            self.clip_arrays: list[str] = [str(n) for n in attrs["clip_arrays"]]
            for n in self.frame_arrays + self.clip_arrays:
                if not n.replace("_", "").isalnum():
                    raise CorruptStoreError(f"{url}: array name {n!r} is not a plain name")
            n = len(self.metas)
            self.offsets = self._small("clip_offsets", n + 1)
            self.frame_offsets = self._small("frame_offsets", int(self.offsets[-1]) + 1 if n else 1)
        except CorruptStoreError:
            raise
        except Exception as e:  # zarr raises many types for broken groups
            raise CorruptStoreError(f"{url}: unreadable Zarr shard ({type(e).__name__}: {e})") from e
        if np.any(np.diff(self.offsets) < 0) or np.any(np.diff(self.frame_offsets) < 0) or self.offsets[0] != 0:
            raise CorruptStoreError(f"{url}: clip_offsets / frame_offsets are not non-decreasing from 0")

    def _small(self, name: str, length: int) -> np.ndarray:
        """An int64 offsets array whose stored shape must be ``(length,)``; checked before it is read."""
        arr = self.group[name]
        if tuple(arr.shape) != (length,) or arr.dtype != np.int64:
            raise CorruptStoreError(f"{self.url}: {name} has shape {arr.shape} {arr.dtype}, expected ({length},) int64")
        self._check_chunks(name, arr)
        return np.asarray(arr[...], dtype=np.int64)

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
        arr = self.group[name]
        self._check_chunks(name, arr)
        return arr.dtype, tuple(arr.shape)

    def __len__(self) -> int:
        return len(self.metas)

    def read(self, row: int, check: Any = None, max_frame_bytes: int | None = None
             ) -> tuple[dict[str, Any], dict[str, np.ndarray], list[bytes]]:
        """``(meta, arrays, frames)`` of the clip at ``row``.

        ``check(name, dtype, shape, per_frame)`` is called with each array's metadata before it is read
        (per-frame arrays: shape without the leading ``S``); ``max_frame_bytes`` bounds the frame bytes.
        """
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        fo = self.frame_offsets[a : b + 1]
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
            arrays = {n: np.asarray(self.group[n][a:b]) for n in self.frame_arrays}
            for n in self.clip_arrays:
                arrays[n] = np.asarray(self.group[n][row])
            blob = np.asarray(self.group["frames"][int(fo[0]) : int(fo[-1])]).tobytes()
        except Exception as e:
            raise CorruptStoreError(f"{self.url}: cannot read row {row} ({type(e).__name__}: {e})") from e
        base = int(fo[0])
        frames = [blob[int(x) - base : int(y) - base] for x, y in zip(fo[:-1], fo[1:], strict=True)]
        return self.metas[row], arrays, frames
