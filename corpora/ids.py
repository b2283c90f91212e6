"""Clip ids for real corpora: stable, collision-free and valid store keys.

A video's id is derived from its path **relative to the video root** (normalised, POSIX), never
from its bare file stem: ``scannet/scene0000_00.mp4`` and ``arkitscenes/scene0000_00.mp4`` are
different clips. The id is a readable slug of that path plus the first 10 hex digits of the
sha256 of the exact path string::

    scannet/scene0000_00.mp4  ->  scannet-scene0000_00-<10 hex>

Only ``[a-z0-9_-]`` occur: no ``.`` (the store's key rule) and no ``/``, so the WebDataset key
(``/`` -> ``__``) is the id itself and distinct ids stay distinct keys. The id depends on nothing
but the relative path, so the same video gets the same id in every run, in every instruction file
and in the scan importers' manifests. A clip that covers only a frame range of its video appends
``-r<start>-<end>`` (``end`` = ``end`` for the end of the video).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

HASH_HEX = 10
"""Hex digits of the path hash in an id (40 bits: collisions are checked, never expected)."""
SLUG_MAX = 64
"""Longest readable slug kept in an id (the hash keeps longer paths distinct)."""
ID_PATTERN = re.compile(r"^[a-z0-9_]+(-[a-z0-9_]+)*$")
"""Every id this module makes matches this."""


def normalize_relpath(path: str) -> str:
    """POSIX form of a path relative to a root; refuses absolute paths, ``..`` and empty paths.

    ``./a//b.mp4`` -> ``a/b.mp4``. Raises ``ValueError`` naming the path.
    """
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"video path {path!r} is empty or not a string")
    p = PurePosixPath(path.strip())
    if p.is_absolute():
        raise ValueError(f"video path {path!r} is absolute; instruction paths are relative to the video root")
    parts = [s for s in p.parts if s not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"video path {path!r} leaves the video root ('..') or names no file")
    return "/".join(parts)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def video_clip_id(relpath: str) -> str:
    """The clip id of a whole video given its path relative to the video root."""
    rel = normalize_relpath(relpath)
    p = PurePosixPath(rel)
    stem_parts = [*p.parent.parts, p.stem if p.suffix else p.name]
    slug = "-".join(s for s in (_slug(x) for x in stem_parts) if s)[:SLUG_MAX].strip("-_") or "clip"
    digest = hashlib.sha256(rel.encode("utf-8")).hexdigest()[:HASH_HEX]
    return f"{slug}-{digest}"


def range_clip_id(video_id: str, start: int, end: int | None) -> str:
    """Id of the clip covering source frames ``[start, end)`` of the video ``video_id``."""
    if start < 0 or (end is not None and end <= start):
        raise ValueError(f"empty or negative frame range [{start}, {end})")
    return f"{video_id}-r{start}-{'end' if end is None else end}"


def check_ids(ids: Iterable[str]) -> None:
    """Refuse ids that are malformed, duplicated, or equal after the WebDataset key mapping."""
    seen: dict[str, str] = {}
    for cid in ids:
        if not ID_PATTERN.match(cid):
            raise ValueError(f"clip id {cid!r} is not of the form [a-z0-9_-]+")
        key = cid.replace("/", "__")
        if key in seen:
            raise ValueError(f"clip ids {seen[key]!r} and {cid!r} collide (same store key {key!r})")
        seen[key] = cid
