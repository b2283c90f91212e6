from __future__ import annotations

import numpy as np
import pytest

from geovr.shared import geometry as g


def _random_rot(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.normal(size=(n, 4))
    return g.quat_to_rotmat(q)


def _random_extrinsics(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.concatenate([_random_rot(rng, n), rng.normal(size=(n, 3, 1))], axis=-1)


def test_quat_rotmat_round_trip_and_orthonormal():
    rng = np.random.default_rng(0)
    q = g.canonicalize_quat(rng.normal(size=(200, 4)))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    r = g.quat_to_rotmat(q)
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    q2 = g.rotmat_to_quat(r)
    assert np.all(q2[:, 3] >= 0)
    np.testing.assert_allclose(q2, q, atol=1e-10)
    # float32 input and extra leading dims are accepted.
    q3 = g.rotmat_to_quat(r.reshape(10, 20, 3, 3).astype(np.float32))
    assert q3.shape == (10, 20, 4) and q3.dtype == np.float64
    np.testing.assert_allclose(q3.reshape(200, 4), q, atol=1e-6)


def test_known_rotations_and_near_180():
    # 90 degrees about z (xyzw): maps x -> y.
    q = np.array([0, 0, np.sin(np.pi / 4), np.cos(np.pi / 4)])
    r = g.quat_to_rotmat(q)
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    # 180 degrees about x and about an oblique axis: qw = 0, recovered exactly up to sign.
    for axis in ([1.0, 0, 0], [1.0, 2.0, -0.5]):
        a = np.asarray(axis) / np.linalg.norm(axis)
        for ang in (np.pi, np.pi - 1e-7):
            qq = np.concatenate([a * np.sin(ang / 2), [np.cos(ang / 2)]])
            back = g.rotmat_to_quat(g.quat_to_rotmat(qq))
            assert min(np.abs(back - qq).max(), np.abs(back + qq).max()) < 1e-7
            np.testing.assert_allclose(g.quat_to_rotmat(back), g.quat_to_rotmat(qq), atol=1e-12)
    assert g.rotation_angle_deg(g.quat_to_rotmat(np.array([1.0, 0, 0, 0]))) == pytest.approx(180.0)


def test_invert_and_relative_to_first():
    rng = np.random.default_rng(1)
    e = _random_extrinsics(rng, 5)
    inv = g.invert_extrinsics(e)
    np.testing.assert_allclose(g.to_homogeneous(e) @ g.to_homogeneous(inv), np.broadcast_to(np.eye(4), (5, 4, 4)),
                               atol=1e-12)
    rel = g.relative_to_first(e)
    np.testing.assert_allclose(rel[0], np.eye(3, 4), atol=1e-12)
    # A world point seen by camera i lands at the same camera coordinates after re-anchoring.
    xw = rng.normal(size=3)
    x0 = e[0, :, :3] @ xw + e[0, :, 3]  # point in the new world (= camera 0) frame
    for i in range(5):
        np.testing.assert_allclose(rel[i, :, :3] @ x0 + rel[i, :, 3], e[i, :, :3] @ xw + e[i, :, 3], atol=1e-12)


def test_pose_enc_round_trip_matches_vggt_formulas():
    rng = np.random.default_rng(2)
    h, w = 168, 224
    e = _random_extrinsics(rng, 6).reshape(2, 3, 3, 4)
    k = np.zeros((2, 3, 3, 3))
    k[..., 0, 0] = rng.uniform(150, 300, size=(2, 3))
    k[..., 1, 1] = rng.uniform(150, 300, size=(2, 3))
    k[..., 0, 2], k[..., 1, 2], k[..., 2, 2] = w / 2, h / 2, 1
    p = g.extri_intri_to_pose_enc(e.astype(np.float32), k, (h, w))
    assert p.shape == (2, 3, 9)
    np.testing.assert_allclose(p[..., 7], 2 * np.arctan(h / (2 * k[..., 1, 1])))
    np.testing.assert_allclose(p[..., 8], 2 * np.arctan(w / (2 * k[..., 0, 0])))
    e2, k2 = g.pose_enc_to_extri_intri(p, (h, w))
    np.testing.assert_allclose(e2, e, atol=1e-6)
    np.testing.assert_allclose(k2, k, atol=1e-9)


def test_unproject_project_round_trip():
    rng = np.random.default_rng(3)
    h, w = 12, 16
    k = np.array([[20.0, 0, 8], [0, 22.0, 6], [0, 0, 1]])
    depth = rng.uniform(1, 5, size=(h, w))
    e = _random_extrinsics(rng, 1)[0]
    pw = g.cam_to_world(g.unproject_depth(depth, k), e)
    uv, z = g.project_points(pw, e, k)
    v, u = np.mgrid[0:h, 0:w]
    np.testing.assert_allclose(uv[..., 0], u, atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], v, atol=1e-9)
    np.testing.assert_allclose(z, depth, atol=1e-12)
    # Behind the camera: nan pixel coordinates, negative depth.
    uv_b, z_b = g.project_points(np.array([0.0, 0, -1]), np.eye(3, 4), k)
    assert np.isnan(uv_b).all() and z_b < 0


def test_crop_resize_intrinsics_matches_pixel_transform():
    rng = np.random.default_rng(4)
    k = np.array([[300.0, 0, 260], [0, 310.0, 190], [0, 0, 1]])
    crop = (20, 40, 300, 400)  # top, left, h, w
    out_hw = (150, 224)
    k2 = g.crop_resize_intrinsics(k, crop, out_hw)
    pts = np.concatenate([rng.uniform(-1, 1, size=(50, 2)), rng.uniform(1, 4, size=(50, 1))], axis=-1)
    uv, _ = g.project_points(pts, np.eye(3, 4), k)
    uv2, _ = g.project_points(pts, np.eye(3, 4), k2)
    # Pixel edges scale: the crop's edge (left - 0.5) maps to -0.5 and its far edge to out_w - 0.5.
    sx, sy = out_hw[1] / crop[3], out_hw[0] / crop[2]
    expect = np.stack([(uv[:, 0] - crop[1] + 0.5) * sx - 0.5, (uv[:, 1] - crop[0] + 0.5) * sy - 0.5], -1)
    np.testing.assert_allclose(uv2, expect, atol=1e-9)
    # Identity crop + resize leaves K unchanged.
    np.testing.assert_allclose(g.crop_resize_intrinsics(k, (0, 0, 480, 640), (480, 640)), k)
    with pytest.raises(ValueError):
        g.crop_resize_intrinsics(k, (0, 0, 0, 10), (10, 10))


def test_relative_pose_errors():
    rng = np.random.default_rng(5)
    e = _random_extrinsics(rng, 4)
    rot, tr = g.relative_pose_errors(e, e)
    assert rot.shape == (6,) and tr.shape == (6,)
    np.testing.assert_allclose(rot, 0, atol=1e-5)
    np.testing.assert_allclose(tr, 0, atol=1e-5)
    # A global rigid change of world frame and a global scale leave relative errors at zero.
    g4 = g.to_homogeneous(_random_extrinsics(rng, 1)[0])
    e_alt = (g.to_homogeneous(e) @ g4)[:, :3, :]
    e_alt[:, :, 3] *= 3.0
    rot, tr = g.relative_pose_errors(e_alt, e)
    np.testing.assert_allclose(rot, 0, atol=1e-5)
    np.testing.assert_allclose(tr, 0, atol=1e-5)
    # Rotating only camera 2 by 10 degrees about its optical axis: pairs touching it show 10 degrees.
    rz = g.quat_to_rotmat(np.array([0, 0, np.sin(np.radians(5)), np.cos(np.radians(5))]))
    e_bad = e.copy()
    e_bad[2] = np.concatenate([rz @ e[2, :, :3], rz @ e[2, :, 3:]], axis=-1)
    rot, tr = g.relative_pose_errors(e_bad, e)
    pairs = list(zip(*np.triu_indices(4, 1), strict=True))
    for p, (i, j) in enumerate(pairs):
        assert rot[p] == pytest.approx(10.0 if 2 in (i, j) else 0.0, abs=1e-6)
    with pytest.raises(ValueError):
        g.relative_pose_errors(e[:3], e)
