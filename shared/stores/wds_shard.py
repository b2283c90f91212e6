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
    """Random access to the samples of one tar (members checked before any is read)."""

    def __init__(self, path: str, fs: Any, limits: TarLimits | None = None) -> None:
        self.path = path
        self.fs = fs
        self.index: dict[str, dict[str, tuple[int, int]]] = {}
        try:
            with fs.open(path, "rb") as f, tarfile.open(fileobj=f, mode="r:") as tf:
                members = safe_tar_members(tf, path, limits)
        except FileNotFoundError as e:
            raise CorruptStoreError(f"{path}: shard file is missing") from e
        except tarfile.TarError as e:
            raise CorruptStoreError(f"{path}: corrupt or truncated tar ({e})") from e
        for m in members:
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

    def keys(self) -> list[str]:
        return list(self.index)

    def _read(self, f: Any, key: str, field: str) -> bytes:
        off, size = self.index[key][field]
        f.seek(off)
        data = f.read(size)
        if len(data) != size:
            raise CorruptStoreError(f"{self.path}: member {key}.{field} is truncated")
        return data

    def read_metas(self, keys: list[str]) -> list[dict[str, Any]]:
        """The ``.meta.json`` of each sample in ``keys`` alone (one open, one member read per sample; no array
        member is read or decoded)."""
        for key in keys:
            if key not in self.index or "meta.json" not in self.index[key]:
                raise CorruptStoreError(f"{self.path}: no sample with key {key!r} and a .meta.json")
        with self.fs.open(self.path, "rb") as f:
            return [load_json_bytes(self._read(f, key, "meta.json"), f"{self.path}:{key}.meta.json") for key in keys]

    def read_key(self, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray], list[bytes]]:
        """``(meta, arrays, frames)`` of the sample ``key``."""
        if key not in self.index:
            raise CorruptStoreError(f"{self.path}: no sample with key {key!r}")
        fields = self.index[key]
        arrays: dict[str, np.ndarray] = {}
        frames: dict[int, bytes] = {}
        with self.fs.open(self.path, "rb") as f:
            if "meta.json" not in fields:
                raise CorruptStoreError(f"{self.path}: sample {key!r} has no .meta.json")
            meta = load_json_bytes(self._read(f, key, "meta.json"), f"{self.path}:{key}.meta.json")
            for field in fields:
                if field.endswith(".npy"):
                    name = field[: -len(".npy")]
                    arrays[name] = load_npy_bytes(self._read(f, key, field), f"{self.path}:{key}.{field}")
                elif (m := _FRAME_RE.match(field)) is not None:
                    frames[int(m.group(1))] = self._read(f, key, field)
        if sorted(frames) != list(range(len(frames))):
            raise CorruptStoreError(f"{self.path}: sample {key!r} has non-contiguous frame members {sorted(frames)}")
        return meta, arrays, [frames[i] for i in range(len(frames))]
