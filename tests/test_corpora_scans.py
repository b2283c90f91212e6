"""ScanNet- and ARKitScenes-layout fixtures (rendered rooms with exact geometry) -> imported ground truth.

Each fixture is written in the dataset's own documented conventions (ScanNet: camera-to-world
4x4 pose files, 16-bit depth PNG in mm at another resolution and intrinsics than colour, -inf for
a lost track; ARKitScenes: world-to-camera axis-angle + translation per timestamp, per-frame .pincam
files, depth PNG in mm), so importing it back must give the renderer's exact cameras and metric depth,
and depth re-projected between frames with the imported poses must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from geovr.corpora.arkitscenes import import_arkitscenes, rotvec_to_rotmat
from geovr.corpora.ids import video_clip_id
from geovr.corpora.scannet import import_scannet
from geovr.shared import geometry as g
from geovr.synth import SynthConfig, make_scene
from geovr.synth.render import render_frame

N = 10


def _k(hw: tuple[int, int], fov_w_deg: float, dx: float = 0.0) -> np.ndarray:
    f = (hw[1] / 2) / np.tan(np.radians(fov_w_deg) / 2)
    return np.array([[f, 0, hw[1] / 2 - 0.5 + dx], [0, f * 1.01, hw[0] / 2 - 0.5], [0, 0, 1.0]])


@pytest.fixture(scope="module")
def room():
    scene, ext = make_scene(SynthConfig(frames=N, seed=3), 0)
    return scene, ext


def _mm_png(path: Path, depth_m: np.ndarray) -> None:
    Image.fromarray(np.round(depth_m * 1000).astype(np.uint16)).save(path)


def _save44(path: Path, m: np.ndarray) -> None:
    np.savetxt(path, m, fmt="%f")  # SensReader writes 6 decimals


def write_scannet(root: Path, scene, ext: np.ndarray, pose_direction: str = "camera_to_world") -> Path:
    """A SensReader-style export: colour 96x128 (K_c), depth 48x64 (K_d: wider field of view, other centre)."""
    d = root / "scene0000_00"
    for sub in ("color", "depth", "pose", "intrinsic"):
        (d / sub).mkdir(parents=True)
    hw_c, hw_d = (96, 128), (48, 64)
    k_c, k_d = _k(hw_c, 62.0, dx=1.5), _k(hw_d, 72.0)
    for i in range(N):
        rgb, _, _ = render_frame(scene, ext[i], k_c, hw_c)
        _, depth, _ = render_frame(scene, ext[i], k_d, hw_d)
        Image.fromarray(rgb).save(d / "color" / f"{i}.jpg", quality=95)
        if i != 7:  # frame 7 lost its depth file
            _mm_png(d / "depth" / f"{i}.png", depth)
        e44 = g.to_homogeneous(ext[i])
        pose = np.linalg.inv(e44) if pose_direction == "camera_to_world" else e44
        if i == 5:  # a lost track, as ScanNet writes it
            pose = np.full((4, 4), -np.inf)
        _save44(d / "pose" / f"{i}.txt", pose)
    for name, k in (("color", k_c), ("depth", k_d)):
        k44 = np.eye(4)
        k44[:3, :3] = k
        _save44(d / "intrinsic" / f"intrinsic_{name}.txt", k44)
        _save44(d / "intrinsic" / f"extrinsic_{name}.txt", np.eye(4))
    return d


def _quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    q = g.canonicalize_quat(q)
    angle = 2 * np.arccos(np.clip(q[..., 3], -1, 1))
    s = np.sqrt(np.maximum(1 - q[..., 3] ** 2, 1e-300))
    return q[..., :3] / s[..., None] * angle[..., None]


def write_arkitscenes(root: Path, scene, ext: np.ndarray) -> Path:
    """A 3DOD-style ``<video_id>/<video_id>_frames`` folder at 10 fps with a 60 Hz trajectory."""
    vid = "41069021"
    d = root / vid / f"{vid}_frames"
    for sub in ("lowres_wide", "lowres_depth", "lowres_wide_intrinsics"):
        (d / sub).mkdir(parents=True)
    hw = (48, 64)
    stamps = [f"{6845.706 + 0.1 * i:.3f}" for i in range(N)]
    lines = []
    for i, ts in enumerate(stamps):
        k = _k(hw, 60.0 + 0.2 * i)  # autofocus: intrinsics differ per frame
        rgb, depth, _ = render_frame(scene, ext[i], k, hw)
        Image.fromarray(rgb).save(d / "lowres_wide" / f"{vid}_{ts}.png")
        _mm_png(d / "lowres_depth" / f"{vid}_{ts}.png", depth)
        name = f"{float(ts) - 0.001:.3f}" if i == 2 else ts  # name off by 1 ms, as happens in the dataset
        (d / "lowres_wide_intrinsics" / f"{vid}_{name}.pincam").write_text(
            f"{hw[1]} {hw[0]} {k[0, 0]} {k[1, 1]} {k[0, 2]} {k[1, 2]}\n")
        if i == 4:  # no pose near this frame: dropped
            continue
        rv = _quat_to_rotvec(g.rotmat_to_quat(ext[i, :, :3]))  # world-to-camera rotation, axis-angle
        t = float(ts) + (0.002 if i % 2 else -0.001)
        lines.append(f"{t:.6f} {rv[0]:.9f} {rv[1]:.9f} {rv[2]:.9f} {ext[i, 0, 3]:.9f} {ext[i, 1, 3]:.9f} "
                     f"{ext[i, 2, 3]:.9f}")
        lines.append(f"{t + 0.033:.6f} 0 0 0 9 9 9")  # a trajectory sample between frames (never matched)
    (d / "lowres_wide.traj").write_text("\n".join(lines) + "\n")
    return root / vid


def reprojection(ext: np.ndarray, k: np.ndarray, depth: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """(overlap, fraction of frame i's valid depth that lands on frame j's depth within 3 %)."""
    hw = depth.shape[1:]
    pw = g.cam_to_world(g.unproject_depth(depth[i].astype(np.float64), k[i]), ext[i])
    uv, z = g.project_points(pw, ext[j], k[j])
    with np.errstate(invalid="ignore"):
        col, row = np.rint(uv[..., 0]), np.rint(uv[..., 1])
        ok = (depth[i] > 0) & (z > 0.1) & (col >= 0) & (col < hw[1]) & (row >= 0) & (row < hw[0])
    row, col = np.where(ok, row, 0).astype(int), np.where(ok, col, 0).astype(int)
    dj = depth[j][row, col]
    good = ok & (dj > 0) & (np.abs(z - dj) < 0.03 * z)
    return float(ok.mean()), float(good.sum() / max((ok & (dj > 0)).sum(), 1))


def _load(gt: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    return (np.load(gt / "extrinsics.npy"), np.load(gt / "intrinsics.npy"), np.load(gt / "depth.npy"),
            json.loads((gt / "import.json").read_text()))


@pytest.fixture(scope="module")
def scannet_import(room, tmp_path_factory):
    scene, ext = room
    src = write_scannet(tmp_path_factory.mktemp("scannet_src"), scene, ext)
    out = tmp_path_factory.mktemp("imported")
    return import_scannet(src, out, width=128), out


def test_scannet_import_recovers_exact_cameras_and_metric_depth(room, scannet_import):
    scene, ext = room
    res, out = scannet_import
    e, k, depth, info = _load(res.gt_dir)
    kept = [i for i in range(N) if i not in (5, 7)]
    assert info["source_frames"] == [str(i) for i in kept] and res.frames == len(kept) == len(e) == len(depth)
    assert dict(res.dropped) == {"5": "invalid pose (non-finite, e.g. ScanNet's -inf)", "7": "missing depth"}
    np.testing.assert_allclose(e, ext[kept], atol=2e-6)  # camera-to-world files -> camera-from-world
    k_c = _k((96, 128), 62.0, dx=1.5)
    np.testing.assert_allclose(k, np.broadcast_to(k_c, k.shape), atol=1e-9)  # colour K, written at colour size
    # depth registered from the 48x64 depth camera onto the colour grid equals the colour camera's own depth
    truth = np.stack([render_frame(scene, ext[i], k_c, (96, 128))[1] for i in kept])
    valid = depth > 0
    assert valid.mean() > 0.95 and depth.dtype == np.float32
    rel = np.abs(depth[valid] - truth[valid]) / truth[valid]
    # metres, not mm; the nearest depth pixel along each colour ray (resizing the depth image instead, ignoring
    # the two cameras' different intrinsics, leaves ~20 % of the pixels within 3 %)
    assert np.median(rel) < 0.01 and (rel < 0.03).mean() > 0.95
    with av.open(str(res.video)) as c:
        assert c.streams.video[0].frames in (0, len(kept)) and float(c.streams.video[0].average_rate) == 30.0
    row = json.loads((out / "corpus.jsonl").read_text().splitlines()[0])
    assert row["clip_id"] == video_clip_id("scannet/scene0000_00.mp4") == res.clip_id
    assert (out / row["uri"]).is_file() and (out / row["gt_dir"] / "depth.npy").is_file()


def test_scannet_depth_reprojects_consistently_with_imported_poses(scannet_import):
    res, _ = scannet_import
    e, k, depth, _ = _load(res.gt_dir)
    overlap, frac = reprojection(e, k, depth, 1, 3)
    assert overlap > 0.5 and frac > 0.9, (overlap, frac)
    # the other pose direction (what a camera-to-world misread as camera-from-world gives) is inconsistent
    inv = g.invert_extrinsics(e)
    _, frac_bad = reprojection(inv, k, depth, 1, 3)
    assert frac_bad < 0.5, frac_bad


def test_scannet_pose_direction_matters(room, tmp_path):
    """World-to-camera pose files (the wrong direction for ScanNet) import to cameras that do not re-project."""
    scene, ext = room
    src = write_scannet(tmp_path / "src", scene, ext, pose_direction="world_to_camera")
    res = import_scannet(src, tmp_path / "out", width=128)
    e, k, depth, _ = _load(res.gt_dir)
    assert not np.allclose(e, ext[[i for i in range(N) if i not in (5, 7)]], atol=1e-3)
    assert reprojection(e, k, depth, 1, 3)[1] < 0.5


def test_arkitscenes_import_matches_trajectory_and_reprojects(room, tmp_path):
    scene, ext = room
    src = write_arkitscenes(tmp_path / "src", scene, ext)
    res = import_arkitscenes(src, tmp_path / "out")
    e, k, depth, info = _load(res.gt_dir)
    kept = [i for i in range(N) if i != 4]
    assert res.clip_id == video_clip_id("arkitscenes/41069021.mp4")
    assert [d[1] for d in res.dropped] == ["no trajectory pose within 5 ms"] and len(e) == len(kept)
    np.testing.assert_allclose(e, ext[kept], atol=1e-6)  # axis-angle world-to-camera -> camera-from-world
    np.testing.assert_allclose(k[3], _k((48, 64), 60.6), atol=1e-5)  # per-frame .pincam (frame 2's name is -1 ms)
    np.testing.assert_allclose(np.load(res.gt_dir / "timestamps.npy")[:2], [6845.706, 6845.806])
    assert res.fps == pytest.approx(10.0)
    truth = np.stack([render_frame(scene, ext[i], _k((48, 64), 60.0 + 0.2 * i), (48, 64))[1] for i in kept])
    np.testing.assert_allclose(depth, np.round(truth * 1000) / 1000, atol=1e-6)  # mm -> metres, same grid
    overlap, frac = reprojection(e, k, depth, 0, 2)
    assert overlap > 0.5 and frac > 0.95, (overlap, frac)
    assert reprojection(g.invert_extrinsics(e), k, depth, 0, 2)[1] < 0.5
    assert info["source_frames"][2] == "6845.906"


def test_rotvec_to_rotmat_matches_quaternions():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    np.testing.assert_allclose(rotvec_to_rotmat(_quat_to_rotvec(q)), g.quat_to_rotmat(q), atol=1e-9)
    np.testing.assert_allclose(rotvec_to_rotmat(np.zeros(3)), np.eye(3))


def test_extraction_of_an_imported_scan_takes_its_scale_from_ground_truth(scannet_import, tmp_path):
    """``--scale-from auto`` with a teacher that predicts no metric scale uses the imported metric depth."""
    from geovr.extract.runner import ExtractConfig, run_extract
    from geovr.shared.sampling import SamplingConfig
    from geovr.shared.stores import StoreReader, finalize_store

    res, out = scannet_import
    cfg = ExtractConfig(corpus=str(out / "corpus.jsonl"), out=str(tmp_path / "s"), teacher="vggt",
                        teacher_kwargs={"config": "tiny", "device": "cpu", "random_init": True}, format="wds",
                        scale_from="auto",
                        sampling=SamplingConfig(num_frames=4, longest_edge=84), workers=0, progress=False)
    assert run_extract(cfg).stored == 1
    finalize_store(tmp_path / "s")
    clip = StoreReader(tmp_path / "s")[res.clip_id]
    assert clip.scale_source == "ground_truth" and clip.metric_scale > 0


def test_scene_names_that_are_not_one_safe_path_component_are_refused(tmp_path):
    from geovr.corpora.scans import write_scan

    for bad in ("..", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="scene name"):
            write_scan(tmp_path, "scannet", bad, [], 30.0, {}, [])
    assert not any(tmp_path.iterdir())
