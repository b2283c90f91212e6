"""Smooth camera trajectories inside a room (OpenCV camera-from-world extrinsics)."""

from __future__ import annotations

import numpy as np

from .config import SynthConfig
from .scene import Room


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-from-world ``[3, 4]`` (OpenCV: x right, y down, z forward) for a camera at ``eye`` looking
    at ``target`` (world metres, z up). Rows of R are the camera axes in world coordinates."""
    fwd = target - eye
    fwd = fwd / np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(fwd, right)
    r = np.stack([right, down, fwd])
    return np.concatenate([r, -(r @ eye)[:, None]], axis=1)


def intrinsics(cfg: SynthConfig) -> np.ndarray:
    """Pinhole ``K [3, 3]`` in video pixels: square pixels, principal point ``(W/2, H/2)``."""
    f = (cfg.width / 2) / np.tan(np.radians(cfg.fov_w_deg) / 2)
    return np.array([[f, 0.0, cfg.width / 2], [0.0, f, cfg.height / 2], [0.0, 0.0, 1.0]])


def trajectory(rng: np.random.Generator, room: Room, cfg: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """An orbit-like walk: ``(extrinsics [N, 3, 4], eye positions [N, 3])``.

    The camera moves along an arc of an ellipse around the room centre (semi-axes
    ``orbit_fraction`` x the half-extents), at eye height with a gentle bob, looking at a target that
    drifts smoothly around the room centre; all motions are low-frequency sinusoids, so yaw and pitch
    change smoothly and the path stays well inside the walls.
    """
    n = cfg.frames
    sx, sy, sz = room.size
    centre = np.array([sx / 2, sy / 2])
    axes = cfg.orbit_fraction * centre
    s = np.linspace(0.0, 1.0, n)
    start = rng.uniform(0, 2 * np.pi)
    sweep = np.radians(rng.uniform(*cfg.sweep_deg)) * rng.choice([-1.0, 1.0])
    ang = start + sweep * s
    eye_h = rng.uniform(*cfg.eye_height_m)
    ph = rng.uniform(0, 2 * np.pi, size=4)
    eyes = np.stack(
        [centre[0] + axes[0] * np.cos(ang), centre[1] + axes[1] * np.sin(ang),
         eye_h + 0.08 * np.sin(2 * np.pi * s + ph[0])], axis=-1)
    targets = np.stack(
        [centre[0] + 0.3 * np.sin(np.pi * s + ph[1]), centre[1] + 0.3 * np.sin(np.pi * s + ph[2]),
         np.full(n, min(1.0, sz / 2)) + 0.2 * np.sin(np.pi * s + ph[3])], axis=-1)
    # Look past the centre, not at it, so the orbit radius never makes the view degenerate.
    fwd = targets - eyes
    targets = eyes + fwd + 0.5 * fwd / np.linalg.norm(fwd, axis=-1, keepdims=True)
    ext = np.stack([look_at(e, t) for e, t in zip(eyes, targets, strict=True)])
    return ext, eyes
