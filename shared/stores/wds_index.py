"""Per-shard offset index of a WebDataset tar: a clip read is one ranged read, not a header scan.

``shards/<name>.idx.npy`` (written at extraction time next to ``<name>.tar``, listed in the
shard's sidecar and in ``index.json`` with its sha256, so ``verify`` covers it) is an int64
``[n, 4]`` ``.npy`` array: row ``i`` (the clip's ``row`` in ``clips.parquet``, i.e. its position in
the sidecar's ``clips``) is ``[start, end, meta_offset, meta_size]``: ``[start, end)`` is the byte
range of that clip's sample in the tar, from the first tar header block of its first member (PAX
extended headers included) to the 512-byte boundary after its last member's data, and the last
two locate its ``meta.json`` data (stage two's metadata-only check reads just those bytes). Opening a shard costs one small read and ``np.load``
(16 bytes per clip, no per-entry parsing), so it stays cheap however many shards a store has.
Plain ``webdataset`` readers open ``*.tar`` and never see this file.

The index is untrusted input like the tar: its shape must match the shard's clip count, every
range is checked against the tar's size from the manifest (block-aligned, inside the file,
bounded by ``TarLimits``) before it is read, and the fetched bytes are parsed as a tar again —
member names must be ``<key>.<field>`` of the requested clip, sizes come from the real headers,
and a range that cuts a member short or spills into another sample is refused.
"""

from __future__ import annotations

import io
import tarfile
from typing import Any

import numpy as np

from geovr.shared.safety import CorruptStoreError, TarLimits, load_npy_bytes, safe_tar_members

__all__ = ["INDEX_SUFFIX", "build_wds_index", "check_range", "parse_wds_index", "read_meta_member",
           "read_sample_members"]

INDEX_SUFFIX = ".idx.npy"
"""File name suffix of the index: ``shards/<name>.idx.npy``."""
BLOCK = tarfile.BLOCKSIZE


def _key_of(member_name: str) -> str:
    folder, _, base = member_name.rpartition("/")
    stem = base.partition(".")[0]
    return f"{folder}/{stem}" if folder else stem


def build_wds_index(tar_path: str) -> bytes:
    """The index (``.npy`` bytes) of the local tar ``tar_path``; samples in tar order, each contiguous."""
    keys: list[str] = []
    ranges: list[list[int]] = []  # [start, end, meta.json data offset, meta.json size]
    with tarfile.open(tar_path, "r:") as tf:
        for m in tf:
            if not m.isfile():
                continue
            key = _key_of(m.name)
            end = -(-(m.offset_data + m.size) // BLOCK) * BLOCK
            if keys and keys[-1] == key:
                ranges[-1][1] = end
            elif key in keys:
                raise ValueError(f"{tar_path}: members of sample {key!r} are not contiguous")
            else:
                keys.append(key)
                ranges.append([m.offset, end, -1, 0])
            if m.name.endswith(".meta.json"):
                ranges[-1][2:] = [m.offset_data, m.size]
    buf = io.BytesIO()
    np.save(buf, np.asarray(ranges, dtype="<i8").reshape(-1, 4), allow_pickle=False)
    return buf.getvalue()


def parse_wds_index(data: bytes, where: str, num_clips: int) -> np.ndarray:
    """The ``[num_clips, 4]`` int64 rows of an index (no pickle); ``check_range`` checks one before use."""
    arr = load_npy_bytes(data, where)
    if arr.dtype.kind not in "iu" or arr.shape != (num_clips, 4):
        raise CorruptStoreError(f"{where}: index must be an integer [{num_clips}, 4] array, got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64, copy=False)


def check_range(rng: Any, key: str, where: str, tar_bytes: int, limits: TarLimits | None = None) -> tuple[int, int]:
    """``(start, end)`` of an index entry, refused unless it is a block-aligned range inside the tar."""
    limits = limits or TarLimits()
    start, end = int(rng[0]), int(rng[1])
    if not (0 <= start < end <= tar_bytes and start % BLOCK == 0 and end % BLOCK == 0
            and end - start <= limits.max_total_bytes):
        raise CorruptStoreError(f"{where}: sample {key!r}: range [{start}, {end}) is not a block-aligned range "
                                f"inside the {tar_bytes}-byte tar")
    return start, end


def read_sample_members(fs: Any, tar_path: str, key: str, rng: tuple[int, int],
                        limits: TarLimits | None = None) -> dict[str, bytes]:
    """``field -> bytes`` of sample ``key``, fetched with one ranged read of ``rng`` and parsed as a tar."""
    start, end = rng
    try:
        data = fs.cat_file(tar_path, start=start, end=end)
    except FileNotFoundError as e:
        raise CorruptStoreError(f"{tar_path}: shard file is missing") from e
    if len(data) != end - start:
        raise CorruptStoreError(f"{tar_path}: sample {key!r}: read {len(data)} of {end - start} indexed bytes (truncated)")
    where = f"{tar_path}[{start}:{end}]"
    buf = io.BytesIO(data)
    try:
        with tarfile.open(fileobj=buf, mode="r:") as tf:
            members = safe_tar_members(tf, where, limits)
    except tarfile.TarError as e:
        raise CorruptStoreError(f"{where}: indexed range of {key!r} is not a run of tar members ({e})") from e
    fields: dict[str, bytes] = {}
    for m in members:
        if not m.isfile():
            continue
        base = m.name.rpartition("/")[2]
        stem, dot, field = base.partition(".")
        if _key_of(m.name) != key or not dot or not field:
            raise CorruptStoreError(f"{where}: member {m.name!r} in the indexed range is not a '{key}.<field>' member")
        if m.offset_data + m.size > len(data):
            raise CorruptStoreError(f"{where}: member {m.name!r} runs past the indexed range")
        if field in fields:
            raise CorruptStoreError(f"{where}: member {m.name!r} appears twice; refused")
        fields[field] = data[m.offset_data : m.offset_data + m.size]
    if not fields:
        raise CorruptStoreError(f"{where}: indexed range of {key!r} holds no members")
    return fields


def read_meta_member(f: Any, tar_path: str, key: str, entry: Any, limits: TarLimits | None = None) -> bytes:
    """The ``meta.json`` bytes of an index row ``[start, end, meta_offset, meta_size]`` from the open tar ``f``:
    one exact read, refused unless it lies inside the sample's checked range and is a bounded size.
    (The caller parses it as JSON and checks its ``clip_id``; the range itself was hashed with the store.)"""
    start, end = int(entry[0]), int(entry[1])
    off, size = int(entry[2]), int(entry[3])
    if not (start + BLOCK <= off and off + size <= end and 0 < size <= (limits or TarLimits()).max_member_bytes):
        raise CorruptStoreError(f"{tar_path}: sample {key!r}: meta.json at [{off}, {off + size}) is not inside "
                                f"its indexed range [{start}, {end})")
    f.seek(off)
    data = f.read(size)
    if len(data) != size:
        raise CorruptStoreError(f"{tar_path}: sample {key!r}: meta.json is truncated")
    return data
