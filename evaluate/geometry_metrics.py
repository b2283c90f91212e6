"""Geometry metrics for the student's heads or any teacher (protocols in docs/eval.md).

- Relative pose over all unordered frame pairs ``i < j`` with VGGT's definitions
  (:func:`geovr.shared.geometry.relative_pose_errors`): RRA@t / RTA@t (fraction of pairs whose
  rotation / translation-direction error is below ``t`` degrees) and AUC@T (mean over the integer
  thresholds ``t = 1..T`` of the fraction of pairs with ``max(rot_err, trans_err) < t``, the last
  threshold inclusive: an error of exactly ``T`` counts). Over several clips VGGT pools the pairs;
  because every pose metric is a fraction of pairs, the pooled value is the pair-weighted mean of
  the per-clip values (:func:`pool_pose`); the plain per-clip mean stays available by name.
- Depth: AbsRel = mean ``|d - d*| / d*`` and delta<1.25 = fraction with ``d > 0`` and
  ``max(d/d*, d*/d) < 1.25`` over valid pixels (``d* > 0``), after an alignment (:class:`DepthAlign`).
- Metric scale: relative error ``|s - s*| / s*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geovr.shared.geometry import relative_pose_errors

ALIGNMENTS = ("none", "median", "lstsq", "affine")
"""Depth alignment modes: none; one scale = median ratio; one least-squares scale; least-squares
scale and shift (affine-invariant)."""
SPACES = ("depth", "disparity")
"""Where the alignment is fitted: depth, or disparity = 1 / depth."""
GROUPS = ("clip", "frame")
"""One alignment per clip (video-depth protocol) or per frame (per-image protocol)."""
AUC_THRESHOLDS = (3, 5, 15, 30)
"""The AUC thresholds VGGT's CO3D evaluation prints (degrees)."""
POSE_KEYS = ("rra", "rta", "auc", *(f"auc_{t}" for t in AUC_THRESHOLDS))
"""Clip-metric keys that are fractions of frame pairs (pooled by pair count)."""


@dataclass
class PoseMetrics:
    """Relative-pose accuracy over all frame pairs of one clip (fractions in [0, 1])."""

    rra: float
    """Fraction of pairs with rotation error < threshold."""
    rta: float
    """Fraction of pairs with translation-direction error < threshold."""
    auc: float
    """AUC of max(rot, trans) error over thresholds 1..threshold degrees (:func:`pose_auc`)."""
    num_pairs: int
    """Number of frame pairs S(S-1)/2."""
    auc_at: dict[int, float] = field(default_factory=dict)
    """AUC at each of :data:`AUC_THRESHOLDS`."""


def pose_auc(rot_err: np.ndarray, trans_err: np.ndarray, max_threshold: int = 30) -> float:
    """AUC@``max_threshold`` of pair errors ``[P]`` (degrees), VGGT's definition.

    For ``t = 1 .. max_threshold - 1`` the fraction of pairs with ``max(rot, trans) < t``; for the
    last threshold the fraction with ``max(rot, trans) <= max_threshold``; the mean of these. NaN
    errors never count.
    """
    if int(max_threshold) != max_threshold or max_threshold < 1:
        raise ValueError(f"AUC threshold must be a positive integer, got {max_threshold}")
    worst = np.maximum(np.asarray(rot_err, np.float64), np.asarray(trans_err, np.float64))
    if not worst.size:
        return float("nan")
    m = int(max_threshold)
    passed = [np.count_nonzero(worst < t) for t in range(1, m)] + [np.count_nonzero(worst <= m)]
    return float(np.mean(passed) / worst.size)


def pose_metrics(e_pred: np.ndarray, e_gt: np.ndarray, threshold: float = 30.0) -> PoseMetrics:
    """RRA@threshold, RTA@threshold and AUC@threshold for extrinsics ``[S, 3, 4]`` (camera-from-world)."""
    rot, trans = relative_pose_errors(e_pred, e_gt)
    return PoseMetrics(float((rot < threshold).mean()), float((trans < threshold).mean()),
                       pose_auc(rot, trans, threshold), int(rot.size),
                       {t: pose_auc(rot, trans, t) for t in AUC_THRESHOLDS})


def pool_pose(per_clip: list[dict[str, float]]) -> dict[str, float]:
    """VGGT's pooling: every pose key of :data:`POSE_KEYS` over all pairs of all clips.

    Each clip dict needs ``num_pairs``; a fraction of pairs pooled over clips is the mean of the
    per-clip fractions weighted by their pair counts.
    """
    n = np.array([m["num_pairs"] for m in per_clip], np.float64)
    out = {}
    for k in POSE_KEYS:
        have = [i for i, m in enumerate(per_clip) if k in m]
        if have and n[have].sum() > 0:
            out[k] = float(np.dot(n[have], [per_clip[i][k] for i in have]) / n[have].sum())
    return out


@dataclass(frozen=True)
class DepthAlign:
    """How a depth prediction is aligned to the ground truth before the metrics."""

    mode: str = "none"
    """``none`` | ``median`` (scale = median(target) / median(pred)) | ``lstsq`` (least-squares
    scale) | ``affine`` (least-squares scale and shift)."""
    space: str = "depth"
    """``depth``: fit on depths; ``disparity``: fit on 1 / depth (the usual protocol for
    affine-invariant relative-depth models), then invert."""
    per: str = "clip"
    """``clip``: one fit over all frames (video depth); ``frame``: one fit per frame (per-image)."""

    def __post_init__(self) -> None:
        for name, value, allowed in (("alignment", self.mode, ALIGNMENTS), ("space", self.space, SPACES),
                                     ("per", self.per, GROUPS)):
            if value not in allowed:
                raise ValueError(f"depth {name} {value!r} not in {allowed}")


def _fit(p: np.ndarray, g: np.ndarray, mode: str) -> tuple[float, float]:
    """``(scale, shift)`` mapping ``p`` onto ``g`` (1-D, float64, finite)."""
    if mode == "none" or not p.size:
        return 1.0, 0.0
    if mode == "median":
        mp = float(np.median(p))
        return (float(np.median(g)) / mp if mp > 0 else float("nan")), 0.0
    if mode == "lstsq":
        pp = float(np.dot(p, p))
        return (float(np.dot(p, g)) / pp if pp > 0 else float("nan")), 0.0
    (s, b), *_ = np.linalg.lstsq(np.stack([p, np.ones_like(p)], 1), g, rcond=None)
    return float(s), float(b)


def _align_group(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, how: DepthAlign) -> np.ndarray:
    if how.space == "depth":
        fit = valid & np.isfinite(pred)
        s, b = _fit(pred[fit], gt[fit], how.mode)
        return s * pred + b
    has_disp = np.isfinite(pred) & (pred > 0)
    disp = np.where(has_disp, 1.0 / np.where(has_disp, pred, 1.0), np.nan)
    fit = valid & has_disp
    s, b = _fit(disp[fit], 1.0 / gt[fit], how.mode)
    aligned = s * disp + b
    # disparity <= 1/cap (incl. <= 0, and predictions without a disparity) reads as the far cap
    cap = float(gt[valid].max()) if valid.any() else np.inf
    aligned = np.where(np.isfinite(aligned) & (aligned > 1.0 / cap), aligned, 1.0 / cap)
    return 1.0 / aligned


def align_depth(pred: np.ndarray, gt: np.ndarray, mode: str | DepthAlign,
                valid: np.ndarray | None = None) -> np.ndarray:
    """``pred`` aligned onto ``gt`` (same shape, ``[S, H, W]`` for per-frame fits), fitted over ``valid``
    (default ``gt > 0``). Returns float64 depths.

    Non-positive predictions are kept as they are in depth space (a negative depth is simply far
    off in AbsRel and never within delta); in disparity space a prediction ``<= 0`` has no
    disparity: it is left out of the fit and, like any aligned disparity at or below
    ``1 / max(gt)``, scored at the far cap ``max(gt)`` of its group (MiDaS's depth cap, taken from
    the ground truth).
    """
    how = mode if isinstance(mode, DepthAlign) else DepthAlign(mode)
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    valid = gt > 0 if valid is None else valid & (gt > 0)
    if how.mode == "none":
        return pred.copy()
    if how.per == "clip":
        return _align_group(pred, gt, valid, how)
    if pred.ndim < 3:
        raise ValueError(f"per-frame alignment needs [S, H, W] depth, got {pred.shape}")
    return np.stack([_align_group(p, g, v, how) for p, g, v in zip(pred, gt, valid, strict=True)])


def _depth_scores(d: np.ndarray, g: np.ndarray) -> tuple[float, float]:
    ratio = np.maximum(d / g, g / np.where(d > 0, d, 1.0))
    return float(np.mean(np.abs(d - g) / g)), float(np.mean((d > 0) & (ratio < 1.25)))


def depth_metrics(pred: np.ndarray, gt: np.ndarray, alignment: str | DepthAlign = "none") -> dict[str, float]:
    """AbsRel and delta<1.25 over pixels where ``gt > 0`` (``[S, H, W]``, or any shape for per-clip fits).

    Per-clip alignment scores all valid pixels of the clip together; per-frame alignment scores each
    frame with valid pixels and averages over those frames (the per-image protocol).
    """
    if pred.shape != gt.shape:
        raise ValueError(f"depth prediction {pred.shape} and ground truth {gt.shape} differ in shape")
    how = alignment if isinstance(alignment, DepthAlign) else DepthAlign(alignment)
    gt = np.asarray(gt, np.float64)
    valid = gt > 0
    if not valid.any():
        raise ValueError("no valid ground-truth depth pixels (gt > 0)")
    aligned = align_depth(pred, gt, how, valid)
    if how.per == "frame":
        scores = [_depth_scores(a[v], g[v]) for a, g, v in zip(aligned, gt, valid, strict=True) if v.any()]
        abs_rel, delta1 = np.mean(scores, axis=0)
        return {"abs_rel": float(abs_rel), "delta1": float(delta1)}
    abs_rel, delta1 = _depth_scores(aligned[valid], gt[valid])
    return {"abs_rel": abs_rel, "delta1": delta1}


def scale_rel_error(pred: float, gt: float) -> float:
    """``|s - s*| / s*`` (NaN when ``s*`` is not positive)."""
    return float(abs(pred - gt) / gt) if gt > 0 else float("nan")
