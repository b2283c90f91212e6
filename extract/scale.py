"""Metric scale target: the least-squares scalar ``s`` with ``metric_depth ~= s * teacher_depth``.

Pixels used (the official GeoVR alignment, ``depth_anything_3.utils.alignment``): not sky, teacher
confidence at or above its median, teacher depth > 1e-3, metric depth > 1e-2 (and finite). With a sky
mask the median is taken over the non-sky pixels, as the official code does; without one (ground truth,
metric models without a sky output) over the pixels whose depths pass the thresholds, so holes in
ground-truth depth do not pull the median. The official code estimates the median from at most 100,000
random samples; here it is exact.

The metric depth comes from ground truth when the corpus has it (``scale_source = "ground_truth"``),
otherwise from a metric depth model (``metric_teacher``: ``geovr.extract.metric_depth``), otherwise the
scale is unknown (``none``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geovr.extract.teachers.oracle import resample_nearest
from geovr.shared.schema import ResizeSpec

SKY_THRESHOLD = 0.3
"""A pixel is sky when the metric model's sky probability is >= this (official ``compute_sky_mask``)."""


def alignment_mask(teacher_depth: np.ndarray, conf: np.ndarray | None, metric: np.ndarray,
                   sky: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask ``[S, H, W]`` of the pixels the scale is fit on (``sky``: bool ``[S, H, W]``, True = sky)."""
    valid = (teacher_depth > 1e-3) & (metric > 1e-2) & np.isfinite(teacher_depth) & np.isfinite(metric)
    if sky is not None:
        non_sky = ~sky.astype(bool)
        valid &= non_sky
        median_pool = non_sky & np.isfinite(conf) if conf is not None else None
    else:
        median_pool = valid
    if conf is not None and median_pool is not None and median_pool.any():
        valid &= conf >= np.median(conf[median_pool])
    return valid


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
    depth = np.load(path, allow_pickle=False, mmap_mode="r")
    need = int(np.max(frame_indices)) + 1 if len(frame_indices) else 0
    if depth.ndim != 3 or depth.shape[0] < need:  # untrusted: a bad file fails this clip, not the writer
        raise ValueError(f"{path}: ground-truth depth is {depth.shape}, expected [frames >= {need}, H, W]")
    metric = resample_nearest(depth[frame_indices].astype(np.float32), resize.crop_box, teacher_depth.shape[1:])
    return least_squares_scale(metric, teacher_depth, alignment_mask(teacher_depth, conf, metric))


def metric_teacher_scale(metric_model, frames, teacher_depth: np.ndarray, conf: np.ndarray,
                         intrinsics=None) -> tuple[float, bool]:
    """``(scale, sky_masked)`` from a metric depth model run on the teacher's input ``frames`` ``[S, 3, H, W]``.

    ``metric_model(frames, intrinsics)`` returns a ``MetricDepth`` (metres ``[S, H, W]`` and, if the model
    predicts it, a sky mask); ``intrinsics`` ``[S, 3, 3]`` are the teacher's at the input size (DA3 metric
    turns its output into metres with their focal length). Teacher depth/confidence are ``[S, H, W]``.
    """
    pred = metric_model(frames, intrinsics)
    metric = pred.depth.float().cpu().numpy()
    if metric.shape != teacher_depth.shape:
        raise ValueError(f"metric depth {metric.shape} does not match teacher depth {teacher_depth.shape}")
    sky = None if pred.sky is None else pred.sky.cpu().numpy().astype(bool)
    if sky is not None and int((~sky).sum()) <= 10:  # the official code asserts > 10 non-sky pixels
        raise ValueError(f"metric depth model sees sky almost everywhere ({int((~sky).sum())} non-sky pixels)")
    scale = least_squares_scale(metric, teacher_depth, alignment_mask(teacher_depth, conf, metric, sky))
    return scale, sky is not None
