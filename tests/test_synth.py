from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geovr.cli import app
from geovr.shared import geometry as g
from geovr.synth import SynthConfig, load_scene, make_scene, render_corpus
from geovr.synth.scene import _point_polygon_distance, _polygons_overlap

FRAMES = 16


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    res = CliRunner().invoke(app, ["synth", "--out", str(out), "--clips", "4", "--seed", "0",
                                   "--frames", str(FRAMES)])
    assert res.exit_code == 0, res.output
    return out


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_cli_writes_playable_videos_and_gt(corpus: Path):
    table = pq.read_table(corpus / "corpus.parquet").to_pylist()
    assert [r["clip_id"] for r in table] == [f"synth_{i:04d}" for i in range(4)]
    for row in table:
        assert "." not in row["clip_id"] and row["start_frame"] == 0 and row["end_frame"] is None
        frames = _decode(corpus / row["uri"])
        gt = corpus / row["gt_dir"]
        ext = np.load(gt / "extrinsics.npy", allow_pickle=False)
        k = np.load(gt / "intrinsics.npy", allow_pickle=False)
        depth = np.load(gt / "depth.npy", allow_pickle=False)
        assert ext.dtype == np.float64 and k.dtype == np.float64 and depth.dtype == np.float32
        assert frames.shape == (FRAMES, 168, 224, 3) == (row["num_frames"], row["height"], row["width"], 3)
        assert ext.shape == (FRAMES, 3, 4) and k.shape == (FRAMES, 3, 3) and depth.shape == frames.shape[:3]
        assert np.all(depth > 0) and depth.max() < 15
        np.testing.assert_allclose(ext[:, :, :3] @ np.swapaxes(ext[:, :, :3], 1, 2),
                                   np.broadcast_to(np.eye(3), (FRAMES, 3, 3)), atol=1e-12)
        scene = load_scene(gt)
        sx, sy, sz = scene.room.size
        assert 3.5 <= sx <= 8 and 3.5 <= sy <= 8 and 2.5 <= sz <= 3
        eyes = -np.einsum("nji,nj->ni", ext[:, :, :3], ext[:, :, 3])
        assert np.all((eyes > 0) & (eyes < scene.room.size)) and np.all((eyes[:, 2] > 1.0) & (eyes[:, 2] < 1.9))
        for o in scene.objects:
            fp = o.footprint()
            assert fp.min() > 0 and np.all(fp.max(0) < [sx, sy]) and o.center[2] == pytest.approx(o.size[2] / 2)
            # The camera never enters an object: every eye position is clear of each footprint.
            assert all(_point_polygon_distance(e, fp) >= 0.3 for e in eyes[:, :2])
        for a in range(len(scene.objects)):
            for b in range(a):
                assert not _polygons_overlap(scene.objects[a].footprint(), scene.objects[b].footprint(), 0.0)
        assert len(scene.visible_pixels) == len(scene.objects)
        # Pixels where an object is visible + room pixels never exceed the frame.
        assert np.all(np.sum(scene.visible_pixels, axis=0) <= 168 * 224)
        assert any(v is not None for v in scene.first_visible_frame)
    # Clips differ from each other.
    assert len({json.dumps(load_scene(corpus / r["gt_dir"]).room.size) for r in table}) == 4


def test_refuses_non_empty_out_dir(corpus: Path):
    res = CliRunner().invoke(app, ["synth", "--out", str(corpus), "--clips", "1"])
    assert res.exit_code == 2, res.output  # usage error, nothing rendered
    assert pq.read_table(corpus / "corpus.parquet").num_rows == 4


def test_deterministic_in_seed(corpus: Path, tmp_path: Path):
    render_corpus(tmp_path, SynthConfig(clips=1, seed=0, frames=FRAMES), progress=False)
    for name in ("extrinsics.npy", "intrinsics.npy", "depth.npy"):
        a = np.load(corpus / "gt/synth_0000" / name)
        b = np.load(tmp_path / "gt/synth_0000" / name)
        np.testing.assert_array_equal(a, b)
    s0, e0 = make_scene(SynthConfig(seed=0, frames=FRAMES), 0)
    s1, e1 = make_scene(SynthConfig(seed=1, frames=FRAMES), 0)
    assert s0.room != s1.room and not np.allclose(e0, e1)
    assert [o.center for o in s0.objects] != [o.center for o in s1.objects]


def _reproject(depth_i, e_i, e_j, k, hw):
    """World points of frame i's pixels projected into frame j: (valid mask [H,W], landing rows, cols, z_j)."""
    pw = g.cam_to_world(g.unproject_depth(depth_i, k), e_i)
    uv, z = g.project_points(pw, e_j, k)
    with np.errstate(invalid="ignore"):
        col, row = np.rint(uv[..., 0]), np.rint(uv[..., 1])
        ok = (z > 0.1) & (col >= 0) & (col < hw[1]) & (row >= 0) & (row < hw[0])
    col = np.where(ok, col, 0).astype(int)
    row = np.where(ok, row, 0).astype(int)
    return ok, row, col, z


@pytest.mark.parametrize("clip", ["synth_0000", "synth_0002"])
def test_conventions_proof_geometric_and_photometric(corpus: Path, clip: str):
    gt = corpus / "gt" / clip
    ext = np.load(gt / "extrinsics.npy")
    k = np.load(gt / "intrinsics.npy")
    depth = np.load(gt / "depth.npy").astype(np.float64)
    frames = _decode(corpus / "videos" / f"{clip}.mp4").astype(np.float64)
    hw = depth.shape[1:]
    i, j = 3, 7

    def check(e_j):
        ok, row, col, z = _reproject(depth[i], ext[i], e_j, k[j], hw)
        d_j = depth[j][row, col]
        # Nearest-pixel lookup: allow the depth change over half a pixel on slanted surfaces (2 %).
        consistent = ok & (np.abs(z - d_j) < 0.02 * z)
        colour_err = np.abs(frames[i] - frames[j][row, col]).mean(-1)
        return ok, consistent, colour_err

    ok, consistent, err = check(ext[j])
    assert ok.mean() > 0.5, "frames 3 and 7 should overlap substantially"
    geo_frac = consistent.sum() / ok.sum()
    assert geo_frac > 0.9, geo_frac
    # Exact z agreement at the landing pixel for the bulk: median relative error is tiny.
    _, row, col, z = _reproject(depth[i], ext[i], ext[j], k[j], hw)
    rel = np.abs(z - depth[j][row, col])[consistent] / z[consistent]
    assert np.median(rel) < 2e-3, np.median(rel)
    photo_ok = np.median(err[consistent])
    assert photo_ok < 12.0, photo_ok

    # Deliberately wrong poses must fail the same checks.
    e_transposed = ext[j].copy()
    e_transposed[:, :3] = ext[j, :, :3].T
    e_flipped = ext[j].copy()
    e_flipped[:, 3] = -e_flipped[:, 3]
    e_inverted = g.invert_extrinsics(ext[j])  # world-from-camera passed as camera-from-world
    for bad in (e_transposed, e_flipped, e_inverted):
        ok_b, cons_b, err_b = check(bad)
        frac_b = cons_b.sum() / max(ok_b.sum(), 1)
        photo_b = np.median(err_b[ok_b]) if ok_b.any() else np.inf
        assert frac_b < 0.5 or photo_b > 2 * photo_ok, (frac_b, photo_b, photo_ok)
        assert photo_b > photo_ok + 8.0, (photo_b, photo_ok)


def test_render_frame_exact_depth_and_ids(tmp_path: Path):
    from geovr.synth.camera import intrinsics, look_at
    from geovr.synth.render import render_frame
    from geovr.synth.scene import Room, Scene, SceneObject

    cfg = SynthConfig(height=56, width=72)
    k = intrinsics(cfg)
    room = Room((6.0, 4.0, 3.0))
    eye = np.array([1.0, 2.0, 1.5])
    ext = look_at(eye, np.array([5.0, 2.0, 1.5]))  # looking along +x at the wall x = 6
    empty = Scene("t", room, [])
    rgb, depth, ids = render_frame(empty, ext, k, (56, 72))
    # Centre pixel (principal point is (W/2, H/2) = integer pixel (36, 28)) sees the wall 5 m ahead.
    assert depth[28, 36] == pytest.approx(5.0, abs=1e-5) and ids[28, 36] == -1
    # Every wall pixel on that plane: z-depth is constant, 5 m, over the whole plane.
    pw = g.cam_to_world(g.unproject_depth(depth.astype(np.float64), k), ext)
    on_wall = np.abs(pw[..., 0] - 6.0) < 1e-4
    assert on_wall.mean() > 0.3 and np.allclose(depth[on_wall], 5.0, atol=1e-4)
    box = SceneObject(0, "cabinet", (3.0, 2.0, 1.0), (0.6, 1.0, 2.0), np.pi / 2, (200, 50, 50))
    _, depth_b, ids_b = render_frame(Scene("t", room, [box]), ext, k, (56, 72))
    # Yaw 90 deg: the box's local y (1.0 m) lies along world x, so its near face is at x = 2.5.
    assert ids_b[28, 36] == 0 and depth_b[28, 36] == pytest.approx(1.5, abs=1e-5)
    assert np.array_equal(ids_b == 0, np.abs(depth_b - depth) > 1e-6)


def test_load_scene_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="scene.json"):
        load_scene(tmp_path)
    (tmp_path / "scene.json").write_text('{"scene_id": "x", "room": {}}')
    with pytest.raises(ValueError, match="malformed"):
        load_scene(tmp_path)
