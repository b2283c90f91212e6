"""Camera geometry shared by every stage (numpy, float64 internally, batch-friendly).

Conventions (see docs/architecture.md):

- Extrinsics ``E = [R | t]`` ``[..., 3, 4]`` are OpenCV camera-from-world: ``x_cam = R x_world + t``
  with x right, y down, z forward; translations in metres (ground truth) or teacher units.
- Intrinsics ``K`` ``[..., 3, 3]`` are in pixels of the image they refer to.
- Pixel convention: the centre of pixel ``(row v, column u)`` sits at the continuous coordinate
  ``(u, v)``, i.e. pixel centres are at integer coordinates. ``unproject_depth`` shoots rays through
  integer pixel coordinates and ``project_points`` returns coordinates in the same frame, so rounding
  a projected ``uv`` gives the pixel index. The synthetic renderer uses the same convention.
- Quaternions are **xyzw** (scalar last), as in VGGT's ``rotation.py``.
- Pose encoding ``absT_quaR_FoV`` ``[..., 9]`` = ``t (3), q xyzw (4), fov_h, fov_w`` in radians,
  ``fov_h = 2 atan(H / (2 fy))``, ``fov_w = 2 atan(W / (2 fx))``; decoding puts the principal point
  at ``(W / 2, H / 2)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "quat_to_rotmat",
    "rotmat_to_quat",
    "canonicalize_quat",
    "to_homogeneous",
    "invert_extrinsics",
    "relative_to_first",
    "extri_intri_to_pose_enc",
    "pose_enc_to_extri_intri",
    "unproject_depth",
    "cam_to_world",
    "project_points",
    "crop_resize_intrinsics",
    "relative_pose_errors",
    "rotation_angle_deg",
]


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _check_shape(x: np.ndarray, tail: tuple[int, ...], name: str) -> None:
    if x.ndim < len(tail) or tuple(x.shape[-len(tail):]) != tail:
        raise ValueError(f"{name} must have shape [..., {', '.join(map(str, tail))}], got {x.shape}")


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[..., 3, 3]`` from quaternions ``q`` ``[..., 4]`` (xyzw; normalised here)."""
    q = _f64(q)
    _check_shape(q, (4,), "q")
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("quat_to_rotmat: zero-norm quaternion")
    x, y, z, w = np.moveaxis(q / norm, -1, 0)
    r = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return r.reshape(q.shape[:-1] + (3, 3))


def canonicalize_quat(q: np.ndarray) -> np.ndarray:
    """Flip the sign of xyzw quaternions ``[..., 4]`` so that ``qw >= 0`` (``q`` and ``-q`` are one rotation)."""
    q = _f64(q)
    _check_shape(q, (4,), "q")
    return np.where(q[..., 3:4] < 0, -q, q)


def rotmat_to_quat(r: np.ndarray) -> np.ndarray:
    """Unit xyzw quaternions ``[..., 4]`` with ``qw >= 0`` from rotation matrices ``[..., 3, 3]``.

    Uses the largest-diagonal branch (Shepperd's method) per element, so it stays accurate near 180°.
    """
    r = _f64(r)
    _check_shape(r, (3, 3), "R")
    m = r.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    diag = np.stack([m[:, 0, 0], m[:, 1, 1], m[:, 2, 2], tr], axis=-1)
    branch = np.argmax(diag, axis=-1)
    q = np.empty((m.shape[0], 4))
    for b in range(4):
        sel = branch == b
        if not np.any(sel):
            continue
        s = m[sel]
        if b == 3:
            k = np.sqrt(np.maximum(1.0 + tr[sel], 1e-300)) * 2  # k = 4 qw
            q[sel] = np.stack(
                [(s[:, 2, 1] - s[:, 1, 2]) / k, (s[:, 0, 2] - s[:, 2, 0]) / k,
                 (s[:, 1, 0] - s[:, 0, 1]) / k, 0.25 * k], axis=-1)
        else:
            i, j, kk = b, (b + 1) % 3, (b + 2) % 3
            k = np.sqrt(np.maximum(1.0 + s[:, i, i] - s[:, j, j] - s[:, kk, kk], 1e-300)) * 2  # 4 q_i
            qv = np.empty((s.shape[0], 4))
            qv[:, i] = 0.25 * k
            qv[:, j] = (s[:, j, i] + s[:, i, j]) / k
            qv[:, kk] = (s[:, kk, i] + s[:, i, kk]) / k
            qv[:, 3] = (s[:, kk, j] - s[:, j, kk]) / k
            q[sel] = qv
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return canonicalize_quat(q.reshape(r.shape[:-2] + (4,)))


def to_homogeneous(e: np.ndarray) -> np.ndarray:
    """``[..., 3, 4]`` extrinsics to ``[..., 4, 4]`` by appending the row ``[0, 0, 0, 1]``."""
    e = _f64(e)
    _check_shape(e, (3, 4), "E")
    out = np.zeros(e.shape[:-2] + (4, 4))
    out[..., :3, :] = e
    out[..., 3, 3] = 1.0
    return out


def invert_extrinsics(e: np.ndarray) -> np.ndarray:
    """Inverse rigid transform ``[R^T | -R^T t]`` ``[..., 3, 4]`` (camera-from-world -> world-from-camera)."""
    e = _f64(e)
    _check_shape(e, (3, 4), "E")
    rt = np.swapaxes(e[..., :3, :3], -1, -2)
    t = -(rt @ e[..., :3, 3:4])
    return np.concatenate([rt, t], axis=-1)


def relative_to_first(e: np.ndarray) -> np.ndarray:
    """Re-express ``[S, 3, 4]`` extrinsics so frame 0 is the world: ``E_i' = E_i @ inv(E_0)``; ``E_0' = [I|0]``."""
    e = _f64(e)
    _check_shape(e, (3, 4), "E")
    if e.ndim != 3 or e.shape[0] == 0:
        raise ValueError(f"relative_to_first expects [S, 3, 4] with S >= 1, got {e.shape}")
    return (to_homogeneous(e) @ to_homogeneous(invert_extrinsics(e[0])))[:, :3, :]


def extri_intri_to_pose_enc(e: np.ndarray, k: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """VGGT ``absT_quaR_FoV`` ``[..., 9]`` from extrinsics ``[..., 3, 4]`` and intrinsics ``[..., 3, 3]``.

    ``image_hw`` is the ``(H, W)`` in pixels that ``K`` refers to; FoVs are in radians.
    """
    e, k = _f64(e), _f64(k)
    _check_shape(e, (3, 4), "E")
    _check_shape(k, (3, 3), "K")
    h, w = image_hw
    quat = rotmat_to_quat(e[..., :3, :3])
    fov_h = 2 * np.arctan((h / 2) / k[..., 1, 1])
    fov_w = 2 * np.arctan((w / 2) / k[..., 0, 0])
    return np.concatenate([e[..., :3, 3], quat, fov_h[..., None], fov_w[..., None]], axis=-1)


def pose_enc_to_extri_intri(
    pose_enc: np.ndarray, image_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`extri_intri_to_pose_enc`: ``(E [..., 3, 4], K [..., 3, 3])``, principal point ``(W/2, H/2)``."""
    p = _f64(pose_enc)
    _check_shape(p, (9,), "pose_enc")
    h, w = image_hw
    r = quat_to_rotmat(p[..., 3:7])
    e = np.concatenate([r, p[..., :3, None]], axis=-1)
    k = np.zeros(p.shape[:-1] + (3, 3))
    k[..., 0, 0] = (w / 2) / np.tan(p[..., 8] / 2)
    k[..., 1, 1] = (h / 2) / np.tan(p[..., 7] / 2)
    k[..., 0, 2] = w / 2
    k[..., 1, 2] = h / 2
    k[..., 2, 2] = 1.0
    return e, k


def unproject_depth(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame points ``[H, W, 3]`` (same units as depth) from z-depth ``[H, W]`` and ``K [3, 3]``.

    Pixel ``(v, u)`` is unprojected at continuous coordinate ``(u, v)`` (pixel centre = integer index).
    """
    d = _f64(depth)
    if d.ndim != 2:
        raise ValueError(f"depth must be [H, W], got {d.shape}")
    k = _f64(k)
    _check_shape(k, (3, 3), "K")
    h, w = d.shape
    v, u = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    x = (u - k[0, 2] - k[0, 1] * (v - k[1, 2]) / k[1, 1]) / k[0, 0]
    y = (v - k[1, 2]) / k[1, 1]
    return np.stack([x * d, y * d, d], axis=-1)


def cam_to_world(points: np.ndarray, e: np.ndarray) -> np.ndarray:
    """World points ``[..., 3]`` from camera points ``[..., 3]`` under camera-from-world ``E [3, 4]``."""
    p, e = _f64(points), _f64(e)
    _check_shape(e, (3, 4), "E")
    inv = invert_extrinsics(e)
    return p @ inv[:3, :3].T + inv[:3, 3]


def project_points(
    points_world: np.ndarray, e: np.ndarray, k: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project world points ``[..., 3]`` into a camera: ``(uv [..., 2] pixels, z [...] depth)``.

    Points with ``z <= 0`` get ``uv = nan``; ``uv`` uses the integer-pixel-centre convention.
    """
    p, e, k = _f64(points_world), _f64(e), _f64(k)
    _check_shape(e, (3, 4), "E")
    _check_shape(k, (3, 3), "K")
    cam = p @ e[:3, :3].T + e[:3, 3]
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        pix = cam @ k.T
        uv = pix[..., :2] / pix[..., 2:3]
    uv = np.where((z > 0)[..., None], uv, np.nan)
    return uv, z


def crop_resize_intrinsics(
    k: np.ndarray, crop_box: tuple[int, int, int, int], out_hw: tuple[int, int]
) -> np.ndarray:
    """Intrinsics ``[..., 3, 3]`` after cropping ``(top, left, h, w)`` and resizing the crop to ``out_hw``.

    Matches :class:`geovr.shared.schema.ResizeSpec`. With pixel centres at integer coordinates, a
    resize by ``s`` maps ``u -> (u + 0.5) s - 0.5`` (pixel edges scale, as in area/bicubic resizers
    with ``align_corners=False``); the crop shifts the principal point by ``(left, top)``.
    """
    k = _f64(k).copy()
    _check_shape(k, (3, 3), "K")
    top, left, h, w = crop_box
    if h <= 0 or w <= 0 or out_hw[0] <= 0 or out_hw[1] <= 0:
        raise ValueError(f"invalid crop_box {crop_box} or out_hw {out_hw}")
    sy, sx = out_hw[0] / h, out_hw[1] / w
    out = k.copy()
    out[..., 0, 0] = k[..., 0, 0] * sx
    out[..., 0, 1] = k[..., 0, 1] * sx
    out[..., 1, 1] = k[..., 1, 1] * sy
    out[..., 0, 2] = (k[..., 0, 2] - left + 0.5) * sx - 0.5
    out[..., 1, 2] = (k[..., 1, 2] - top + 0.5) * sy - 0.5
    return out


def rotation_angle_deg(r: np.ndarray) -> np.ndarray:
    """Rotation angle in degrees ``[...]`` of rotation matrices ``[..., 3, 3]``.

    ``atan2(|vee(R - R^T)| / 2, (tr R - 1) / 2)``: accurate near 0 and 180 degrees, unlike a bare arccos.
    """
    r = _f64(r)
    cos = (np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0
    skew = np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    sin = np.linalg.norm(skew, axis=-1) / 2.0
    return np.degrees(np.arctan2(sin, cos))


def relative_pose_errors(e_pred: np.ndarray, e_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise relative-pose errors over the unordered pairs ``i < j`` (``P = S (S - 1) / 2``), as VGGT.

    Pairs are ordered row-major: (0,1), (0,2), ..., (1,2), ... For each pair the relative pose
    ``T_ij = E_i @ inv(E_j)`` (camera j -> camera i) is formed for prediction and ground truth; its
    translation ``R_i (C_j - C_i)`` is the baseline expressed in camera i's frame. Returns
    ``(rot_err_deg [P], trans_err_deg [P])``:

    - rotation error: the angle of ``R_pred^T R_gt`` in ``[0, 180]``;
    - translation error: the angle between the two baselines as lines, not rays (the sign of a
      translation direction is ambiguous, so ``a`` and ``180 - a`` fold to ``min(a, 180 - a)``),
      in ``[0, 90]``; a pair whose predicted or true baseline is zero (below 1e-12 of the set's
      longest) has no direction and scores 90 (what VGGT's code gives).

    These are the definitions of ``evaluation/test_co3d.py`` in facebookresearch/vggt; the
    numbers agree with it to 1e-9 degrees away from 0 (``tests/data/vggt_pose_golden.json``; VGGT's
    quaternion form floors errors at about 4e-6 degrees, this one does not).
    """
    ep, eg = _f64(e_pred), _f64(e_gt)
    _check_shape(ep, (3, 4), "E_pred")
    if ep.shape != eg.shape or ep.ndim != 3:
        raise ValueError(f"E_pred and E_gt must both be [S, 3, 4], got {ep.shape} and {eg.shape}")
    s = ep.shape[0]
    i, j = np.triu_indices(s, k=1)

    def rel(e: np.ndarray) -> np.ndarray:
        h = to_homogeneous(e)
        hinv = to_homogeneous(invert_extrinsics(e))
        return (h[i] @ hinv[j])[:, :3, :]

    rp, rg = rel(ep), rel(eg)
    rot_err = rotation_angle_deg(np.swapaxes(rp[:, :3, :3], -1, -2) @ rg[:, :3, :3])
    tp, tg = rp[:, :3, 3], rg[:, :3, 3]
    npn, ngn = np.linalg.norm(tp, axis=-1), np.linalg.norm(tg, axis=-1)
    # "zero": shorter than 1e-12 of the set's longest baseline (rounding leaves ~1e-16, not 0)
    zero = (npn <= 1e-12 * npn.max(initial=0.0)) | (ngn <= 1e-12 * ngn.max(initial=0.0))
    up = tp / np.where(npn == 0, 1.0, npn)[:, None]
    ug = tg / np.where(ngn == 0, 1.0, ngn)[:, None]
    # angle between unit vectors via atan2(|u x v|, |u . v|): accurate near 0 and 90, folded by the abs
    t_err = np.degrees(np.arctan2(np.linalg.norm(np.cross(up, ug), axis=-1), np.abs(np.sum(up * ug, axis=-1))))
    return rot_err, np.where(zero, 90.0, t_err)
