"""Metric scale target: the least-squares scalar ``s`` with ``metric_depth ~= s * teacher_depth``.

Pixels used (as the paper's alignment mask): teacher confidence above its median, teacher depth
> 1e-3, metric depth > 1e-2, finite, and not sky where a sky mask is given. The metric depth comes
from ground truth when the corpus has it (``scale_source = "ground_truth"``), otherwise from a
metric monocular depth model (``metric_teacher``), otherwise the scale is unknown (``none``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geovr.extract.teachers.oracle import resample_nearest
from geovr.shared.schema import ResizeSpec


def alignment_mask(teacher_depth: np.ndarray, conf: np.ndarray, metric: np.ndarray,
                   sky: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask ``[S, H, W]`` of the pixels the scale is fit on."""
    mask = (teacher_depth > 1e-3) & (metric > 1e-2) & np.isfinite(teacher_depth) & np.isfinite(metric)
    if conf is not None and mask.any():
        mask &= conf >= np.median(conf[mask])
    if sky is not None:
        mask &= ~sky
    return mask


def least_squares_scale(metric: np.ndarray, teacher: np.ndarray, mask: np.ndarray) -> float:
    """``argmin_s sum_mask (metric - s teacher)^2 = sum(m t) / sum(t^2)``; NaN if the mask is empty."""
    t, m = teacher[mask].astype(np.float64), metric[mask].astype(np.float64)
    denom = float((t * t).sum())
    if t.size < 16 or denom <= 0:
        return float("nan")
    return float((m * t).sum() / denom)


def ground_truth_scale(gt_dir: Path, frame_indices: np.ndarray, resize: ResizeSpec,
                       teacher_depth: np.ndarray, conf: np.ndarray) -> float:
    """Scale from the corpus's metric depth (``gt_dir/depth.npy``) at the sampled frames."""
    path = gt_dir / "depth.npy"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ground-truth depth missing")
    metric = resample_nearest(np.load(path, allow_pickle=False, mmap_mode="r")[frame_indices].astype(np.float32),
                              resize.crop_box, teacher_depth.shape[1:])
    return least_squares_scale(metric, teacher_depth, alignment_mask(teacher_depth, conf, metric))


def metric_teacher_scale(metric_model, frames, teacher_depth: np.ndarray, conf: np.ndarray) -> float:
    """Scale from a metric monocular depth model run on the teacher's input ``frames`` ``[S, 3, H, W]``.

    ``metric_model(frames)`` returns metres ``[S, H, W]``; teacher depth/confidence are ``[S, H, W]``.
    """
    metric = metric_model(frames).float().cpu().numpy()
    if metric.shape != teacher_depth.shape:
        raise ValueError(f"metric depth {metric.shape} does not match teacher depth {teacher_depth.shape}")
    return least_squares_scale(metric, teacher_depth, alignment_mask(teacher_depth, conf, metric))
