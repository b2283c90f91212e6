"""The corpus manifest: the input of ``geovr extract`` (columns in docs/architecture.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from geovr.shared.errors import UsageError

REQUIRED = ("clip_id", "uri")


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


def read_corpus(path: str | Path) -> list[CorpusRow]:
    """Read a Parquet or JSONL corpus manifest; errors name the file and the row."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: corpus manifest not found")
    if path.suffix == ".parquet":
        from geovr.shared.tables import read_rows

        records = read_rows(path)
    elif path.suffix in (".jsonl", ".json"):
        records = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise UsageError(f"{path}:{n}: not valid JSON ({exc})") from exc
    else:
        raise UsageError(f"{path}: corpus manifest must be .parquet or .jsonl")
    rows, seen = [], set()
    base = path.parent
    for n, r in enumerate(records, 1):
        missing = [c for c in REQUIRED if not r.get(c)]
        if missing:
            raise UsageError(f"{path}: row {n} lacks required column(s) {missing}")
        cid = str(r["clip_id"])
        if "." in cid or cid in seen:
            raise UsageError(f"{path}: row {n}: clip_id {cid!r} is duplicated or contains '.'")
        seen.add(cid)
        gt = r.get("gt_dir")
        rows.append(CorpusRow(
            clip_id=cid, uri=base / str(r["uri"]), start_frame=int(r.get("start_frame") or 0),
            end_frame=None if r.get("end_frame") is None else int(r["end_frame"]),
            gt_dir=None if not gt else base / str(gt),
        ))
    return rows
