"""Per-shard offset index of a WebDataset tar: a clip read is one ranged read, not a header scan.

``shards/<name>.idx.json`` (written at extraction time next to ``<name>.tar``, listed in the
shard's sidecar and in ``index.json`` with its sha256, so ``verify`` covers it)::

    {"geovr_wds_index": 1, "tar_bytes": <size of the tar>,
     "samples": {"<key>": [start, end], ...}}

``[start, end)`` is the byte range of one sample in the tar: from the first tar header block of
its first member (PAX extended headers included) to the 512-byte boundary after its last
member's data. Plain ``webdataset`` readers open ``*.tar`` and never see this file.

The index is untrusted input like the tar: every range is checked against the tar's size from
the manifest (block-aligned, inside the file, bounded by ``TarLimits``) and the fetched bytes
are parsed as a tar again — member names must be ``<key>.<field>``, sizes come from the real
headers, and a range that cuts a member short or spills into another sample is refused.
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from geovr.shared.safety import CorruptStoreError, TarLimits, load_json_bytes, safe_tar_members

__all__ = ["INDEX_SUFFIX", "build_wds_index", "check_range", "parse_wds_index", "read_sample_members"]

INDEX_VERSION = 1
INDEX_SUFFIX = ".idx.json"
"""File name suffix of the index: ``shards/<name>.idx.json``."""
BLOCK = tarfile.BLOCKSIZE


def _key_of(member_name: str) -> str:
    folder, _, base = member_name.rpartition("/")
    stem = base.partition(".")[0]
    return f"{folder}/{stem}" if folder else stem


def build_wds_index(tar_path: str) -> bytes:
    """The index of the local tar ``tar_path`` (samples must be contiguous, as ``write_wds_shard`` writes them)."""
    import os

    samples: dict[str, list[int]] = {}
    with tarfile.open(tar_path, "r:") as tf:
        for m in tf:
            if not m.isfile():
                continue
            key = _key_of(m.name)
            end = -(-(m.offset_data + m.size) // BLOCK) * BLOCK
            if key in samples:
                if samples[key][1] != m.offset:
                    raise ValueError(f"{tar_path}: members of sample {key!r} are not contiguous")
                samples[key][1] = end
            else:
                samples[key] = [m.offset, end]
    doc = {"geovr_wds_index": INDEX_VERSION, "tar_bytes": os.path.getsize(tar_path), "samples": samples}
    return (json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n").encode()


def parse_wds_index(data: bytes, where: str, tar_bytes: int, limits: TarLimits | None = None) -> dict[str, Any]:
    """``key -> [start, end]`` (unchecked) from index bytes; ``check_range`` checks a range before it is read.

    The header (version, the tar's size) is checked here; ranges are checked one at a time when
    read, so opening a shard costs one JSON parse, not a pass over all its samples.
    """
    limits = limits or TarLimits()
    doc = load_json_bytes(data, where)
    if not isinstance(doc, dict) or doc.get("geovr_wds_index") != INDEX_VERSION:
        raise CorruptStoreError(f"{where}: not a geovr WebDataset index (version {INDEX_VERSION})")
    if doc.get("tar_bytes") != tar_bytes:
        raise CorruptStoreError(f"{where}: indexes a tar of {doc.get('tar_bytes')} bytes, the shard has {tar_bytes}")
    samples = doc.get("samples")
    if not isinstance(samples, dict) or len(samples) > limits.max_members:
        raise CorruptStoreError(f"{where}: 'samples' must be an object of at most {limits.max_members} entries")
    return samples


def check_range(rng: Any, key: str, where: str, tar_bytes: int, limits: TarLimits | None = None) -> tuple[int, int]:
    """``(start, end)`` of an index entry, refused unless it is a block-aligned range inside the tar."""
    limits = limits or TarLimits()
    ok = isinstance(rng, list) and len(rng) == 2 and all(type(x) is int for x in rng)
    if ok:
        start, end = rng
        ok = (0 <= start < end <= tar_bytes and start % BLOCK == 0 and end % BLOCK == 0
              and end - start <= limits.max_total_bytes)
    if not ok:
        raise CorruptStoreError(f"{where}: sample {key!r}: range {rng!r} is not a block-aligned range inside "
                                f"the {tar_bytes}-byte tar")
    return int(rng[0]), int(rng[1])


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
        fields[field] = data[m.offset_data : m.offset_data + m.size]
    if not fields:
        raise CorruptStoreError(f"{where}: indexed range of {key!r} holds no members")
    return fields
