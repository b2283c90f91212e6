"""Geometry metrics for the student's heads or any teacher (protocols in bench.md §3).

- Relative pose over all unordered frame pairs ``i < j``: RRA@t / RTA@t (fraction of pairs whose
  rotation / translation-direction error is below ``t`` degrees) and AUC@30 (mean over the integer
  thresholds 1..30 of the fraction of pairs with ``max(rot_err, trans_err) < t``), as in VGGT.
- Depth: AbsRel = mean ``|d - d*| / d*`` and delta<1.25 = fraction with ``max(d/d*, d*/d) < 1.25``
  over valid pixels (``d* > 0``), after alignment ``none`` / ``median`` (scale by the median ratio)
  / ``lstsq`` (least-squares scale ``sum(d d*) / sum(d^2)``).
- Metric scale: relative error ``|s - s*| / s*``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geovr.shared.geometry import relative_pose_errors

ALIGNMENTS = ("none", "median", "lstsq")
"""Depth scale alignment modes."""


@dataclass
class PoseMetrics:
    """Relative-pose accuracy over all frame pairs of one clip (fractions in [0, 1])."""

    rra: float
    """Fraction of pairs with rotation error < threshold."""
    rta: float
    """Fraction of pairs with translation-direction error < threshold."""
    auc: float
    """Area under the accuracy curve of max(rot, trans) error over thresholds 1..max_threshold degrees."""
    num_pairs: int
    """Number of frame pairs S(S-1)/2."""


def pose_metrics(e_pred: np.ndarray, e_gt: np.ndarray, threshold: float = 30.0) -> PoseMetrics:
    """RRA@threshold, RTA@threshold and AUC@threshold for extrinsics ``[S, 3, 4]`` (camera-from-world)."""
    rot, trans = relative_pose_errors(e_pred, e_gt)
    worst = np.maximum(rot, trans)
    thresholds = np.arange(1, int(threshold) + 1)
    auc = float(np.mean([(worst < t).mean() for t in thresholds]))
    return PoseMetrics(float((rot < threshold).mean()), float((trans < threshold).mean()), auc, int(rot.size))


def align_depth(pred: np.ndarray, gt: np.ndarray, mode: str, valid: np.ndarray | None = None) -> np.ndarray:
    """Scale ``pred`` onto ``gt`` with one scalar computed over ``valid`` (default ``gt > 0``)."""
    if mode not in ALIGNMENTS:
        raise ValueError(f"alignment {mode!r} not in {ALIGNMENTS}")
    valid = (gt > 0) & (pred > 0) if valid is None else valid
    if mode == "none" or not valid.any():
        return pred
    p, g = pred[valid].astype(np.float64), gt[valid].astype(np.float64)
    s = np.median(g) / np.median(p) if mode == "median" else float((p * g).sum() / max((p * p).sum(), 1e-12))
    return pred * s


def depth_metrics(pred: np.ndarray, gt: np.ndarray, alignment: str = "none") -> dict[str, float]:
    """AbsRel and delta<1.25 over pixels where ``gt > 0`` (any shape, e.g. ``[S, H, W]``)."""
    if pred.shape != gt.shape:
        raise ValueError(f"depth prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    valid = gt > 0
    if not valid.any():
        raise ValueError("no valid ground-truth depth pixels (gt > 0)")
    aligned = align_depth(pred.astype(np.float64), gt.astype(np.float64), alignment, valid & (pred > 0))
    p, g = np.maximum(aligned[valid], 1e-12), gt[valid].astype(np.float64)
    ratio = np.maximum(p / g, g / p)
    return {"abs_rel": float(np.mean(np.abs(p - g) / g)), "delta1": float(np.mean(ratio < 1.25))}


def scale_rel_error(pred: float, gt: float) -> float:
    """``|s - s*| / s*`` (NaN when ``s*`` is not positive)."""
    return float(abs(pred - gt) / gt) if gt > 0 else float("nan")
