"""ARKitScenes low-resolution frames (3DOD / raw ``<video_id>_frames/``) -> a geovr clip with ground truth.

Input (one ``<video_id>`` folder, or its ``<video_id>_frames`` folder)::

    lowres_wide/<video_id>_<t>.png              RGB frame at timestamp t (seconds, 3 decimals; 256x192)
    lowres_depth/<video_id>_<t>.png             uint16 LiDAR depth in millimetres, same camera and grid as lowres_wide
    lowres_wide_intrinsics/<video_id>_<t>.pincam   one line: width height fx fy cx cy (pixels)
    lowres_wide.traj                            per line: t, axis-angle (3, radians), translation (3, metres)
    confidence/<video_id>_<t>.png               optional uint8 depth confidence 0 (low) .. 2 (high)

A ``.traj`` line is the **world-to-camera** transform ``[R(axis-angle) | t]`` (ARKitScenes' own loader
inverts it to get the camera-to-world pose it lifts points with); camera axes are x right, y down,
z forward, so it is already OpenCV camera-from-world. Frames are matched to the trajectory by the
nearest timestamp within ``max_dt`` (5 ms, as the official loader) and to intrinsics by name (or
t +- 1 ms); unmatched frames are dropped and listed. Sources: docs/corpora.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geovr.corpora.scans import (
    ImportedScan,
    ScanFrame,
    check_rigid,
    even_size,
    read_png16,
    read_rgb,
    register_depth,
    resize_rgb,
    write_scan,
)
from geovr.shared.geometry import crop_resize_intrinsics


def rotvec_to_rotmat(v: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[..., 3, 3]`` of axis-angle vectors ``[..., 3]`` (radians; Rodrigues' formula)."""
    v = np.asarray(v, np.float64)
    theta = np.linalg.norm(v, axis=-1, keepdims=True)
    axis = np.where(theta > 1e-12, v / np.maximum(theta, 1e-300), 0.0)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    kx = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)


def read_traj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(timestamps [M], camera-from-world [M, 3, 4])`` of a ``.traj`` file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: trajectory missing")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        tok = line.split()
        if len(tok) != 7:
            raise ValueError(f"{path}:{n}: expected 7 columns (t, axis-angle, translation), got {len(tok)}")
        rows.append([float(x) for x in tok])
    if not rows:
        raise ValueError(f"{path}: empty trajectory")
    a = np.asarray(rows, np.float64)
    e = np.concatenate([rotvec_to_rotmat(a[:, 1:4]), a[:, 4:7, None]], axis=-1)
    order = np.argsort(a[:, 0])
    return a[order, 0], e[order]


def _pincam(folder: Path, vid: str, ts: str) -> np.ndarray | None:
    t = float(ts)
    for name in (ts, f"{t - 0.001:.3f}", f"{t + 0.001:.3f}"):
        p = folder / f"{vid}_{name}.pincam"
        if p.is_file():
            vals = np.loadtxt(p, dtype=np.float64).ravel()
            if vals.shape != (6,) or not np.all(np.isfinite(vals)) or vals[2] <= 0 or vals[3] <= 0:
                raise ValueError(f"{p}: expected 'width height fx fy cx cy', got {vals.tolist()}")
            return np.array([[vals[2], 0, vals[4]], [0, vals[3], vals[5]], [0, 0, 1.0]])
    return None


def import_arkitscenes(video_dir: Path, out: Path, width: int | None = None, every: int = 1, max_dt: float = 0.005,
                       min_confidence: int | None = None, dataset: str = "arkitscenes", crf: int = 18,
                       overwrite: bool = False) -> ImportedScan:
    """Import one ARKitScenes video (its low-resolution assets) into ``out``; the scene name is the video id."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    video_dir = video_dir.resolve()  # its name is the scene id ('.' and trailing '..' name no scene)
    vid = video_dir.name.removesuffix("_frames")
    root = video_dir / f"{vid}_frames" if (video_dir / f"{vid}_frames").is_dir() else video_dir
    wide = root / "lowres_wide"
    if not wide.is_dir():
        raise FileNotFoundError(f"{wide}: missing (expected ARKitScenes' <video_id>_frames layout)")
    t_traj, e_traj = read_traj(root / "lowres_wide.traj")
    stamps = sorted((p.stem[len(vid) + 1:] for p in wide.glob(f"{vid}_*.png")), key=float)
    stamps = stamps[::every]
    if not stamps:
        raise ValueError(f"{wide}: no {vid}_<timestamp>.png frames")
    frames, dropped = [], []
    src_hw = out_hw = None
    for ts in stamps:
        t = float(ts)
        j = int(np.clip(np.searchsorted(t_traj, t), 1, len(t_traj) - 1)) if len(t_traj) > 1 else 0
        j = j if len(t_traj) == 1 or abs(t_traj[j] - t) <= abs(t_traj[j - 1] - t) else j - 1
        depth_png = root / "lowres_depth" / f"{vid}_{ts}.png"
        k = _pincam(root / "lowres_wide_intrinsics", vid, ts)
        reason = None
        if abs(t_traj[j] - t) > max_dt:
            reason = f"no trajectory pose within {max_dt * 1e3:.0f} ms"
        elif not depth_png.is_file():
            reason = "missing depth"
        elif k is None:
            reason = "missing intrinsics"
        else:
            reason = check_rigid(e_traj[j])
        if reason:
            dropped.append((ts, reason))
            continue
        if src_hw is None:
            src_hw = read_rgb(wide / f"{vid}_{ts}.png").shape[:2]
            out_hw = even_size(src_hw, width)
        k_out = crop_resize_intrinsics(k, (0, 0, *src_hw), out_hw)
        conf = root / "confidence" / f"{vid}_{ts}.png"

        def load(ts=ts, k=k, k_out=k_out, conf=conf, depth_png=depth_png, src_hw=src_hw,
                 out_hw=out_hw) -> tuple[np.ndarray, np.ndarray]:
            rgb = read_rgb(wide / f"{vid}_{ts}.png")
            if rgb.shape[:2] != src_hw:
                raise ValueError(f"{vid}_{ts}.png: {rgb.shape[:2]} differs from the first frame's {src_hw}")
            mm = read_png16(depth_png)
            metres = mm.astype(np.float32) / 1000.0
            if min_confidence is not None and conf.is_file():
                from PIL import Image

                with Image.open(conf) as c:
                    metres[np.asarray(c) < min_confidence] = 0.0
            k_d = crop_resize_intrinsics(k, (0, 0, *src_hw), mm.shape)  # same camera, depth grid
            return resize_rgb(rgb, out_hw), register_depth(metres, k_d, k_out, out_hw)

        frames.append(ScanFrame(source_id=ts, timestamp=t, extrinsics=e_traj[j], intrinsics=k_out, load=load))
    ts_kept = np.array([f.timestamp for f in frames])
    fps = float(1.0 / np.median(np.diff(ts_kept))) if len(ts_kept) > 1 else 10.0
    meta = {"source": str(root), "format": "ARKitScenes lowres_wide/lowres_depth", "every": every,
            "max_dt_s": max_dt, "min_confidence": min_confidence, "source_hw": list(src_hw or ())}
    return write_scan(out, dataset, vid, frames, round(fps, 3), meta, dropped, crf=crf, overwrite=overwrite)
