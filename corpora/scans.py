"""Writing an imported RGB-D scan as a geovr clip: an mp4 of its colour frames plus a ground-truth folder.

Layout under the importer's output folder (mirrors VSI-590K's ``<dataset>/<scene>.mp4``)::

    videos/<dataset>/<scene>.mp4          colour frames, in order, at the scan's frame rate
    gt/<dataset>/<scene>/extrinsics.npy   float64 [N, 3, 4] OpenCV camera-from-world, metres
                         intrinsics.npy   float64 [N, 3, 3] pixels of the mp4's frames
                         depth.npy        float32 [N, H, W] metric z-depth registered to the mp4's frames, 0 = invalid
                         timestamps.npy   float64 [N] seconds of each frame in the scan's clock
                         import.json      dataset, source folder, source frame of each row, dropped frames (written last)
    corpus.jsonl                          one manifest row per imported scan (merged across runs)

Row ``i`` of every array is frame ``i`` of the mp4 (docs/architecture.md: indexed by source frame).
The ground-truth folder is built in a temporary sibling and renamed into place, so a folder that
exists is complete. Conventions of each dataset and their sources: docs/corpora.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geovr.corpora.ids import video_clip_id
from geovr.shared.video import write_mp4

MANIFEST_NAME = "corpus.jsonl"
"""The importers' manifest in their output folder."""
MARKER = "import.json"
"""Written last in a finished ground-truth folder."""
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
"""Dataset and scene names (ScanNet ``scene0000_00``, ARKitScenes ``41069021``): one safe path component."""


@dataclass
class ScanFrame:
    """One frame of a scan, ready to write (images loaded lazily)."""

    source_id: str
    """The frame's name in the dataset (ScanNet frame number, ARKitScenes timestamp)."""
    timestamp: float
    """Seconds in the scan's clock."""
    extrinsics: np.ndarray
    """float64 ``[3, 4]`` OpenCV camera-from-world, metres."""
    intrinsics: np.ndarray
    """float64 ``[3, 3]`` in pixels of the written frame."""
    load: Callable[[], tuple[np.ndarray, np.ndarray]]
    """``() -> (rgb uint8 [H, W, 3], depth float32 [H, W] metres, 0 = invalid)`` at the written size."""


@dataclass
class ImportedScan:
    """What an importer wrote."""

    clip_id: str
    """Manifest id (from ``<dataset>/<scene>.mp4``, as ``geovr corpus from-instructions`` derives it)."""
    video: Path
    """The mp4."""
    gt_dir: Path
    """The ground-truth folder."""
    frames: int
    """Frames written."""
    fps: float
    """Frame rate of the mp4."""
    dropped: list[tuple[str, str]] = field(default_factory=list)
    """``(source frame, reason)`` of every frame left out."""
    skipped: bool = False
    """Already imported by an earlier run (nothing rewritten)."""


def even_size(hw: tuple[int, int], width: int | None) -> tuple[int, int]:
    """Output ``(H, W)``: ``width`` wide (None = the source's) keeping the aspect, both even (yuv420p)."""
    h, w = hw
    if width is None:
        return (h - h % 2, w - w % 2)
    if width < 16:
        raise ValueError(f"output width {width} is below 16 px")
    return (max(2, 2 * round(width * h / w / 2)), width - width % 2)


def register_depth(depth: np.ndarray, k_depth: np.ndarray, k_out: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Depth ``[Hd, Wd]`` of a camera with intrinsics ``k_depth``, resampled onto the pixel grid ``out_hw`` of
    ``k_out`` for a camera at the **same centre and orientation** (nearest depth pixel along each output pixel's
    ray). z is unchanged by a change of intrinsics alone; pixels whose ray leaves the depth image get 0."""
    h, w = out_hw
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (u - k_out[0, 2]) / k_out[0, 0]
    y = (v - k_out[1, 2]) / k_out[1, 1]
    col = np.rint(k_depth[0, 0] * x + k_depth[0, 2]).astype(np.int64)
    row = np.rint(k_depth[1, 1] * y + k_depth[1, 2]).astype(np.int64)
    ok = (col >= 0) & (col < depth.shape[1]) & (row >= 0) & (row < depth.shape[0])
    out = np.zeros(out_hw, np.float32)
    out[ok] = depth[row[ok], col[ok]]
    return out


def resize_rgb(rgb: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of ``[H, W, 3]`` uint8 (pixel edges scale, as ``crop_resize_intrinsics`` assumes)."""
    if rgb.shape[:2] == tuple(out_hw):
        return rgb
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((out_hw[1], out_hw[0]), Image.BICUBIC))


def read_png16(path: Path) -> np.ndarray:
    """A 16-bit single-channel PNG as uint16 ``[H, W]``."""
    from PIL import Image

    with Image.open(path) as img:
        a = np.asarray(img)
    if a.ndim != 2 or a.dtype.kind not in "ui":
        raise ValueError(f"{path}: expected a single-channel 16-bit depth PNG, got {a.dtype} {a.shape}")
    return a.astype(np.uint16)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 ``[H, W, 3]``."""
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def write_scan(out: Path, dataset: str, scene: str, frames: list[ScanFrame], fps: float, meta: dict[str, Any],
               dropped: list[tuple[str, str]], crf: int = 18, overwrite: bool = False) -> ImportedScan:
    """Write ``frames`` as ``videos/<dataset>/<scene>.mp4`` + ``gt/<dataset>/<scene>/`` and merge the manifest row."""
    for what, name in (("dataset", dataset), ("scene", scene)):
        if not NAME_PATTERN.match(name):
            raise ValueError(f"{what} name {name!r} must match {NAME_PATTERN.pattern} (it becomes a path below --out)")
    rel = f"{dataset}/{scene}.mp4"
    cid = video_clip_id(rel)
    video, gt = out / "videos" / rel, out / "gt" / dataset / scene
    if (gt / MARKER).is_file() and video.is_file() and not overwrite:
        info = json.loads((gt / MARKER).read_text())
        _merge_row(out, dataset, scene, rel, cid, int(info["frames"]), float(info["fps"]))
        return ImportedScan(cid, video, gt, int(info["frames"]), float(info["fps"]),
                            [tuple(x) for x in info["dropped"]], skipped=True)
    if len(frames) < 2:
        raise ValueError(f"{dataset}/{scene}: {len(frames)} usable frames ({len(dropped)} dropped); nothing to import")
    video.parent.mkdir(parents=True, exist_ok=True)
    gt.parent.mkdir(parents=True, exist_ok=True)
    tmp_gt, tmp_video = gt.with_name(gt.name + ".tmp"), video.with_name(video.stem + ".tmp.mp4")
    shutil.rmtree(tmp_gt, ignore_errors=True)
    tmp_gt.mkdir()
    try:
        rgb0, depth0 = frames[0].load()
        hw = depth0.shape
        if rgb0.shape[:2] != hw:
            raise ValueError(f"{rel}: colour {rgb0.shape[:2]} and registered depth {hw} differ")
        depth = np.lib.format.open_memmap(tmp_gt / "depth.npy", mode="w+", dtype=np.float32, shape=(len(frames), *hw))

        def rgb_stream(depth: np.ndarray):
            for i, f in enumerate(frames):
                rgb, d = (rgb0, depth0) if i == 0 else f.load()
                if rgb.shape[:2] != hw or d.shape != hw:
                    raise ValueError(f"{rel}: frame {f.source_id} is {rgb.shape[:2]}/{d.shape}, the first is {hw}")
                depth[i] = d
                yield rgb

        write_mp4(tmp_video, rgb_stream(depth), fps, crf)
        depth.flush()
        del depth
        np.save(tmp_gt / "extrinsics.npy", np.stack([f.extrinsics for f in frames]).astype(np.float64))
        np.save(tmp_gt / "intrinsics.npy", np.stack([f.intrinsics for f in frames]).astype(np.float64))
        np.save(tmp_gt / "timestamps.npy", np.array([f.timestamp for f in frames], np.float64))
        info = {**meta, "dataset": dataset, "scene": scene, "clip_id": cid, "frames": len(frames), "fps": fps,
                "height": hw[0], "width": hw[1], "source_frames": [f.source_id for f in frames],
                "dropped": [list(x) for x in dropped]}
        (tmp_gt / MARKER).write_text(json.dumps(info, indent=1))
        shutil.rmtree(gt, ignore_errors=True)
        os.replace(tmp_video, video)
        os.rename(tmp_gt, gt)
    except BaseException:
        shutil.rmtree(tmp_gt, ignore_errors=True)
        tmp_video.unlink(missing_ok=True)
        raise
    _merge_row(out, dataset, scene, rel, cid, len(frames), fps)
    return ImportedScan(cid, video, gt, len(frames), fps, dropped)


def _merge_row(out: Path, dataset: str, scene: str, rel: str, cid: str, n: int, fps: float) -> None:
    merge_manifest(out / MANIFEST_NAME, {
        "clip_id": cid, "uri": f"videos/{rel}", "start_frame": 0, "end_frame": None, "gt_dir": f"gt/{dataset}/{scene}",
        "source": rel, "num_frames": n, "fps": fps, "duration_s": n / fps,
    })


def merge_manifest(path: Path, row: dict[str, Any]) -> None:
    """Add ``row`` to a JSONL manifest, replacing a row with the same ``clip_id`` (atomic rewrite)."""
    rows = []
    if path.is_file():
        rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r.get("clip_id") != row["clip_id"]] + [row]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(path)


def check_rigid(e: np.ndarray, tol: float = 1e-3) -> str | None:
    """Why a ``[4, 4]`` / ``[3, 4]`` pose is unusable (non-finite, not a rotation), or None."""
    if not np.all(np.isfinite(e)):
        return "invalid pose (non-finite, e.g. ScanNet's -inf)"
    r = e[:3, :3]
    if np.abs(r.T @ r - np.eye(3)).max() > tol or np.linalg.det(r) < 0:
        return "invalid pose (not a rotation)"
    if e.shape[0] == 4 and np.abs(e[3] - [0, 0, 0, 1]).max() > tol:
        return "invalid pose (last row is not 0 0 0 1)"
    return None
