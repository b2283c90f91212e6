"""LLaVA-style instruction files as the paper trains on them, read and rewritten.

Two shapes occur (the paper's loaders, ``dataset/vsi_590k.py`` and ``dataset/vlm3r.py``):

- **VSI-590K** ``vsi_590k.jsonl``: JSON Lines; a row's ``video`` is a path relative to the video root
  (``scannet/scene0000_00.mp4``); rows with ``image`` and no ``video`` exist and are skipped (the
  paper loads video rows only).
- **VLM-3R** ``vlm3r_vsi_205k.json``: one JSON array; a row has no ``video`` but ``data_source`` and
  ``scene_name``, and the video is ``<data_source>/<scene_name>.mp4`` under the *same* root (VSI-590K's
  folder), with ``data_source`` ``scannetpp`` read as ``scannetppv2``.

Both carry ``conversations`` (``[{"from": "human"|"gpt", "value": ...}, ...]``). The format is detected
from the content, not the file name: a file whose first non-blank character is ``[`` is a JSON array,
anything else is JSON Lines.

geovr's own optional fields on a row (not in the paper's data) ask for part of a video:
``start_frame`` / ``end_frame`` (source frames, end exclusive) or ``start_time`` / ``end_time``
(seconds), and ``num_frames`` (a frame count); see docs/corpora.md "Frame sampling" for what geovr
does with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geovr.corpora.ids import normalize_relpath

VLM3R_SOURCE_RENAMES = {"scannetpp": "scannetppv2"}
"""``data_source`` values the paper's VLM-3R loader renames before building the video path."""
MAX_INSTRUCTION_BYTES = 4 << 30
"""Largest instruction file read (VSI-590K's JSONL is well under 1 GB)."""


class InstructionError(ValueError):
    """An instruction file is unreadable or a row is malformed (names the file and row)."""


@dataclass(frozen=True)
class FrameRequest:
    """The part of a video an instruction row asks for (all None = the whole video, default sampling)."""

    start_frame: int | None = None
    """First source frame."""
    end_frame: int | None = None
    """One past the last source frame."""
    start_time: float | None = None
    """Start in seconds (converted to a frame with the video's fps)."""
    end_time: float | None = None
    """End in seconds (exclusive)."""
    num_frames: int | None = None
    """Frames the row asks for (served from the cached set of its clip; see docs/corpora.md)."""

    @property
    def has_range(self) -> bool:
        return any(v is not None for v in (self.start_frame, self.end_frame, self.start_time, self.end_time))


@dataclass
class InstructionRow:
    """One row of an instruction file and the video it references."""

    file_index: int
    """Index of its file in the job's input list."""
    line: int
    """1-based line (JSONL) or array position + 1 (JSON)."""
    data: dict[str, Any]
    """The row as read (rewritten with ``clip_id`` on output)."""
    video: str | None
    """Normalised path relative to the video root; None for rows without a video (image-only rows)."""
    bad_path: str | None = None
    """Why ``video`` could not be resolved (absolute path, ``..``), if so."""
    request: FrameRequest = FrameRequest()
    """Frame range / count the row asks for."""


def read_records(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-array or JSON-Lines file (detected from the first non-blank character)."""
    if not path.is_file():
        raise InstructionError(f"{path}: instruction file not found")
    if path.stat().st_size > MAX_INSTRUCTION_BYTES:
        raise InstructionError(f"{path}: larger than {MAX_INSTRUCTION_BYTES} bytes")
    text = path.read_text(encoding="utf-8-sig")  # a BOM is not JSON
    head = text.lstrip()[:1]
    if head == "[":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InstructionError(f"{path}: a JSON array that does not parse ({exc})") from exc
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InstructionError(f"{path}:{n}: not valid JSON Lines ({exc}); expected one object per "
                                       "line or one JSON array") from exc
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict):
            raise InstructionError(f"{path}: row {n} is a {type(r).__name__}, not an object")
    return rows


def video_path_of(row: dict[str, Any]) -> str | None:
    """The row's video path relative to the video root as the paper's loaders build it (not normalised)."""
    if row.get("video") is not None:
        v = row["video"]
        if not isinstance(v, str):
            raise InstructionError(f"'video' is a {type(v).__name__}, expected a relative path string")
        return v
    if row.get("data_source") is not None and row.get("scene_name") is not None:
        source = str(row["data_source"])
        return f"{VLM3R_SOURCE_RENAMES.get(source, source)}/{row['scene_name']}.mp4"
    return None


def _int(row: dict[str, Any], key: str) -> int | None:
    v = row.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InstructionError(f"{key!r} must be a non-negative integer, got {v!r}")
    return v


def _seconds(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
        raise InstructionError(f"{key!r} must be a non-negative number of seconds, got {v!r}")
    return float(v)


def frame_request(row: dict[str, Any]) -> FrameRequest:
    """The range / count fields of a row (validated)."""
    req = FrameRequest(start_frame=_int(row, "start_frame"), end_frame=_int(row, "end_frame"),
                       start_time=_seconds(row, "start_time"), end_time=_seconds(row, "end_time"),
                       num_frames=_int(row, "num_frames"))
    frames = req.start_frame is not None or req.end_frame is not None
    times = req.start_time is not None or req.end_time is not None
    if frames and times:
        raise InstructionError("give a frame range (start_frame/end_frame) or a time range (start_time/end_time), "
                               "not both")
    if req.num_frames == 0:
        raise InstructionError("'num_frames' must be >= 1")
    return req


def read_instruction_file(path: Path, file_index: int) -> list[InstructionRow]:
    """All rows of one file, each with its resolved video path; malformed rows raise ``InstructionError``."""
    out = []
    for n, r in enumerate(read_records(path), 1):
        conv = r.get("conversations")
        if not isinstance(conv, list) or not conv or not all(
                isinstance(t, dict) and "from" in t and "value" in t for t in conv):
            raise InstructionError(f"{path}: row {n} has no 'conversations' list of {{from, value}} turns")
        try:
            raw = video_path_of(r)
            req = frame_request(r)
        except InstructionError as exc:
            raise InstructionError(f"{path}: row {n}: {exc}") from exc
        video, bad = None, None
        if raw is not None:
            try:
                video = normalize_relpath(raw)
            except ValueError as exc:
                video, bad = raw, str(exc)
        out.append(InstructionRow(file_index=file_index, line=n, data=r, video=video, bad_path=bad, request=req))
    return out


def output_names(paths: list[Path]) -> list[str]:
    """File names of the rewritten instruction files (``<stem>.jsonl``; a shared stem gets its index)."""
    stems = [p.stem for p in paths]
    return [f"{s}.jsonl" if stems.count(s) == 1 else f"{i}_{s}.jsonl" for i, s in enumerate(stems)]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as JSON Lines atomically (temporary file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)
