"""Loss terms of stage two, each a small function returning a scalar (``0`` when masked out).

Conventions: poses are VGGT ``absT_quaR_FoV`` ``[S, 9]``; depth ``[S, H, W]`` in teacher units;
features ``[S, h, w, C]``. A term whose target is absent returns an exact zero that still
carries the graph (so DeepSpeed sees every parameter used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossConfig:
    """On/off switch and weight of every target. Defaults are the paper code's (``scripts/train.sh`` weights,
    ``models/qwen3vl_geo.py`` loss details; docs/recipe.md lists each with its source)."""

    lm: float = 1.0
    """Language-modelling cross-entropy weight (0 disables)."""
    distill: float = 1.0
    """Feature distillation (1 - cosine) weight."""
    camera: float = 2.5
    """Camera pose weight."""
    camera_t: float = 1.0
    """Translation part of the camera L1 (each element's residual clamped at 100)."""
    camera_quat: float = 1.0
    """Quaternion part of the camera L1."""
    camera_quat_canonical: bool = False
    """Flip predicted and target quaternions to ``qw >= 0`` before the L1 (q and -q are one rotation).
    The paper's code compares the raw quaternions (False)."""
    camera_fov: float = 0.5
    """Field-of-view part of the camera L1."""
    depth: float = 1.0
    """Depth L1 (outliers dropped) + multi-scale gradient loss weight."""
    depth_trim: float = 0.02
    """Fraction of largest depth residuals dropped: pixels above the ``kthvalue`` at rank
    ``ceil((1 - trim) * (n - 1)) + 1`` of the ``n`` residuals are left out; 0 = no dropping at all."""
    depth_trim_min_pixels: int = 1000
    """No dropping when a sample has at most this many valid pixels; when fewer than this many would remain,
    every residual is kept but clamped at ``depth_max_residual`` instead."""
    depth_max_residual: float = 100.0
    """Residuals above this (teacher depth units) are dropped with the trimmed ones (not clamped)."""
    depth_grad_min_pixels: int = 10
    """A gradient-loss scale with fewer valid pixels than this is skipped."""
    depth_conf_min: float = 0.0
    """Pixels with teacher confidence at or below this are ignored (and depth 0 always). VGGT's confidence
    is >= 1, so 0 keeps every pixel, as the paper's code does."""
    scale: float = 1.0
    """Metric scale L1 on log1p(s) weight."""


def canonical_quat(q: torch.Tensor) -> torch.Tensor:
    """Flip ``[..., 4]`` xyzw quaternions so that ``qw >= 0`` (q and -q are the same rotation)."""
    return torch.where(q[..., 3:4] < 0, -q, q)


def camera_loss(pred: torch.Tensor, target: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """L1 on the 9-d encoding ``[S, 9]``: translation (clamped at 100 per element), quaternion, FoV."""
    t = (pred[..., :3] - target[..., :3]).abs().clamp(max=100).mean()
    pq, tq = pred[..., 3:7], target[..., 3:7]
    if cfg.camera_quat_canonical:
        pq, tq = canonical_quat(pq), canonical_quat(tq)
    q = (pq - tq).abs().mean()
    f = (pred[..., 7:] - target[..., 7:]).abs().mean()
    return {"camera_t": t, "camera_quat": q, "camera_fov": f,
            "camera": cfg.camera_t * t + cfg.camera_quat * q + cfg.camera_fov * f}


def gradient_loss(residual: torch.Tensor, mask: torch.Tensor, scales: int = 4, min_pixels: int = 10) -> torch.Tensor:
    """Multi-scale gradient loss of the residual ``[S, H, W]`` at strides 1, 2, 4, 8.

    Per scale: mean ``|d/dx|`` over pairs of valid neighbours plus mean ``|d/dy|`` likewise (each clamped
    at 100; a direction without valid pairs adds 0); scales with fewer than ``min_pixels`` valid pixels
    are skipped; the result is the mean over the scales used (an exact 0 if none).
    """
    total, used = residual.new_zeros(()), 0
    for k in range(scales):
        step = 2**k
        r, m = residual[:, ::step, ::step], mask[:, ::step, ::step]
        if int(m.sum()) < min_pixels:
            continue
        mx, my = m[:, :, 1:] & m[:, :, :-1], m[:, 1:] & m[:, :-1]
        gx = (r[:, :, 1:] - r[:, :, :-1]).abs().clamp(max=100)
        gy = (r[:, 1:] - r[:, :-1]).abs().clamp(max=100)
        if mx.any():
            total = total + gx[mx].mean()
        if my.any():
            total = total + gy[my].mean()
        used += 1
    return total / used if used else residual.sum() * 0


def trimmed_l1(res: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """Mean of the absolute residuals ``res [n]`` after dropping outliers (see ``LossConfig.depth_trim``)."""
    n = res.numel()
    if cfg.depth_trim <= 0 or n <= cfg.depth_trim_min_pixels:
        return res.mean()
    k = math.ceil((1 - cfg.depth_trim) * (n - 1)) + 1
    kth = torch.kthvalue(res.detach().float().clamp(max=cfg.depth_max_residual).flatten(), k).values
    keep = res <= min(float(kth), cfg.depth_max_residual)
    if int(keep.sum()) < cfg.depth_trim_min_pixels:
        return res.clamp(max=cfg.depth_max_residual).mean()
    return res[keep].mean()


def depth_loss(pred: torch.Tensor, target: torch.Tensor, conf: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Trimmed L1 + gradient loss on ``[S, H, W]``; pixels with depth 0 or low confidence are ignored."""
    mask = (target > 0) & (conf > cfg.depth_conf_min)
    if not mask.any():
        zero = pred.sum() * 0
        return {"depth_l1": zero, "depth_grad": zero, "depth": zero}
    l1 = trimmed_l1((pred - target).abs()[mask], cfg)
    grad = gradient_loss(pred - target, mask, min_pixels=cfg.depth_grad_min_pixels)
    return {"depth_l1": l1, "depth_grad": grad, "depth": l1 + grad}


def scale_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between ``log1p`` of predicted and target metric scale."""
    return (torch.log1p(pred) - torch.log1p(target)).abs().mean()


def distill_loss(pred: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of mean ``1 - cos`` over tokens; each ``[S, h, w, C]`` (teacher detached)."""
    terms = [(1 - F.cosine_similarity(p, t.detach(), dim=-1)).mean() for p, t in zip(pred, target, strict=True)]
    return torch.stack(terms).mean()
