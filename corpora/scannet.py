"""ScanNet scans exported by ScanNet's SensReader (``reader.py --export_color_images --export_depth_images
--export_poses --export_intrinsics``) -> a geovr clip with ground truth.

Input (one scene folder)::

    color/<i>.jpg          colour frame i (1296x968 in ScanNet v2), i = 0, 1, ... (not zero-padded)
    depth/<i>.png          uint16 depth of frame i in millimetres (depth shift 1000), 0 = no measurement (640x480)
    pose/<i>.txt           4x4 camera-to-world of frame i (metres; a lost track is all -inf)
    intrinsic/intrinsic_color.txt, intrinsic_depth.txt     4x4, the top-left 3x3 is K of each image
    intrinsic/extrinsic_color.txt, extrinsic_depth.txt     4x4, identity: colour and depth share one pose

Colour and depth are the same viewpoint with different intrinsics (ScanNet's maintainers: "already
aligned, no extrinsic should be applied"), so the depth is registered onto the colour pixel grid
through the intrinsics alone (:func:`geovr.corpora.scans.register_depth`). The colour frames are
resized to ``width`` (default 640, i.e. 640x478) and the colour intrinsics follow the resize.
Frames without all three files or with an invalid pose are dropped and listed. Sources: docs/corpora.md.
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

SENSOR_FPS = 30.0
"""ScanNet's capture rate (the exported frames carry no timestamps)."""
COLOR_SUFFIXES = (".jpg", ".jpeg", ".png")
"""Colour frame files."""


def _frames(folder: Path, suffixes: tuple[str, ...]) -> dict[int, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: missing (expected SensReader's export layout)")
    return {int(p.stem): p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.stem.isdigit()}


def _matrix(path: Path, name: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {name} missing")
    m = np.loadtxt(path, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"{path}: expected a 4x4 matrix, got shape {m.shape}")
    return m


def _intrinsics(path: Path) -> np.ndarray:
    k = _matrix(path, "intrinsics")[:3, :3]
    if not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ValueError(f"{path}: invalid intrinsics {k.tolist()}")
    return k


def import_scannet(scene_dir: Path, out: Path, width: int | None = 640, every: int = 1, fps: float = SENSOR_FPS,
                   depth_shift: float = 1000.0, dataset: str = "scannet", crf: int = 18,
                   overwrite: bool = False) -> ImportedScan:
    """Import one exported ScanNet scene (folder name = scene id) into ``out``."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    scene_dir = scene_dir.resolve()  # its name is the scene id ('.' and trailing '..' name no scene)
    intr = scene_dir / "intrinsic"
    k_color, k_depth = _intrinsics(intr / "intrinsic_color.txt"), _intrinsics(intr / "intrinsic_depth.txt")
    if (intr / "extrinsic_color.txt").is_file() and (intr / "extrinsic_depth.txt").is_file():
        rel = np.linalg.inv(_matrix(intr / "extrinsic_color.txt", "extrinsics")) @ _matrix(
            intr / "extrinsic_depth.txt", "extrinsics")
        if np.abs(rel - np.eye(4)).max() > 1e-4:
            raise ValueError(f"{intr}: colour and depth extrinsics differ ({rel.round(4).tolist()}); only ScanNet's "
                             "registered export (identical extrinsics) is supported")
    color = _frames(scene_dir / "color", COLOR_SUFFIXES)
    depth = _frames(scene_dir / "depth", (".png",))
    pose = _frames(scene_dir / "pose", (".txt",))
    ids = sorted(i for i in set(color) | set(depth) | set(pose) if i % every == 0)
    if not color:
        raise ValueError(f"{scene_dir / 'color'}: no colour frames")
    src_hw = read_rgb(color[min(color)]).shape[:2]
    out_hw = even_size(src_hw, width)
    k_out = crop_resize_intrinsics(k_color, (0, 0, *src_hw), out_hw)

    frames, dropped = [], []
    for i in ids:
        lacking = [n for n, d in (("color", color), ("depth", depth), ("pose", pose)) if i not in d]
        if lacking:
            dropped.append((str(i), f"missing {'/'.join(lacking)}"))
            continue
        c2w = _matrix(pose[i], "pose")
        bad = check_rigid(c2w)
        if bad:
            dropped.append((str(i), bad))
            continue

        def load(c=color[i], d=depth[i]) -> tuple[np.ndarray, np.ndarray]:
            rgb = read_rgb(c)
            if rgb.shape[:2] != src_hw:
                raise ValueError(f"{c}: {rgb.shape[:2]} differs from the first colour frame's {src_hw}")
            metres = read_png16(d).astype(np.float32) / depth_shift
            return resize_rgb(rgb, out_hw), register_depth(metres, k_depth, k_out, out_hw)

        frames.append(ScanFrame(source_id=str(i), timestamp=i / fps, extrinsics=np.linalg.inv(c2w)[:3],
                                intrinsics=k_out, load=load))
    meta = {"source": str(scene_dir), "format": "ScanNet SensReader export", "source_hw": list(src_hw),
            "every": every, "depth_shift": depth_shift, "k_color": k_color.tolist(), "k_depth": k_depth.tolist()}
    return write_scan(out, dataset, scene_dir.name, frames, fps / every, meta, dropped, crf=crf, overwrite=overwrite)
