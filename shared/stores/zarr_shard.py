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
            self.frame_arrays: list[str] = list(attrs["frame_arrays"])
            self.clip_arrays: list[str] = list(attrs["clip_arrays"])
            self.offsets = np.asarray(self.group["clip_offsets"][...], dtype=np.int64)
            self.frame_offsets = np.asarray(self.group["frame_offsets"][...], dtype=np.int64)
        except CorruptStoreError:
            raise
        except Exception as e:  # zarr raises many types for broken groups
            raise CorruptStoreError(f"{url}: unreadable Zarr shard ({type(e).__name__}: {e})") from e
        if len(self.offsets) != len(self.metas) + 1:
            raise CorruptStoreError(f"{url}: clip_offsets has {len(self.offsets)} entries for {len(self.metas)} clips")

    def __len__(self) -> int:
        return len(self.metas)

    def read(self, row: int) -> tuple[dict[str, Any], dict[str, np.ndarray], list[bytes]]:
        """``(meta, arrays, frames)`` of the clip at ``row``."""
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        try:
            arrays = {n: np.asarray(self.group[n][a:b]) for n in self.frame_arrays}
            for n in self.clip_arrays:
                arrays[n] = np.asarray(self.group[n][row])
            fo = self.frame_offsets[a : b + 1]
            blob = np.asarray(self.group["frames"][int(fo[0]) : int(fo[-1])]).tobytes()
        except Exception as e:
            raise CorruptStoreError(f"{self.url}: cannot read row {row} ({type(e).__name__}: {e})") from e
        base = int(fo[0])
        frames = [blob[int(x) - base : int(y) - base] for x, y in zip(fo[:-1], fo[1:], strict=True)]
        return self.metas[row], arrays, frames
