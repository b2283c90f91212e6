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
and a range that cuts a member short, spills into another sample or is not filled exactly by its
members is refused.

**The index covers the whole tar.** Its rows tile the tar back to back from byte 0 (row ``i + 1``
starts where row ``i`` ends) and everything after the last row is the end-of-archive padding: at most
``MAX_TRAILER`` bytes, all zero (``check_layout`` + ``check_trailer``, on every indexed open: one small
ranged read). So no member can hide from an indexed reader, not even one appended after the indexed
ranges (a duplicate of a sample's member would be read by a sequential tar reader such as plain
``webdataset`` or the scan path): indexed and sequential readers see the same members, or the shard is
refused. ``verify_tar_index`` (``geovr shards verify``) goes further and rebuilds the index from the
tar's headers (``scan_tar``: every member checked, a field twice in a sample or a sample split in two
refused) and compares it row by row with the stored one and with the clip table's keys.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from typing import Any

import numpy as np

from geovr.shared.safety import (
    CorruptStoreError,
    StoreError,
    TarLimits,
    index_mismatch,
    load_npy_bytes,
    safe_tar_members,
)

__all__ = ["INDEX_SUFFIX", "MAX_TRAILER", "build_wds_index", "check_layout", "check_range", "check_trailer",
           "hash_scan_tar", "match_index", "parse_wds_index", "read_meta_member", "read_sample_members", "scan_tar",
           "verify_tar_index"]

INDEX_SUFFIX = ".idx.npy"
"""File name suffix of the index: ``shards/<name>.idx.npy``."""
BLOCK = tarfile.BLOCKSIZE
MAX_TRAILER = 64 << 10
"""Most bytes a tar may hold after its last sample: the end-of-archive zero blocks padded to the record size
(Python's ``tarfile`` and GNU tar: 10240-byte records); every one of them must be zero."""


def _padded_end(m: tarfile.TarInfo) -> int:
    return -(-(m.offset_data + m.size) // BLOCK) * BLOCK


def _key_of(member_name: str) -> str:
    folder, _, base = member_name.rpartition("/")
    stem = base.partition(".")[0]
    return f"{folder}/{stem}" if folder else stem


def scan_tar(f: Any, where: str, limits: TarLimits | None = None) -> tuple[list[str], np.ndarray, int]:
    """Read every header of the tar open in ``f`` (members checked by ``safe_tar_members`` first): the sample keys
    in tar order, their index rows ``[start, end, meta_offset, meta_size]`` and the end of the last member (where
    the end-of-archive padding starts). A member name that is not ``<key>.<field>``, a field twice in a sample
    (a duplicate member) or a sample whose members are not contiguous is a ``CorruptStoreError``."""
    try:
        with tarfile.open(fileobj=f, mode="r:") as tf:
            members = safe_tar_members(tf, where, limits)
    except tarfile.TarError as e:
        raise CorruptStoreError(f"{where}: corrupt or truncated tar ({e})") from e
    keys: list[str] = []
    ranges: list[list[int]] = []
    fields: set[str] = set()
    end = 0
    for m in members:
        end = max(end, _padded_end(m))
        if not m.isfile():
            continue
        key = _key_of(m.name)
        field = m.name.rpartition("/")[2].partition(".")[2]
        if not field:
            raise CorruptStoreError(f"{where}: member {m.name!r} is not a '<key>.<field>' name")
        if keys and keys[-1] == key:
            if field in fields:
                raise CorruptStoreError(f"{where}: member {m.name!r} appears twice; refused")
            ranges[-1][1] = _padded_end(m)
        elif key in keys:
            raise CorruptStoreError(f"{where}: member {m.name!r} appears after other samples: the members of sample "
                                    f"{key!r} are not contiguous (a duplicate or appended member?); refused")
        else:
            keys.append(key)
            ranges.append([m.offset, _padded_end(m), -1, 0])
            fields = set()
        fields.add(field)
        if field == "meta.json":
            ranges[-1][2:] = [m.offset_data, m.size]
    return keys, np.asarray(ranges, dtype="<i8").reshape(-1, 4), end


class _HashingReader:
    """A file object over ``f`` that reads it once, front to back, hashing every byte, while ``tarfile`` seeks over
    member data (forward) and re-reads the byte before a header (``seek(offset - 1)``): bytes from
    ``min(pos, end - 2 * MAX_TRAILER)`` on stay in memory, the rest is dropped."""

    def __init__(self, f: Any) -> None:
        self.f, self.sha = f, hashlib.sha256()
        self.pos = 0  # logical position (tell/seek)
        self.end = 0  # bytes read from f and hashed
        self.buf, self.buf_start = bytearray(), 0  # f's bytes [buf_start, end)

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        pos = pos + self.pos if whence == 1 else pos
        if whence == 2 or pos < self.buf_start:
            raise io.UnsupportedOperation("forward-only reader")
        self.pos = pos
        return pos

    def _pull(self, upto: int) -> None:
        while self.end < upto:
            chunk = self.f.read(min(max(1 << 20, upto - self.end), 16 << 20))
            if not chunk:
                return
            self.sha.update(chunk)
            self.end += len(chunk)
            self.buf += chunk
            keep = min(self.pos, self.end - 2 * MAX_TRAILER)
            if keep - self.buf_start > 8 * MAX_TRAILER:  # trimmed now and then: amortised O(1) per byte
                del self.buf[: keep - self.buf_start]
                self.buf_start = keep

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            self.drain()
            n = self.end - self.pos
        self._pull(self.pos + n)
        off = self.pos - self.buf_start
        data = bytes(self.buf[off : off + n])
        self.pos += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) the rest of ``f``."""
        self._pull(1 << 62)

    def tail(self, start: int) -> bytes:
        """Bytes ``[start, end)`` (``start`` at most ``2 * MAX_TRAILER`` before the end)."""
        return bytes(self.buf[start - self.buf_start :])


def hash_scan_tar(f: Any, where: str, limits: TarLimits | None = None) -> tuple[str, list[str], np.ndarray, str]:
    """One forward pass over the tar open in ``f``: its sha256, ``scan_tar``'s keys and index rows, and the
    structural problem found (``""`` = none; the rest of the file is still hashed): ``scan_tar``'s refusals, or
    more than ``MAX_TRAILER`` bytes, or a non-zero one, after the last member."""
    r = _HashingReader(f)
    try:
        keys, rows, end = scan_tar(r, where, limits)
    except StoreError as e:
        r.drain()
        return r.sha.hexdigest(), [], np.zeros((0, 4), np.int64), str(e)
    r.drain()
    trailer = r.end - end
    problem = ""
    if trailer > MAX_TRAILER:
        problem = (f"{where}: {trailer} bytes after the last member (at most {MAX_TRAILER} bytes of end-of-archive "
                   "padding may follow); refused")
    else:
        try:
            check_trailer(r.tail(end) if trailer > 0 else b"", where, end)
        except CorruptStoreError as e:
            problem = str(e)
    return r.sha.hexdigest(), keys, rows, problem


def match_index(keys: list[str], rows: np.ndarray, want_keys: list[str], index: np.ndarray, tar_path: str,
                index_path: str) -> list[str]:
    """Problems of a stored index against the samples ``scan_tar`` found (``keys``, ``rows``) and the clip table's
    keys for the shard in row order (``want_keys``); empty = the index describes every member exactly."""
    if keys != want_keys:
        return [f"{tar_path}: samples {keys[:4]}{'...' if len(keys) > 4 else ''} differ from the clip "
                f"table's {want_keys[:4]}{'...' if len(want_keys) > 4 else ''} for this shard"]
    if (bad := index_mismatch(index, rows)) is not None:
        return [f"{index_path}: row {bad[0]} does not describe the tar's members (the tar's headers give {bad[1]}, "
                f"the index {bad[2]})"]
    return []


def build_wds_index(tar_path: str) -> bytes:
    """The index (``.npy`` bytes) of the local tar ``tar_path``; samples in tar order, each contiguous
    (``ValueError`` otherwise: the writer refuses to index a tar it could not read back)."""
    try:
        with open(tar_path, "rb") as f:
            _keys, ranges, _end = scan_tar(f, tar_path)
    except CorruptStoreError as e:
        raise ValueError(str(e)) from e
    buf = io.BytesIO()
    np.save(buf, ranges, allow_pickle=False)
    return buf.getvalue()


def check_layout(ranges: np.ndarray, where: str, tar_bytes: int) -> int:
    """Refuse an index whose rows do not tile the tar back to back from byte 0, or that leaves more than
    ``MAX_TRAILER`` bytes after its last row; return where the last row ends (the trailer's start)."""
    pos = 0
    for i, (start, end) in enumerate(ranges[:, :2].tolist()):
        if start != pos or end <= start:
            raise CorruptStoreError(f"{where}: row {i} is [{start}, {end}), the previous sample ends at {pos}: the "
                                    "index must cover the tar's samples back to back; refused")
        pos = end
    if not 0 <= tar_bytes - pos <= MAX_TRAILER:
        raise CorruptStoreError(f"{where}: the indexed samples end at byte {pos} of a {tar_bytes}-byte tar: "
                                f"{tar_bytes - pos} bytes are not covered by the index (at most {MAX_TRAILER} bytes "
                                "of end-of-archive padding may follow the last sample); refused")
    return pos


def check_trailer(data: bytes, where: str, start: int) -> None:
    """The bytes after the last sample (from offset ``start``) must be end-of-archive zeros: anything else is
    a member (or data) that an indexed reader would not see."""
    if data.count(0) != len(data):
        first = next(i for i, b in enumerate(data) if b)
        raise CorruptStoreError(f"{where}: non-zero byte at offset {start + first}, after the last sample (a member "
                                "appended after the indexed ranges, or hidden behind end-of-archive zeros?); refused")


def verify_tar_index(fs: Any, tar_path: str, index_path: str, num_clips: int, keys: list[str] | None,
                     sha256: str = "", limits: TarLimits | None = None) -> list[str]:
    """Problems of a shard's index against its tar (empty = the index describes every member exactly): one forward
    pass over the tar (``hash_scan_tar``: its sha256 must be ``sha256`` when given, the padding after the last
    member zero) rebuilds the index from the tar's headers; it must equal the stored one (``num_clips`` rows), and
    its keys the clip table's ``keys`` (row order; None = not compared)."""
    with fs.open(tar_path, "rb") as f:
        digest, got_keys, rows, problem = hash_scan_tar(f, tar_path, limits)
    if sha256 and digest != sha256:
        return [f"{tar_path}: sha256 {digest[:16]}... != index.json {sha256[:16]}... (corrupted)"]
    if problem:
        return [problem]
    try:
        index = parse_wds_index(fs.cat_file(index_path), index_path, num_clips)
    except StoreError as e:
        return [str(e)]
    return match_index(got_keys, rows, got_keys if keys is None else keys, index, tar_path, index_path)


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
    filled = max(_padded_end(m) for m in members)
    if filled != len(data):
        raise CorruptStoreError(f"{where}: the members of {key!r} end at byte {filled} of the {len(data)}-byte indexed "
                                "range (the rest is hidden from tar readers); refused")
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
