"""Random camera sets for the VGGT pose-metric comparison (tests/data/vggt_pose_golden.json).

The golden numbers were produced once by running VGGT's own metric functions
(facebookresearch/vggt ``evaluation/test_co3d.py``, float64) on exactly these inputs, outside
the repository; only the numbers are kept here. ``cases()`` must stay bit-for-bit stable.
"""

from __future__ import annotations

import numpy as np


def _rot(rng: np.random.Generator, n: int, scale: float = np.pi) -> np.ndarray:
    """``n`` rotations about random axes by angles uniform in ``[0, scale)`` (Rodrigues)."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0, scale, size=n)
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k -= np.swapaxes(k, 1, 2)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _from_centres(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Camera-from-world ``[n, 3, 4]`` of rotations ``r`` and camera centres ``c``."""
    return np.concatenate([r, -(r @ c[..., None])], -1)


def _perturb(rng: np.random.Generator, r: np.ndarray, c: np.ndarray, rot_deg: float, c_sigma: float):
    return _rot(rng, len(r), np.radians(rot_deg)) @ r, c + rng.normal(scale=c_sigma, size=c.shape)


def cases(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named ``(pred [S, 3, 4], gt [S, 3, 4])`` camera sets."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, (rot_deg, c_sigma) in enumerate([(2.0, 0.05), (10.0, 0.3), (40.0, 1.0)]):
        r, c = _rot(rng, 10), rng.normal(size=(10, 3))
        out[f"noisy_{k}"] = (_from_centres(*_perturb(rng, r, c, rot_deg, c_sigma)), _from_centres(r, c))
    r, c = _rot(rng, 10), rng.normal(size=(10, 3))
    out["independent"] = (_from_centres(_rot(rng, 10), rng.normal(size=(10, 3))), _from_centres(r, c))
    # mirrored camera centres: point reflection through the origin and a plane mirror, rotations kept
    r, c = _rot(rng, 10), rng.normal(size=(10, 3))
    out["point_mirror"] = (_from_centres(*_perturb(rng, r, -c, 3.0, 0.05)), _from_centres(r, c))
    r, c = _rot(rng, 10), rng.normal(size=(10, 3))
    out["plane_mirror"] = (_from_centres(*_perturb(rng, r, c * np.array([1.0, 1.0, -1.0]), 3.0, 0.05)),
                           _from_centres(r, c))
    # a global similarity (rotation, translation, scale 3.7) of the world, then noise
    r, c = _rot(rng, 10), rng.normal(size=(10, 3))
    g, t, s = _rot(rng, 1)[0], rng.normal(size=3), 3.7
    rp, cp = _perturb(rng, r @ g.T, s * (c @ g.T) + t, 5.0, 0.2)
    out["similarity"] = (_from_centres(rp, cp), _from_centres(r, c))
    # short clips for pooling
    for k, n in enumerate((2, 5, 7)):
        r, c = _rot(rng, n), rng.normal(size=(n, 3))
        out[f"short_{k}"] = (_from_centres(*_perturb(rng, r, c, 15.0, 0.5)), _from_centres(r, c))
    return out


def auc_errors(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pair errors for the AUC definition: integers 0..31 (30.0 exactly included) and random values."""
    rng = np.random.default_rng(seed)
    rot = np.concatenate([np.arange(32, dtype=np.float64), rng.uniform(0, 40, 200), [30.0, 30.0, 29.999999]])
    trans = np.concatenate([np.zeros(32), rng.uniform(0, 40, 200), [30.0, 0.0, 30.0]])
    return rot, trans
