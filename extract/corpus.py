"""The corpus manifest: the input of ``geovr extract`` (columns in docs/architecture.md)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geovr.shared.errors import UsageError

REQUIRED = ("clip_id", "uri")
_ID_RE = re.compile(r"^[^./\\\x00-\x1f]+(/[^./\\\x00-\x1f]+)*$")
"""Clip ids: ``/``-separated non-empty names without ``.``, ``\\`` or control characters."""


@dataclass(frozen=True)
class CorpusRow:
    """One clip to extract."""

    clip_id: str
    """Unique dot-free key."""
    uri: Path
    """Video file or image folder, resolved against the manifest's folder."""
    start_frame: int = 0
    """First source frame of the clip."""
    end_frame: int | None = None
    """One past the last source frame (None = end of source)."""
    gt_dir: Path | None = None
    """Ground-truth folder (extrinsics/intrinsics/depth .npy), if the corpus has it."""


def _frame(v: Any, where: str, col: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise UsageError(f"{where}: {col} {v!r} is not an integer")
    try:
        f = float(v)
        n = int(f)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{where}: {col} {v!r} is not an integer") from None
    if f != n or n < 0:
        raise UsageError(f"{where}: {col} {v!r} is not a non-negative integer")
    return n


def read_corpus(path: str | Path) -> list[CorpusRow]:
    """Read a Parquet or JSONL corpus manifest, all of it checked before any work starts.

    Every problem is a one-line ``UsageError`` naming the file and row: missing file or column, a line that is
    not a JSON object, a clip id that is duplicated, holds ``.``/``..``/``\\``/empty parts, or that maps to the same WebDataset key as another (``a/b`` and ``a__b``), non-integer frames.
    """
    from geovr.shared.stores.wds_shard import clip_key

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: corpus manifest not found")
    if path.suffix == ".parquet":
        from geovr.shared.tables import read_rows

        try:
            records = read_rows(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise UsageError(f"{path}: not a readable Parquet table ({type(exc).__name__}: {exc})") from exc
    elif path.suffix in (".jsonl", ".json"):
        records = []
        try:
            lines = path.read_text().splitlines()
        except UnicodeDecodeError as exc:
            raise UsageError(f"{path}: not UTF-8 text ({exc})") from exc
        for n, line in enumerate(lines, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except (json.JSONDecodeError, RecursionError) as exc:
                    raise UsageError(f"{path}:{n}: not valid JSON ({exc})") from exc
    else:
        raise UsageError(f"{path}: corpus manifest must be .parquet or .jsonl")
    rows: list[CorpusRow] = []
    seen: dict[str, int] = {}
    keys: dict[str, str] = {}
    base = path.parent
    for n, r in enumerate(records, 1):
        where = f"{path}: row {n}"
        if not isinstance(r, dict):
            raise UsageError(f"{where}: not a JSON object")
        missing = [c for c in REQUIRED if not r.get(c)]
        if missing:
            raise UsageError(f"{where} lacks required column(s) {missing}")
        cid = str(r["clip_id"])
        if not _ID_RE.match(cid):
            raise UsageError(f"{where}: clip_id {cid!r} must be '/'-separated non-empty names without '.', "
                             "backslashes or control characters (no '..', no leading '/')")
        if cid in seen:
            raise UsageError(f"{where}: clip_id {cid!r} is duplicated (first in row {seen[cid]})")
        key = clip_key(cid)
        if key in keys:
            raise UsageError(f"{where}: clip_id {cid!r} and {keys[key]!r} map to the same WebDataset key {key!r}; "
                             "rename one")
        seen[cid], keys[key] = n, cid
        gt = r.get("gt_dir")
        start = _frame(r.get("start_frame"), where, "start_frame") or 0
        end = _frame(r.get("end_frame"), where, "end_frame")
        if end is not None and end <= start:
            raise UsageError(f"{where}: end_frame {end} <= start_frame {start}")
        rows.append(CorpusRow(
            clip_id=cid, uri=base / str(r["uri"]), start_frame=start, end_frame=end,
            gt_dir=None if not gt else base / str(gt),
        ))
    return rows
