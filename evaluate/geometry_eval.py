"""``geovr eval geometry``: score one target store (a teacher, or the student's head readout written
in the same schema) against a reference store (ground truth via the oracle teacher, or another
teacher), clip by clip over the clips both hold."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from geovr.evaluate.geometry_metrics import (
    POSE_KEYS,
    DepthAlign,
    depth_metrics,
    pool_pose,
    pose_metrics,
    scale_rel_error,
)


def compare_stores(pred_root: str, ref_root: str, alignment: str | DepthAlign = "median",
                   threshold: float = 30.0) -> dict:
    """Per-clip and mean pose / depth / metric-scale metrics of ``pred_root`` against ``ref_root``.

    ``mean`` pools the pose metrics over all pairs of all clips (VGGT) and averages the others over
    clips; the per-clip mean of each pose metric is there too, as ``<key>_clip_mean``.
    """
    from geovr.shared.stores import StoreReader

    pred, ref = StoreReader(pred_root), StoreReader(ref_root)
    common = sorted(set(pred.clip_ids) & set(ref.clip_ids))
    if not common:
        raise ValueError(f"{pred_root} and {ref_root} share no clip ids")
    per_clip = {}
    for cid in common:
        p, r = pred[cid], ref[cid]
        if not np.array_equal(p.frame_indices, r.frame_indices):
            raise ValueError(f"clip {cid!r}: the two stores sampled different frames; metrics would be meaningless")
        per_clip[cid] = clip_metrics(p.extrinsics, p.depth, p.metric_scale, r.extrinsics, r.depth, r.metric_scale,
                                     alignment, threshold, where=f"clip {cid!r}")
    how = alignment if isinstance(alignment, DepthAlign) else DepthAlign(alignment)
    return {"pred": str(pred_root), "ref": str(ref_root), "alignment": asdict(how), "threshold_deg": threshold,
            "num_clips": len(common), "mean": mean_metrics(per_clip), "per_clip": per_clip}


def clip_metrics(pred_e: np.ndarray, pred_d: np.ndarray, pred_s: float, ref_e: np.ndarray, ref_d: np.ndarray,
                 ref_s: float, alignment: str | DepthAlign, threshold: float, where: str = "") -> dict[str, float]:
    """Pose (extrinsics ``[S, 3, 4]``), depth (``[S, H, W]``) and metric-scale metrics of one clip
    (``num_pairs``: its frame pairs, the weight of its pose metrics when pooled)."""
    pm = pose_metrics(pred_e, ref_e, threshold)
    pd, rd = np.asarray(pred_d, np.float32), np.asarray(ref_d, np.float32)
    if pd.shape != rd.shape:
        raise ValueError(f"{where}: depth shapes differ ({pd.shape} vs {rd.shape})")
    metrics = {"rra": pm.rra, "rta": pm.rta, "auc": pm.auc, **{f"auc_{t}": v for t, v in pm.auc_at.items()},
               "num_pairs": pm.num_pairs, **depth_metrics(pd, rd, alignment)}
    if math.isfinite(pred_s) and math.isfinite(ref_s) and (pd > 0).any() and (rd > 0).any():
        # metric depth = s * depth on both sides: compare the metric depth scale implied by each
        metrics["scale_rel_err"] = scale_rel_error(pred_s * float(np.median(pd[pd > 0])),
                                                   ref_s * float(np.median(rd[rd > 0])))
    return metrics


def mean_metrics(per_clip: dict[str, dict[str, float]]) -> dict[str, float]:
    """Pose metrics pooled over all pairs (:func:`pool_pose`, VGGT) plus their per-clip means as
    ``<key>_clip_mean``; ``num_pairs`` summed; every other metric averaged over the clips that have it."""
    clips = list(per_clip.values())
    keys = sorted({k for m in clips for k in m})
    out = {k: float(np.mean([m[k] for m in clips if k in m])) for k in keys if k not in (*POSE_KEYS, "num_pairs")}
    if all("num_pairs" in m for m in clips):
        out.update(pool_pose(clips))
        out["num_pairs"] = int(sum(m["num_pairs"] for m in clips))
    out.update({f"{k}_clip_mean": float(np.mean([m[k] for m in clips if k in m])) for k in POSE_KEYS
                if any(k in m for m in clips)})
    return out


def write_report(report: dict, out: str | Path) -> None:
    """The report as JSON (a :class:`DepthAlign` is written as its fields)."""
    Path(out).write_text(json.dumps(report, indent=2, default=lambda o: asdict(o) if isinstance(o, DepthAlign) else o))
