"""Shard sidecars (``shards/<name>.json``): the per-shard commit record."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

from geovr.shared.hashing import sha256_file
from geovr.shared.manifest import SHARD_NAME_RE, FileEntry, ShardEntry
from geovr.shared.safety import CorruptStoreError, UnsafeContentError, check_rel_path

__all__ = ["SHARD_NAME_RE", "ClipFailure", "ShardInfo", "file_entries", "shard_digest"]

SIDECAR_VERSION = 1


@dataclass(frozen=True)
class ClipFailure:
    """A clip that could not be extracted (recorded, not stored)."""

    clip_id: str
    """The clip's id from the corpus manifest."""
    uri: str
    """The clip's source video."""
    reason: str
    """Human-readable cause (exception type and message)."""


@dataclass(frozen=True)
class ShardInfo:
    """What a committed shard holds; serialised as its sidecar."""

    name: str
    """Shard name ``<prefix>-<seq:05d>``."""
    format: str
    """``zarr`` or ``wds``."""
    files: list[FileEntry]
    """Files of the shard, relative to ``STORE/shards/``, with bytes and sha256."""
    clips: list[str]
    """Stored clip ids in row order."""
    num_frames: list[int]
    """Frames per stored clip (same order as ``clips``)."""
    failures: list[ClipFailure] = field(default_factory=list)
    """Clips of this shard's batch that failed."""

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def sha256(self) -> str:
        return shard_digest(self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sidecar_version": SIDECAR_VERSION,
            "name": self.name,
            "format": self.format,
            "files": [vars(f) for f in self.files],
            "clips": list(self.clips),
            "num_frames": [int(n) for n in self.num_frames],
            "failures": [vars(f) for f in self.failures],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> ShardInfo:
        try:
            info = cls(
                name=str(d["name"]),
                format=str(d["format"]),
                files=[FileEntry(str(f["path"]), int(f["bytes"]), str(f["sha256"])) for f in d["files"]],
                clips=[str(c) for c in d["clips"]],
                num_frames=[int(n) for n in d["num_frames"]],
                failures=[ClipFailure(str(f["clip_id"]), str(f["uri"]), str(f["reason"])) for f in d["failures"]],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptStoreError(f"{where}: malformed shard sidecar ({type(e).__name__}: {e})") from e
        if len(info.clips) != len(info.num_frames):
            raise CorruptStoreError(f"{where}: {len(info.clips)} clips but {len(info.num_frames)} frame counts")
        if not SHARD_NAME_RE.match(info.name):
            raise CorruptStoreError(f"{where}: invalid shard name {info.name!r}")
        for f in info.files:
            check_rel_path(f.path, where)
            wds_ok = f.path in (f"{info.name}.tar", f"{info.name}.idx.npy")
            if not (wds_ok if info.format == "wds" else f.path.startswith(f"{info.name}/")):
                raise UnsafeContentError(f"{where}: file {f.path!r} does not belong to shard {info.name!r}; refused")
        return info

    def entry(self) -> ShardEntry:
        """The manifest entry of this shard."""
        return ShardEntry(
            name=self.name, format=self.format, files=list(self.files), bytes=self.bytes,
            samples=len(self.clips), failed=len(self.failures), num_frames=sum(self.num_frames), sha256=self.sha256,
        )


def shard_digest(files: list[FileEntry]) -> str:
    """sha256 of the tar of a WebDataset shard (its offset index is hashed in ``files``), or of the sorted ``"<path> <sha256>\\n"`` lines for a multi-file shard."""
    tars = [f for f in files if f.path.endswith(".tar")]
    if len(tars) == 1 and all(f is tars[0] or f.path.endswith(".idx.npy") for f in files):
        return tars[0].sha256
    lines = "".join(f"{f.path} {f.sha256}\n" for f in sorted(files, key=lambda f: f.path))
    return hashlib.sha256(lines.encode()).hexdigest()


def file_entries(shards_dir: str, name: str, fmt: str, at: dict[str, str] | None = None) -> list[FileEntry]:
    """Hash the files of shard ``name`` in local ``shards_dir``.

    ``at`` maps a committed name (``<name>`` folder or ``<name>.tar`` / ``<name>.idx.npy``) to where that
    file or folder is now (a writer hashes its temporary files before the rename that commits them);
    the entries are named as committed either way.
    """
    at = at or {}
    if fmt == "wds":
        names = [f"{name}.tar", f"{name}.idx.npy"]
        rel = [(r, at.get(r, os.path.join(shards_dir, r))) for r in names]
        rel = rel[:1] + [x for x in rel[1:] if os.path.exists(x[1])]  # the offset index is absent in older stores
    else:
        rel = []
        top = at.get(name, os.path.join(shards_dir, name))
        for dirpath, _dirs, files in os.walk(top):
            for fn in files:
                sub = os.path.relpath(os.path.join(dirpath, fn), top).replace(os.sep, "/")
                rel.append((f"{name}/{sub}", os.path.join(dirpath, fn)))
        rel.sort()
    out = []
    for r, real in rel:
        digest, size = sha256_file(real)
        out.append(FileEntry(path=r, bytes=size, sha256=digest))
    return out
