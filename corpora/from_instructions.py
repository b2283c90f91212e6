"""``geovr corpus from-instructions``: instruction files + a video root -> corpus manifest + rewritten instructions.

One manifest row per **unique** clip (a video, or a distinct frame range of one), however many
instruction rows use it, with ids from :mod:`geovr.corpora.ids`. Every instruction row that names an
existing, readable video is written back with that ``clip_id``, so stage two
(``geovr.train.data.read_instructions``) joins it to the cached clip exactly. Rows whose video is
missing, unreadable or too short are left out of both and listed, never dropped silently.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from geovr.corpora.ids import check_ids, range_clip_id, video_clip_id
from geovr.corpora.instructions import (
    InstructionError,
    InstructionRow,
    output_names,
    read_instruction_file,
    write_jsonl,
)
from geovr.shared.sampling import SamplingConfig, frame_count

MANIFEST_NAME = "corpus.jsonl"
"""The manifest written in the output folder."""
MISSING_NAME = "missing_videos.tsv"
"""Every video left out: ``reason<TAB>path<TAB>rows``."""
SUMMARY_NAME = "summary.json"
"""The job's summary, machine-readable."""
GT_FILES = ("extrinsics.npy", "intrinsics.npy", "depth.npy")
"""A ground-truth folder (docs/architecture.md) holds these, indexed by source frame."""


@dataclass
class CorpusFromInstructions:
    """One ``from-instructions`` job."""

    instructions: list[Path]
    """Instruction files (JSON array or JSON Lines, detected)."""
    video_root: Path
    """Folder the rows' relative video paths are resolved against (VSI-590K's folder in the paper)."""
    out: Path
    """Output folder: ``corpus.jsonl``, ``instructions/*.jsonl``, ``missing_videos.tsv``, ``summary.json``."""
    gt_root: Path | None = None
    """Optional ground-truth root: ``<gt_root>/<video path without suffix>/`` is attached as ``gt_dir``
    when its frame count equals the video's (e.g. the output of ``geovr corpus import-scannet``)."""
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    """The sampling ``geovr extract`` will use (frame counts, too-short check, ``--plan`` estimate)."""
    probe: bool = True
    """Probe every video with PyAV (frame count, fps): durations, readability, ranges in seconds."""
    workers: int = 4
    """Threads probing videos."""


@dataclass
class CorpusReport:
    """What a job found and wrote."""

    rows: int = 0
    """Instruction rows read."""
    rows_without_video: int = 0
    """Rows with no video (image-only rows): skipped, as the paper's loader does."""
    rows_written: int = 0
    """Rows written back with a ``clip_id``."""
    unique_videos: int = 0
    """Distinct videos referenced."""
    clips: int = 0
    """Manifest rows (distinct videos / frame ranges that are kept)."""
    left_out: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Video path -> (reason, rows referencing it) for every video left out."""
    bad_rows: list[tuple[str, int, str]] = field(default_factory=list)
    """(file, row, reason) of rows dropped for their own fields (a range outside the video...)."""
    duration_s: float = 0.0
    """Summed duration of the kept clips (seconds; NaN-free: sources without fps are not counted)."""
    gt_attached: int = 0
    """Clips given a ``gt_dir``."""
    gt_mismatch: list[str] = field(default_factory=list)
    """Ground-truth folders found but not attached (frame count differs from the video's)."""
    count_requests: int = 0
    """Rows that ask for a frame count (``num_frames``)."""
    count_differs: int = 0
    """... of which the clip's cached frame count differs (they get the cached set)."""
    manifest: Path | None = None
    instructions_out: list[Path] = field(default_factory=list)
    missing_file: Path | None = None

    @property
    def rows_left_out(self) -> int:
        return sum(n for _, n in self.left_out.values()) + len(self.bad_rows)


@dataclass
class _Source:
    path: Path
    frames: int | None = None
    fps: float = float("nan")
    error: str | None = None


def _probe_one(src: _Source) -> _Source:
    from geovr.shared.video import IMAGE_SUFFIXES, VideoError, count_frames

    try:
        if src.path.is_dir():
            src.frames = sum(1 for p in src.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            src.frames, src.fps = count_frames(src.path)
    except (VideoError, OSError) as exc:
        src.error = f"unreadable: {exc}"
    return src


def _gt_frames(gt: Path) -> int | None:
    """Frames of a ground-truth folder (the shortest of its three arrays), None if it is not one."""
    import numpy as np

    if not all((gt / f).is_file() for f in GT_FILES):
        return None
    return min(int(np.load(gt / f, mmap_mode="r", allow_pickle=False).shape[0]) for f in GT_FILES)


def _relpath(target: Path, base: Path) -> str:
    return PurePosixPath(os.path.relpath(target.resolve(), base.resolve())).as_posix()


def _frame_range(row: InstructionRow, src: _Source) -> tuple[int, int | None]:
    """``(start, end)`` source frames of a row's request (end None = end of video); raises ValueError."""
    req = row.request
    if req.start_time is not None or req.end_time is not None:
        if src.frames is None or not math.isfinite(src.fps) or src.fps <= 0:
            raise ValueError("a time range needs the video's fps (probe the videos; image folders have none)")
        start = math.floor((req.start_time or 0.0) * src.fps)
        end = None if req.end_time is None else math.ceil(req.end_time * src.fps)
    else:
        start, end = req.start_frame or 0, req.end_frame
    if end is not None and end <= start:
        raise ValueError(f"empty frame range [{start}, {end})")
    if src.frames is not None:
        if start >= src.frames:
            raise ValueError(f"frame range starts at {start}, the video has {src.frames} frames")
        if end is not None and end >= src.frames:
            end = None
    return start, end


def run(job: CorpusFromInstructions) -> CorpusReport:  # noqa: C901
    """Run the job; raises ``InstructionError`` / ``ValueError`` for bad input (nothing is written then)."""
    if not job.instructions:
        raise InstructionError("give at least one instruction file")
    if not job.video_root.is_dir():
        raise InstructionError(f"{job.video_root}: video root is not a folder")
    if job.gt_root is not None and not job.gt_root.is_dir():
        raise InstructionError(f"{job.gt_root}: ground-truth root is not a folder")
    names = output_names(job.instructions)
    inst_dir = job.out / "instructions"
    inputs = {p.resolve() for p in job.instructions}
    if any((inst_dir / n).resolve() in inputs for n in names):
        raise InstructionError(f"{inst_dir}: would overwrite an input instruction file; choose another --out")
    rows = [r for i, p in enumerate(job.instructions) for r in read_instruction_file(p, i)]
    needs_fps = [r for r in rows if r.request.start_time is not None or r.request.end_time is not None]
    if needs_fps and not job.probe:
        raise InstructionError(f"{len(needs_fps)} rows ask for a time range: that needs --probe (the videos' fps)")

    rep = CorpusReport(rows=len(rows))
    per_video = Counter(r.video for r in rows if r.video is not None)
    rep.unique_videos = len(per_video)
    rep.rows_without_video = sum(1 for r in rows if r.video is None)
    bad_paths = {r.video: r.bad_path for r in rows if r.bad_path}
    sources: dict[str, _Source] = {}
    for rel in per_video:
        bad = bad_paths.get(rel)
        if bad:
            rep.left_out[rel] = (f"bad path: {bad}", per_video[rel])
            continue
        path = job.video_root / rel
        if not (path.is_file() or path.is_dir()):
            rep.left_out[rel] = ("missing", per_video[rel])
            continue
        sources[rel] = _Source(path)
    if job.probe and sources:
        with ThreadPoolExecutor(max(1, job.workers)) as pool:
            list(pool.map(_probe_one, sources.values()))
        for rel, src in list(sources.items()):
            reason = src.error
            if reason is None and (src.frames or 0) < job.sampling.min_frames:
                reason = f"too short: {src.frames} frames < min_frames {job.sampling.min_frames}"
            if reason:
                rep.left_out[rel] = (reason, per_video[rel])
                del sources[rel]

    clips: dict[str, dict[str, Any]] = {}
    out_rows: list[list[dict[str, Any]]] = [[] for _ in job.instructions]
    for r in rows:
        if r.video is None or r.video not in sources:
            continue
        src = sources[r.video]
        try:
            start, end = _frame_range(r, src)
        except ValueError as exc:
            rep.bad_rows.append((str(job.instructions[r.file_index]), r.line, str(exc)))
            continue
        n_src = None if src.frames is None else (src.frames if end is None else end) - start
        if n_src is not None and n_src < job.sampling.min_frames:
            rep.bad_rows.append((str(job.instructions[r.file_index]), r.line,
                                 f"frame range [{start}, {end}) has {n_src} frames < min_frames"))
            continue
        vid = video_clip_id(r.video)
        cid = vid if (start == 0 and end is None) else range_clip_id(vid, start, end)
        if cid not in clips:
            fps = src.fps if math.isfinite(src.fps) and src.fps > 0 else None
            clips[cid] = {"clip_id": cid, "uri": _relpath(src.path, job.out), "start_frame": start,
                          "end_frame": end, "gt_dir": None, "source": r.video, "num_frames": n_src,
                          "fps": fps, "duration_s": None if (fps is None or n_src is None) else n_src / fps,
                          "qa_rows": 0}
        clips[cid]["qa_rows"] += 1
        if r.request.num_frames is not None:
            rep.count_requests += 1
            if n_src is not None and frame_count(n_src, src.fps, job.sampling) != r.request.num_frames:
                rep.count_differs += 1
        out_rows[r.file_index].append({**r.data, "clip_id": cid})
    check_ids(clips)

    if job.gt_root is not None:
        for c in clips.values():
            gt = job.gt_root / str(PurePosixPath(c["source"]).with_suffix(""))
            n_gt = _gt_frames(gt) if gt.is_dir() else None
            if n_gt is None:
                continue
            n_video = sources[c["source"]].frames
            if n_video is not None and n_gt == n_video:
                c["gt_dir"] = _relpath(gt, job.out)
                rep.gt_attached += 1
            else:
                rep.gt_mismatch.append(f"{gt}: {n_gt} ground-truth frames, video has {n_video}")

    rep.clips = len(clips)
    rep.rows_written = sum(len(x) for x in out_rows)
    rep.duration_s = float(sum(c["duration_s"] or 0.0 for c in clips.values()))
    job.out.mkdir(parents=True, exist_ok=True)
    inst_dir.mkdir(exist_ok=True)
    rep.manifest = job.out / MANIFEST_NAME
    write_jsonl(rep.manifest, list(clips.values()))
    for name, rws in zip(names, out_rows, strict=True):
        write_jsonl(inst_dir / name, rws)
        rep.instructions_out.append(inst_dir / name)
    missing = job.out / MISSING_NAME
    if rep.left_out or rep.bad_rows:
        lines = [f"{reason}\t{rel}\t{n}" for rel, (reason, n) in sorted(rep.left_out.items())]
        lines += [f"bad row: {why}\t{f}:{line}\t1" for f, line, why in rep.bad_rows]
        missing.write_text("reason\tpath\trows\n" + "\n".join(lines) + "\n")
        rep.missing_file = missing
    elif missing.exists():
        missing.unlink()
    (job.out / SUMMARY_NAME).write_text(json.dumps(summary_dict(rep), indent=1))
    return rep


def summary_dict(rep: CorpusReport) -> dict[str, Any]:
    """The report as JSON-able numbers and lists."""
    return {
        "rows": rep.rows, "rows_without_video": rep.rows_without_video, "rows_written": rep.rows_written,
        "rows_left_out": rep.rows_left_out, "unique_videos": rep.unique_videos, "clips": rep.clips,
        "videos_left_out": len(rep.left_out), "duration_s": rep.duration_s, "gt_attached": rep.gt_attached,
        "gt_mismatch": rep.gt_mismatch, "count_requests": rep.count_requests, "count_differs": rep.count_differs,
        "left_out": {k: {"reason": v[0], "rows": v[1]} for k, v in sorted(rep.left_out.items())},
        "bad_rows": [{"file": f, "row": n, "reason": w} for f, n, w in rep.bad_rows],
    }


def format_summary(rep: CorpusReport, first: int = 5) -> str:
    """Human summary: rows, unique videos, clips, duration, what was left out."""
    h = rep.duration_s / 3600
    lines = [
        f"rows: {rep.rows} read, {rep.rows_written} written with a clip_id, {rep.rows_without_video} without a video "
        f"(skipped), {rep.rows_left_out} left out",
        f"videos: {rep.unique_videos} unique, {len(rep.left_out)} left out; clips: {rep.clips} "
        f"(total duration {rep.duration_s:.1f} s = {h:.2f} h)",
    ]
    if rep.gt_attached or rep.gt_mismatch:
        lines.append(f"ground truth: {rep.gt_attached} clips with gt_dir, {len(rep.gt_mismatch)} folders not attached "
                     "(frame count differs)")
    if rep.count_requests:
        lines.append(f"frame counts: {rep.count_requests} rows ask for one; {rep.count_differs} get the clip's cached "
                     "set with a different count (docs/corpora.md)")
    if rep.left_out:
        shown = sorted(rep.left_out.items())[:first]
        lines.append(f"LEFT OUT {len(rep.left_out)} videos (first {len(shown)}):")
        lines += [f"  {rel}: {reason} ({n} rows)" for rel, (reason, n) in shown]
    if rep.bad_rows:
        lines.append(f"LEFT OUT {len(rep.bad_rows)} rows for their frame range (first {min(first, len(rep.bad_rows))}):")
        lines += [f"  {f}:{n}: {w}" for f, n, w in rep.bad_rows[:first]]
    if rep.missing_file:
        lines.append(f"all left out: {rep.missing_file}")
    lines.append(f"manifest: {rep.manifest}; instructions: {', '.join(str(p) for p in rep.instructions_out)}")
    return "\n".join(lines)


__all__ = ["CorpusFromInstructions", "CorpusReport", "InstructionError", "format_summary", "run", "summary_dict"]
