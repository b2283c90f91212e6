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
- ``clip_index.npy`` (a plain ``.npy`` file beside the group's ``zarr.json``, not a Zarr node; written
  since issue #15's read-scale work, absent in older shards): int64 ``[n + 3, 6]``. Row ``i < n`` is
  ``[start, end, a, b, fa, fb]``: the byte range ``[start, end)`` of row ``i``'s ``clips`` record inside the
  group's ``zarr.json``, its frames ``[a, b)`` (``clip_offsets[i:i+2]``) and its frame bytes ``[fa, fb)``
  (``frame_offsets[a]``, ``frame_offsets[b]``); rows ``n .. n+2`` are ``[start, end, 0, 0, 0, 0]`` of the
  values of ``geovr_shard``, ``frame_arrays`` and ``clip_arrays``. It is listed and hashed with the shard's
  other files. With it a reader opens a shard without parsing every clip's record (~1 MB of JSON per
  1000 clips, ~10 ms) and without any zarr read (each one is a hand-off to zarr's event loop thread,
  ~1-3 ms on a loaded 2-core machine): it reads this file, the names and each array's small
  ``zarr.json``; a clip read is then one ranged read of its record plus one batch of array reads
  (``frame_offsets[a:b+1]`` among them, checked against ``fa`` / ``fb``). Zarr and older readers ignore
  the file.
"""

from __future__ import annotations

import io
import json
import os
import re
from typing import Any

import numpy as np

from geovr.shared.safety import (
    CorruptStoreError,
    index_mismatch,
    load_json_bytes,
    load_npy_bytes,
    read_bounded,
)

__all__ = ["INDEX_FILE", "ZarrShardReader", "clip_index", "encode_zarr_shard", "read_zarr_metas",
           "verify_zarr_index", "write_zarr_shard"]

INDEX_FILE = "clip_index.npy"
"""Per-shard clip index: record spans in the group's ``zarr.json`` and frame ranges (module docstring)."""
SPAN_ATTRS = ("geovr_shard", "frame_arrays", "clip_arrays")
"""Group attributes whose value spans follow the ``n`` clip rows of ``clip_index.npy``, in this order."""
MAX_RECORD_BYTES = 1 << 20
"""Largest clip record (or named attribute value) a reader accepts from a span."""
MAX_ARRAY_META_BYTES = 1 << 16
"""Largest array ``zarr.json`` a reader parses."""
_WS = re.compile(r"[ \t\n\r]*")

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


def _group_arrays(
    metas: list[dict[str, Any]],
    frame_arrays: list[dict[str, np.ndarray]],
    clip_arrays: list[dict[str, np.ndarray]],
    frames: list[list[bytes]],
) -> tuple[dict[str, tuple[np.ndarray, int]], dict[str, Any]]:
    """``(name -> (array, rows per chunk), group attributes)`` of a shard (module docstring's layout)."""
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
    return arrays, attrs


def encode_zarr_shard(
    metas: list[dict[str, Any]],
    frame_arrays: list[dict[str, np.ndarray]],
    clip_arrays: list[dict[str, np.ndarray]],
    frames: list[list[bytes]],
) -> dict[str, bytes]:
    """A whole shard as the files of its folder, in memory: ``{path inside the group folder: bytes}``.

    Zarr builds the group in a ``MemoryStore`` (whose keys are exactly the file paths a ``LocalStore`` writes,
    byte for byte; all arrays created and written concurrently in one call on zarr's event loop); the clip
    index ``INDEX_FILE`` is computed from the group's ``zarr.json``.
    """
    import zarr
    from zarr.core.sync import sync

    arrays, attrs = _group_arrays(metas, frame_arrays, clip_arrays, frames)
    files: dict[str, Any] = {}
    sync(_write_group(zarr.storage.MemoryStore(files), arrays, attrs))
    out = {key: buf.to_bytes() for key, buf in files.items()}
    buf = io.BytesIO()
    np.save(buf, clip_index(out["zarr.json"], arrays["clip_offsets"][0], arrays["frame_offsets"][0]),
            allow_pickle=False)
    out[INDEX_FILE] = buf.getvalue()
    return out


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


def _skip(s: str, i: int, expect: str | None = None) -> int:
    i = _WS.match(s, i).end()  # type: ignore[union-attr]
    if expect is not None:
        if s[i : i + 1] != expect:
            raise ValueError(f"expected {expect!r} at character {i}")
        i = _WS.match(s, i + 1).end()  # type: ignore[union-attr]
    return i


def _members(s: str, i: int, dec: json.JSONDecoder, inner: dict[str, Any] | None = None
             ) -> tuple[dict[str, tuple[int, int]], int]:
    """``(key -> (start, end) character span of its value, end)`` of the JSON object starting at ``s[i]``; the
    value of a key in ``inner`` is walked by ``inner[key](s, start) -> end`` instead of parsed."""
    i = _skip(s, i, "{")
    out: dict[str, tuple[int, int]] = {}
    while s[i] != "}":
        key, i = dec.raw_decode(s, i)
        i = _skip(s, i, ":")
        walk = (inner or {}).get(key)
        end = walk(s, i) if walk is not None else dec.raw_decode(s, i)[1]
        out[key] = (i, end)
        i = _skip(s, end)
        if s[i] == ",":
            i = _skip(s, i + 1)
    return out, i + 1


def _elements(s: str, i: int, dec: json.JSONDecoder) -> tuple[list[tuple[int, int]], int]:
    """``((start, end) character spans of the elements, end)`` of the JSON array starting at ``s[i]``."""
    i = _skip(s, i, "[")
    out = []
    while s[i] != "]":
        _, end = dec.raw_decode(s, i)
        out.append((i, end))
        i = _skip(s, end)
        if s[i] == ",":
            i = _skip(s, i + 1)
    return out, i + 1


def clip_index(group_json: bytes, clip_offsets: np.ndarray, frame_offsets: np.ndarray) -> np.ndarray:
    """The ``clip_index.npy`` rows (int64 ``[n + 3, 6]``) of a shard from its group ``zarr.json`` and offsets
    (one pass over the JSON: each record is parsed once, to find where it ends)."""
    n_clips = len(clip_offsets) - 1
    s = group_json.decode("utf-8")
    dec = json.JSONDecoder()
    found: dict[str, Any] = {}

    def clips(s: str, i: int) -> int:
        found["clips"], end = _elements(s, i, dec)
        return end

    def attributes(s: str, i: int) -> int:
        found["attrs"], end = _members(s, i, dec, {"clips": clips})
        return end

    _members(s, 0, dec, {"attributes": attributes})
    attrs, spans = found["attrs"], list(found["clips"])
    if len(spans) != n_clips:
        raise ValueError(f"group zarr.json holds {len(spans)} clip records, expected {n_clips}")
    spans += [attrs[k] for k in SPAN_ATTRS]
    if len(s) != len(group_json):  # non-ASCII text (zarr writes ASCII JSON): character -> byte offsets
        at, last, nbytes = {}, 0, 0
        for p in sorted({p for span in spans for p in span}):
            nbytes += len(s[last:p].encode())
            at[p], last = nbytes, p
        spans = [(at[a], at[b]) for a, b in spans]
    out = np.zeros((n_clips + len(SPAN_ATTRS), 6), dtype="<i8")
    out[:, :2] = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    out[:n_clips, 2], out[:n_clips, 3] = clip_offsets[:-1], clip_offsets[1:]
    out[:n_clips, 4], out[:n_clips, 5] = frame_offsets[clip_offsets[:-1]], frame_offsets[clip_offsets[1:]]
    return out


def verify_zarr_index(url: str, is_local: bool, fs: Any, path: str, n_clips: int) -> list[str]:
    """Problems of shard ``url``'s ``clip_index.npy`` against its group (empty = it describes the group exactly):
    the index is rebuilt from the group's ``zarr.json`` and both offset arrays (read through zarr, bounded as an
    older shard's open) and must equal the stored one, so the indexed reader gives each row the record and the
    frames zarr and older readers give it. Run on the hashed files (``shards verify``, ``verify_shard``). ``path``:
    the shard folder on ``fs`` (``url`` without the protocol for a remote store)."""
    index_path = f"{path}/{INDEX_FILE}"
    try:
        full = ZarrShardReader(url, is_local)
        if full.n_clips != n_clips:
            return [f"{url}: the group holds {full.n_clips} clip records, index.json says {n_clips}"]
        with fs.open(f"{path}/zarr.json", "rb") as f:
            want = clip_index(f.read(), full.offsets, full.frame_offsets)
        with fs.open(index_path, "rb") as f:
            got = load_npy_bytes(f.read(want.nbytes + 1024 + 1), index_path)
    except CorruptStoreError as e:
        return [str(e)]
    except Exception as e:  # a crafted group JSON the span walk cannot follow
        return [f"{url}: cannot rebuild {INDEX_FILE} from the group ({type(e).__name__}: {e})"]
    if (bad := index_mismatch(got, want)) is not None:
        return [f"{index_path}: row {bad[0]} does not describe the group (its zarr.json and offsets give {bad[1]}, "
                f"the index {bad[2]}); refused"]
    return []


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

    With ``index`` (the shard lists ``clip_index.npy``; ``group_bytes`` = its ``zarr.json`` size from the
    manifest) opening reads that small file, the array names (one ranged read of the group metadata) and
    each array's ``zarr.json`` (parsed metadata shared through ``meta_cache`` across shards with identical
    bytes), and makes no zarr read; each clip's record is one ranged read. Without it (older shards)
    opening parses the whole group metadata, every clip's record included, and reads both offset arrays.
    A clip read fetches all its arrays in one batch of concurrent requests on zarr's event loop.

    ``nbytes`` is what the open handle keeps in memory: ~6.4 KB per array handle (measured with
    ``tracemalloc``), 48 bytes per clip for the index: ~105 KB per indexed 1000-clip shard of 9 arrays;
    an older shard adds its offsets (8 bytes per clip and per frame) and its parsed records (~1.85x the
    group ``zarr.json``: ~1.8 MB per 1000 clips in ``benchmarks/scale.py``).
    """

    ARRAY_HANDLE_BYTES = 6400
    """Measured memory of one zarr array handle (metadata not shared)."""
    MAX_FRAMES_PER_CLIP = 4096
    """Frames one clip may have (bounds a tampered index before anything is allocated)."""

    def __init__(self, url: str, is_local: bool, fs: Any = None, index: str | None = None,
                 group_bytes: int | None = None, n_clips: int | None = None,
                 meta_cache: dict[bytes, Any] | None = None) -> None:
        import zarr
        from zarr.core.sync import sync

        self.url = url
        self._sync = sync
        self._fs = fs
        self._index: np.ndarray | None = None
        self._meta_list: list[dict[str, Any]] | None = None
        try:
            store = (
                zarr.storage.LocalStore(url, read_only=True)
                if is_local
                else zarr.storage.FsspecStore.from_url(url, read_only=True)
            )
            if index is not None and fs is not None and group_bytes is not None and n_clips is not None:
                self._open_indexed(store, index, int(group_bytes), int(n_clips), meta_cache)
            else:
                sync(self._open(store))
        except CorruptStoreError:
            raise
        except Exception as e:  # zarr raises many types for broken groups
            raise CorruptStoreError(f"{url}: unreadable Zarr shard ({type(e).__name__}: {e})") from e

    @property
    def indexed(self) -> bool:
        """Opened through ``clip_index.npy`` (no record parsed, no zarr read at open)."""
        return self._index is not None

    @property
    def metas(self) -> list[dict[str, Any]]:
        """Every row's record (an indexed shard reads them one by one and keeps none; prefer ``meta(row)``)."""
        if self._meta_list is None:
            return [self.meta(i) for i in range(self.n_clips)]
        return self._meta_list

    def meta(self, row: int) -> dict[str, Any]:
        """The record (``ClipTargets.meta_dict()``) of ``row``: one ranged read on an indexed shard."""
        if not 0 <= row < self.n_clips:
            raise CorruptStoreError(f"{self.url}: row {row} beyond the shard's {self.n_clips} clips")
        if self._meta_list is not None:
            return self._meta_list[row]
        meta = self._span_value(int(self._index[row, 0]), int(self._index[row, 1]), f"clip record {row}")
        if not isinstance(meta, dict):
            raise CorruptStoreError(f"{self.url}: clip record {row} is not an object")
        return meta

    def num_frames(self, row: int) -> int:
        """Frames of the clip at ``row`` (from the index or ``clip_offsets``)."""
        a, b = self._frame_range(row)
        return b - a

    def _frame_range(self, row: int) -> tuple[int, int]:
        if self._index is not None:
            return int(self._index[row, 2]), int(self._index[row, 3])
        return int(self.offsets[row]), int(self.offsets[row + 1])

    def _span_value(self, a: int, b: int, what: str) -> Any:
        data = self._fs.cat_file(self._group, start=a, end=b)
        if len(data) != b - a:
            raise CorruptStoreError(f"{self.url}: {what}: read {len(data)} of {b - a} bytes (truncated)")
        return load_json_bytes(data, f"{self._group}[{a}:{b}] ({what})", MAX_RECORD_BYTES)

    def _open_indexed(self, store: Any, index_path: str, group_bytes: int, n_clips: int,
                      meta_cache: dict[bytes, Any] | None) -> None:
        from zarr.core.array import AsyncArray
        from zarr.core.metadata.v3 import ArrayV3Metadata
        from zarr.storage import StorePath

        fs = self._fs
        self._group = f"{self.url}/zarr.json"
        rows = n_clips + len(SPAN_ATTRS)
        want = rows * 48 + 1024
        with fs.open(index_path, "rb") as f:
            data = read_bounded(f, want + 1)  # f.read(n) would allocate n bytes up front (n from index.json)
        if len(data) > want:
            raise CorruptStoreError(f"{index_path}: over {want} bytes for {n_clips} clips")
        index = load_npy_bytes(data, index_path)
        if index.dtype.kind not in "iu" or index.shape != (rows, 6):
            raise CorruptStoreError(f"{index_path}: must be an integer [{rows}, 6] array, got {index.dtype} "
                                    f"{index.shape}")
        index = index.astype(np.int64, copy=False)
        bad = (index[:, 0] < 0) | (index[:, 1] <= index[:, 0]) | (index[:, 1] > group_bytes) | (
            index[:, 1] - index[:, 0] > MAX_RECORD_BYTES)
        if bad.any():
            row = int(np.argmax(bad))
            raise CorruptStoreError(f"{index_path}: row {row} span {index[row, :2].tolist()} is not a range of at "
                                    f"most {MAX_RECORD_BYTES} bytes inside the {group_bytes}-byte zarr.json")
        self._index = index
        self.n_clips = n_clips
        tail = index[n_clips:, :2]
        lo, hi = int(tail[:, 0].min()), int(tail[:, 1].max())
        if hi - lo > MAX_RECORD_BYTES:
            raise CorruptStoreError(f"{index_path}: attribute spans cover {hi - lo} bytes")
        blob = fs.cat_file(self._group, start=lo, end=hi)
        values = {}
        for k, (a, b) in zip(SPAN_ATTRS, tail.tolist(), strict=True):
            values[k] = load_json_bytes(blob[a - lo : b - lo], f"{self._group}[{a}:{b}] ({k})", MAX_RECORD_BYTES)
        if values["geovr_shard"] != LAYOUT_VERSION:
            raise CorruptStoreError(f"{self.url}: shard layout {values['geovr_shard']!r}, this reader knows "
                                    f"{LAYOUT_VERSION}")
        self._set_names(values["frame_arrays"], values["clip_arrays"])
        cache = meta_cache if meta_cache is not None else {}
        self.arrays: dict[str, Any] = {}
        for n in self._names:
            path = f"{self.url}/{n}/zarr.json"
            with fs.open(path, "rb") as f:
                raw = f.read(MAX_ARRAY_META_BYTES + 1)
            if len(raw) > MAX_ARRAY_META_BYTES:
                raise CorruptStoreError(f"{path}: over {MAX_ARRAY_META_BYTES} bytes")
            meta = cache.get(raw)
            if meta is None:
                meta = ArrayV3Metadata.from_dict(load_json_bytes(raw, path))
                if len(cache) < 256:
                    cache[raw] = meta
            self.arrays[n] = AsyncArray(metadata=meta, store_path=StorePath(store, n))
            self._check_chunks(n, self.arrays[n])
        co, fo, fr = self.arrays["clip_offsets"], self.arrays["frame_offsets"], self.arrays["frames"]
        if tuple(co.shape) != (n_clips + 1,) or co.dtype != np.int64:
            raise CorruptStoreError(f"{self.url}: clip_offsets has shape {co.shape} {co.dtype}, expected "
                                    f"({n_clips + 1},) int64")
        if len(fo.shape) != 1 or fo.dtype != np.int64 or not 1 <= fo.shape[0] <= n_clips * self.MAX_FRAMES_PER_CLIP + 1:
            raise CorruptStoreError(f"{self.url}: frame_offsets has shape {fo.shape} {fo.dtype}")
        if len(fr.shape) != 1 or fr.dtype != np.uint8:
            raise CorruptStoreError(f"{self.url}: frames has shape {fr.shape} {fr.dtype}")
        self.n_frames, self.n_bytes = int(fo.shape[0]) - 1, int(fr.shape[0])
        a, b, fa, fb = (index[:n_clips, k] for k in (2, 3, 4, 5))
        bad = (a < 0) | (b < a) | (b > self.n_frames) | (b - a > self.MAX_FRAMES_PER_CLIP) | (fa < 0) | (fb < fa) | (
            fb > self.n_bytes)
        if bad.any():
            row = int(np.argmax(bad))
            raise CorruptStoreError(f"{index_path}: row {row} frames {index[row, 2:4].tolist()} / bytes "
                                    f"{index[row, 4:6].tolist()} outside the shard's {self.n_frames} frames / "
                                    f"{self.n_bytes} bytes")

    def _set_names(self, frame_arrays: Any, clip_arrays: Any) -> None:
        if not isinstance(frame_arrays, list) or not isinstance(clip_arrays, list):
            raise CorruptStoreError(f"{self.url}: frame_arrays / clip_arrays are not lists")
        self.frame_arrays: list[str] = [str(n) for n in frame_arrays]
        self.clip_arrays: list[str] = [str(n) for n in clip_arrays]
        for n in self.frame_arrays + self.clip_arrays:
            if not n.replace("_", "").isalnum() or n in ("frames", "clip_offsets", "frame_offsets"):
                raise CorruptStoreError(f"{self.url}: array name {n!r} is not a plain target name")
        self._names = [*self.frame_arrays, *self.clip_arrays, "frames", "clip_offsets", "frame_offsets"]
        if len(set(self._names)) != len(self._names):
            raise CorruptStoreError(f"{self.url}: array names repeat: {self._names}")

    @property
    def nbytes(self) -> int:
        """Approximate memory this open handle keeps (see the class docstring)."""
        n = len(self.arrays) * self.ARRAY_HANDLE_BYTES
        if self._index is not None:
            return n + self._index.nbytes
        return n + self.offsets.nbytes + self.frame_offsets.nbytes + 1800 * self.n_clips

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
        self._meta_list = list(attrs["clips"])
        self.n_clips = len(self._meta_list)
        self._set_names(attrs["frame_arrays"], attrs["clip_arrays"])
        arrays = await asyncio.gather(*(group.getitem(n) for n in self._names))
        self.arrays: dict[str, Any] = dict(zip(self._names, arrays, strict=True))
        await self._check_and_load_offsets()

    async def _check_and_load_offsets(self) -> None:
        import asyncio

        for n in self._names:
            self._check_chunks(n, self.arrays[n])
        n_clips = self.n_clips
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
        self.n_frames, self.n_bytes = int(self.offsets[-1]), int(self.frame_offsets[-1])

    def __len__(self) -> int:
        return self.n_clips

    async def _read(self, row: int, a: int, b: int, fa: int, fb: int) -> list[Any]:
        import asyncio

        jobs = [self.arrays[n].getitem(slice(a, b)) for n in self.frame_arrays]
        jobs += [self.arrays[n].getitem(row) for n in self.clip_arrays]
        jobs.append(self.arrays["frames"].getitem(slice(fa, fb)))
        if self._index is not None:
            jobs.append(self.arrays["frame_offsets"].getitem(slice(a, b + 1)))
        return list(await asyncio.gather(*jobs))

    def read(self, row: int, check: Any = None, max_frame_bytes: int | None = None, meta: dict[str, Any] | None = None
             ) -> tuple[dict[str, Any], dict[str, np.ndarray], list[bytes]]:
        """``(meta, arrays, frames)`` of the clip at ``row`` (``meta``: its record, when already read).

        ``check(name, dtype, shape, per_frame)`` is called with each array's metadata before it is read
        (per-frame arrays: shape without the leading ``S``); ``max_frame_bytes`` bounds the frame bytes.
        """
        if not 0 <= row < self.n_clips:
            raise CorruptStoreError(f"{self.url}: row {row} beyond the shard's {self.n_clips} clips")
        a, b = self._frame_range(row)
        if self._index is not None:
            fo = None
            fa, fb = int(self._index[row, 4]), int(self._index[row, 5])
        else:
            fo = self.frame_offsets[a : b + 1]
            if len(fo) != b - a + 1 or a > b:
                raise CorruptStoreError(f"{self.url}: row {row}: clip_offsets [{a}, {b}) outside frame_offsets")
            fa, fb = int(fo[0]), int(fo[-1])
        for n in self.frame_arrays + self.clip_arrays:
            dtype, shape = self.array_info(n)
            per_frame = n in self.frame_arrays
            lead = self.n_frames if per_frame else self.n_clips
            if not shape or shape[0] != lead:
                raise CorruptStoreError(f"{self.url}: array {n!r} has shape {shape}, expected {lead} rows")
            if check is not None:
                check(n, dtype, shape[1:], per_frame)
        fdtype, fshape = self.array_info("frames")
        if fshape != (self.n_bytes,) or fdtype != np.uint8:
            raise CorruptStoreError(f"{self.url}: frames has shape {fshape} {fdtype}, frame offsets end at "
                                    f"{self.n_bytes}")
        if max_frame_bytes is not None and (fb - fa > (b - a) * max_frame_bytes
                                            or (fo is not None and np.any(np.diff(fo) > max_frame_bytes))):
            raise CorruptStoreError(f"{self.url}: row {row} has a frame over {max_frame_bytes} bytes")
        try:
            got = self._sync(self._read(row, a, b, fa, fb))
        except Exception as e:
            raise CorruptStoreError(f"{self.url}: cannot read row {row} ({type(e).__name__}: {e})") from e
        if fo is None:
            fo = np.asarray(got.pop(), dtype=np.int64)
            if len(fo) != b - a + 1 or int(fo[0]) != fa or int(fo[-1]) != fb or np.any(np.diff(fo) < 0):
                raise CorruptStoreError(f"{self.url}: row {row}: frame_offsets[{a}:{b + 1}] do not run from {fa} to "
                                        f"{fb} as clip_index.npy says")
            if max_frame_bytes is not None and np.any(np.diff(fo) > max_frame_bytes):
                raise CorruptStoreError(f"{self.url}: row {row} has a frame over {max_frame_bytes} bytes")
        names = [*self.frame_arrays, *self.clip_arrays]
        arrays = {n: np.asarray(v) for n, v in zip(names, got[:-1], strict=True)}
        blob = np.asarray(got[-1]).tobytes()
        frames = [blob[int(x) - fa : int(y) - fa] for x, y in zip(fo[:-1], fo[1:], strict=True)]
        return self.meta(row) if meta is None else meta, arrays, frames
