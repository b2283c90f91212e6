"""One shard as a WebDataset tar: one sample per clip, readable by plain ``webdataset``.

Sample key: the clip id with ``/`` replaced by ``__`` (``scene0001/00000`` ->
``scene0001__00000``); keys are dot-free because clip ids are, so WebDataset's split at the
first dot of the file name gives back exactly these members:

- ``<key>.meta.json``: ``ClipTargets.meta_dict()`` (holds the real ``clip_id``);
- ``<key>.pose_enc.npy``, ``.extrinsics.npy``, ``.intrinsics.npy``, ``.depth.npy``,
  ``.depth_conf.npy``, ``.feat_l04.npy`` ... (+ ``.feat_l04_scale.npy`` for int8 features);
- ``<key>.f000.jpg`` ... one encoded frame each (``.png`` for png stores).

Members are written in a fixed order with mtime 0 and no owner, so the same clips give the
same tar bytes.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from typing import Any

import numpy as np

from geovr.shared.safety import (
    CorruptStoreError,
    TarLimits,
    load_json_bytes,
    load_npy_bytes,
    safe_tar_members,
)
from geovr.shared.stores.wds_index import (
    MAX_TRAILER,
    check_layout,
    check_range,
    check_trailer,
    parse_wds_index,
    read_meta_member,
    read_sample_members,
)

__all__ = ["WdsShardReader", "clip_key", "write_wds_shard"]

_FRAME_RE = re.compile(r"^f(\d+)\.(jpg|png)$")


def clip_key(clip_id: str) -> str:
    """WebDataset sample key of a clip id (``/`` -> ``__``)."""
    return clip_id.replace("/", "__")


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def write_wds_shard(
    path: str,
    metas: list[dict[str, Any]],
    frame_arrays: list[dict[str, np.ndarray]],
    clip_arrays: list[dict[str, np.ndarray]],
    frames: list[list[bytes]],
    frame_ext: str = "jpg",
) -> None:
    """Write a whole shard as one tar at local ``path``."""
    keys = [clip_key(m["clip_id"]) for m in metas]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{path}: clip ids map to duplicate WebDataset keys: {sorted(k for k in keys if keys.count(k) > 1)}")
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for key, meta, fa, ca, fr in zip(keys, metas, frame_arrays, clip_arrays, frames, strict=True):
            _add(tf, f"{key}.meta.json", json.dumps(meta, sort_keys=True).encode())
            for name in sorted(fa):
                _add(tf, f"{key}.{name}.npy", _npy_bytes(fa[name]))
            for name in sorted(ca):
                _add(tf, f"{key}.{name}.npy", _npy_bytes(ca[name]))
            for i, b in enumerate(fr):
                _add(tf, f"{key}.f{i:03d}.{frame_ext}", b)


class WdsShardReader:
    """Random access to the samples of one tar (members checked before any is read).

    With ``index_path`` (the shard's ``<name>.idx.npy``, see ``wds_index``) and the tar's size from
    the manifest, opening reads only the index and the tar's end-of-archive padding (the index must tile
    the tar and the padding be zero, so no member hides after the indexed samples) and each sample is one
    ranged read; without it (stores written before the index existed) every tar header is scanned once on
    open, and the bytes after the last member must be zero padding too. Both ways refuse a member that
    appears twice: indexed and sequential reads see the same members.
    """

    def __init__(self, path: str, fs: Any, limits: TarLimits | None = None,
                 index_path: str | None = None, tar_bytes: int | None = None, num_clips: int = 0) -> None:
        self.path = path
        self.fs = fs
        self.limits = limits
        self.index: dict[str, dict[str, tuple[int, int]]] = {}
        self.ranges: np.ndarray | None = None
        self.tar_bytes = tar_bytes
        self.index_path = index_path
        if index_path is not None and tar_bytes is not None:
            try:
                data = fs.cat_file(index_path)
            except FileNotFoundError as e:
                raise CorruptStoreError(f"{index_path}: shard index is missing") from e
            self.ranges = parse_wds_index(data, index_path, int(num_clips))
            end = check_layout(self.ranges, index_path, int(tar_bytes))
            self._check_trailer(end, int(tar_bytes))
            return
        self._scan()

    @property
    def nbytes(self) -> int:
        """Approximate memory this open handle keeps: the index rows (32 bytes per clip), or ~150 bytes per
        member of a scanned (unindexed) tar."""
        n = 512 + (self.ranges.nbytes if self.ranges is not None else 0)
        return n + 150 * sum(len(v) for v in self.index.values())

    def _check_trailer(self, end: int, size: int) -> None:
        """Bytes ``[end, size)`` of the tar (after its last sample) must be at most ``MAX_TRAILER`` zero bytes."""
        if size - end > MAX_TRAILER:
            raise CorruptStoreError(f"{self.path}: {size - end} bytes after the last member (at most {MAX_TRAILER} "
                                    "bytes of end-of-archive padding may follow); refused")
        if size > end:
            try:
                data = self.fs.cat_file(self.path, start=end, end=size)
            except FileNotFoundError as e:
                raise CorruptStoreError(f"{self.path}: shard file is missing") from e
            if len(data) != size - end:
                raise CorruptStoreError(f"{self.path}: read {len(data)} of {size - end} bytes at the end (truncated)")
            check_trailer(data, self.path, end)

    def _scan(self) -> None:
        """Index every member from the tar headers (one pass; members checked before any is read)."""
        path, fs, limits = self.path, self.fs, self.limits
        try:
            with fs.open(path, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tf:
                members = safe_tar_members(tf, path, limits)
        except FileNotFoundError as e:
            raise CorruptStoreError(f"{path}: shard file is missing") from e
        except tarfile.TarError as e:
            raise CorruptStoreError(f"{path}: corrupt or truncated tar ({e})") from e
        end = 0
        for m in members:
            end = max(end, -(-(m.offset_data + m.size) // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE)
            if not m.isfile():
                continue
            folder, _, base = m.name.rpartition("/")
            stem, dot, field = base.partition(".")
            if not dot or not field:
                raise CorruptStoreError(f"{path}: member {m.name!r} is not a '<key>.<field>' name")
            key = f"{folder}/{stem}" if folder else stem
            fields = self.index.setdefault(key, {})
            if field in fields:
                raise CorruptStoreError(f"{path}: member {m.name!r} appears twice; refused")
            fields[field] = (m.offset_data, m.size)
        self._check_trailer(end, int(self.tar_bytes) if self.tar_bytes is not None else int(fs.size(path)))

    def _read(self, f: Any, key: str, field: str) -> bytes:
        off, size = self.index[key][field]
        f.seek(off)
        data = f.read(size)
        if len(data) != size:
            raise CorruptStoreError(f"{self.path}: member {key}.{field} is truncated")
        return data

    def read_metas(self, keys: list[str], rows: list[int] | None = None) -> list[dict[str, Any]]:
        """The ``.meta.json`` of each sample in ``keys`` alone (one open, one member read per sample; no array
        member is read or decoded). An indexed shard given the ``rows`` reads each sample's ``meta.json``
        with one exact read at its indexed offset (in one open of the tar) instead of scanning the tar headers."""
        if self.ranges is not None and rows is not None:
            out: dict[int, dict[str, Any]] = {}
            order = sorted(range(len(keys)), key=lambda i: rows[i])  # ascending offsets: readahead serves them
            with self.fs.open(self.path, "rb") as f:
                for i in order:
                    key, row = keys[i], rows[i]
                    if not 0 <= row < len(self.ranges):
                        raise CorruptStoreError(f"{self.path}: no indexed row {row} for sample {key!r}")
                    check_range(self.ranges[row], key, str(self.index_path), int(self.tar_bytes or 0), self.limits)
                    data = read_meta_member(f, self.path, key, self.ranges[row], self.limits)
                    out[i] = load_json_bytes(data, f"{self.path}:{key}.meta.json")
            return [out[i] for i in range(len(keys))]
        if not self.index:
            self._scan()
        for key in keys:
            if key not in self.index or "meta.json" not in self.index[key]:
                raise CorruptStoreError(f"{self.path}: no sample with key {key!r} and a .meta.json")
        with self.fs.open(self.path, "rb") as f:
            return [load_json_bytes(self._read(f, key, "meta.json"), f"{self.path}:{key}.meta.json") for key in keys]

    def _members(self, key: str, row: int | None) -> dict[str, bytes]:
        if self.ranges is not None:
            if row is None or not 0 <= row < len(self.ranges):
                raise CorruptStoreError(f"{self.path}: no indexed row {row} for sample {key!r}")
            rng = check_range(self.ranges[row], key, str(self.index_path), int(self.tar_bytes or 0), self.limits)
            return read_sample_members(self.fs, self.path, key, rng, self.limits)
        if key not in self.index:
            raise CorruptStoreError(f"{self.path}: no sample with key {key!r}")
        out = {}
        with self.fs.open(self.path, "rb") as f:
            for field, (off, size) in self.index[key].items():
                f.seek(off)
                data = f.read(size)
                if len(data) != size:
                    raise CorruptStoreError(f"{self.path}: member {key}.{field} is truncated")
                out[field] = data
        return out

    def read_key(self, key: str, row: int | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray], list[bytes]]:
        """``(meta, arrays, frames)`` of the sample ``key`` (at ``row`` of the shard: needed when indexed)."""
        fields = self._members(key, row)
        arrays: dict[str, np.ndarray] = {}
        frames: dict[int, bytes] = {}
        if "meta.json" not in fields:
            raise CorruptStoreError(f"{self.path}: sample {key!r} has no .meta.json")
        meta = load_json_bytes(fields["meta.json"], f"{self.path}:{key}.meta.json")
        for field, data in fields.items():
            if field.endswith(".npy"):
                arrays[field[: -len(".npy")]] = load_npy_bytes(data, f"{self.path}:{key}.{field}")
            elif (m := _FRAME_RE.match(field)) is not None:
                frames[int(m.group(1))] = data
        if sorted(frames) != list(range(len(frames))):
            raise CorruptStoreError(f"{self.path}: sample {key!r} has non-contiguous frame members {sorted(frames)}")
        return meta, arrays, [frames[i] for i in range(len(frames))]
