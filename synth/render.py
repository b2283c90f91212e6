"""Vectorised numpy ray casting of a :class:`Scene`: RGB, exact z-depth and object ids.

Shading is view-independent (fixed directional light, per-face Lambert factor, procedural textures
defined in world/object coordinates), so one surface point has the same colour in every frame.
Rays go through integer pixel coordinates (pixel centre = integer index), as in
:func:`geovr.shared.geometry.unproject_depth`.
"""

from __future__ import annotations

import numpy as np

from .scene import Scene

_LIGHT = np.array([0.35, 0.55, 0.76])
_LIGHT = _LIGHT / np.linalg.norm(_LIGHT)
# Base colours of the room surfaces: floor, ceiling, walls.
_FLOOR = np.array([170.0, 130.0, 90.0])
_CEILING = np.array([225.0, 225.0, 215.0])
_WALLS = np.array([[190.0, 200.0, 215.0], [210.0, 195.0, 170.0]])


def _hash01(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) for integer lattice cells."""
    h = (i.astype(np.int64) * 73856093) ^ (j.astype(np.int64) * 19349663) ^ (salt * 83492791)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h ^ (h >> 16)) & 0xFFFF).astype(np.float64) / 65536.0


def texture(a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """Surface pattern in ``[0.55, 1.0]`` from 2-D surface coordinates in metres: a 0.4 m checker
    modulated by 0.1 m value noise."""
    checker = ((np.floor(a / 0.4) + np.floor(b / 0.4)) % 2).astype(np.float64)
    noise = _hash01(np.floor(a / 0.1), np.floor(b / 0.1), salt)
    return 0.55 + 0.18 * checker + 0.27 * noise


def _camera_rays(ext: np.ndarray, k: np.ndarray, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """World origin ``[3]`` and directions ``[H*W, 3]`` scaled so the ray parameter equals z-depth."""
    h, w = hw
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    x = (u.ravel() - k[0, 2]) / k[0, 0]
    y = (v.ravel() - k[1, 2]) / k[1, 1]
    d_cam = np.stack([x, y, np.ones_like(x)], -1)
    r, t = ext[:, :3], ext[:, 3]
    return -(r.T @ t), d_cam @ r  # d_world = R^T d_cam


def render_frame(
    scene: Scene, ext: np.ndarray, k: np.ndarray, hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one view: ``(rgb uint8 [H, W, 3], depth float32 [H, W] metres, object id int16 [H, W])``.

    ``ext`` is camera-from-world ``[3, 4]``, ``k`` the intrinsics ``[3, 3]``; id ``-1`` is the room.
    """
    h, w = hw
    origin, d = _camera_rays(ext, k, hw)
    size = np.asarray(scene.room.size)
    if np.any(origin <= 0) or np.any(origin >= size):
        raise ValueError(f"camera at {origin} is outside room {size}")
    # Room as an inside-out box: the exit distance along each axis, nearest one wins.
    with np.errstate(divide="ignore"):
        t_axes = np.where(d > 0, (size - origin) / d, np.where(d < 0, -origin / d, np.inf))
    axis = np.argmin(t_axes, axis=-1)
    t_best = t_axes[np.arange(len(d)), axis]
    ids = np.full(len(d), -1, dtype=np.int16)
    face = axis.copy()  # local face axis for the hit (room: world axis)
    for obj in scene.objects:
        rot = obj.rotation()
        o_l = rot.T @ (origin - np.asarray(obj.center))
        d_l = d @ rot  # = (R^T d^T)^T
        half = np.asarray(obj.size) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            t1 = (-half - o_l) / d_l
            t2 = (half - o_l) / d_l
        tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
        t_near, t_far = tmin.max(-1), tmax.min(-1)
        hit = (t_near <= t_far) & (t_near > 0) & (t_near < t_best)
        t_best = np.where(hit, t_near, t_best)
        ids[hit] = obj.index
        face[hit] = np.argmax(tmin[hit], axis=-1)
    p = origin + d * t_best[:, None]
    rgb = np.empty((len(d), 3))
    room = ids < 0
    # Room surfaces: pattern in the two in-plane world coordinates of the hit face.
    for ax in range(3):
        sel = room & (axis == ax)
        if not np.any(sel):
            continue
        a, b = [p[sel, i] for i in range(3) if i != ax]
        upper = d[sel, ax] > 0
        if ax == 2:
            base = np.where(upper[:, None], _CEILING, _FLOOR)
        else:
            base = np.broadcast_to(_WALLS[ax], (int(sel.sum()), 3))
        normal = np.zeros(3)
        normal[ax] = 1.0
        shade = 0.6 + 0.4 * abs(float(normal @ _LIGHT))
        rgb[sel] = base * (texture(a, b, salt=ax * 2 + upper)[:, None] * shade)
    for obj in scene.objects:
        sel = ids == obj.index
        if not np.any(sel):
            continue
        rot = obj.rotation()
        pl = (p[sel] - np.asarray(obj.center)) @ rot
        f = face[sel]
        a = np.where(f == 0, pl[:, 1], pl[:, 0])
        b = np.where(f == 2, pl[:, 1], pl[:, 2])
        n_world = rot[:, f].T  # face normal direction (sign irrelevant for |n . L|)
        shade = 0.5 + 0.5 * np.abs(n_world @ _LIGHT)
        pattern = texture(a * 1.5, b * 1.5, salt=100 + obj.index)
        rgb[sel] = np.asarray(obj.color, dtype=np.float64) * (pattern * shade)[:, None]
    rgb8 = np.clip(np.rint(rgb), 0, 255).astype(np.uint8).reshape(h, w, 3)
    return rgb8, t_best.astype(np.float32).reshape(h, w), ids.reshape(h, w)
