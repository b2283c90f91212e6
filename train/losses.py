"""Loss terms of stage two, each a small function returning a scalar (``0`` when masked out).

Conventions: poses are VGGT ``absT_quaR_FoV`` ``[S, 9]``; depth ``[S, H, W]`` in teacher units;
features ``[S, h, w, C]``. A term whose target is absent returns an exact zero that still
carries the graph (so DeepSpeed sees every parameter used).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossConfig:
    """On/off switch and weight of every target (paper values as defaults)."""

    lm: float = 1.0
    """Language-modelling cross-entropy weight (0 disables)."""
    distill: float = 1.0
    """Feature distillation (1 - cosine) weight."""
    camera: float = 2.5
    """Camera pose weight."""
    camera_t: float = 1.0
    """Translation part of the camera L1."""
    camera_quat: float = 1.0
    """Quaternion part of the camera L1 (sign canonicalised, qw >= 0)."""
    camera_fov: float = 0.5
    """Field-of-view part of the camera L1."""
    depth: float = 1.0
    """Depth L1 (top residuals trimmed) + multi-scale gradient loss weight."""
    depth_trim: float = 0.02
    """Fraction of largest depth residuals dropped (outliers)."""
    depth_conf_min: float = 0.0
    """Pixels with teacher confidence at or below this are ignored (and depth 0 always)."""
    scale: float = 1.0
    """Metric scale L1 on log1p(s) weight."""


def canonical_quat(q: torch.Tensor) -> torch.Tensor:
    """Flip ``[..., 4]`` xyzw quaternions so that ``qw >= 0`` (q and -q are the same rotation)."""
    return torch.where(q[..., 3:4] < 0, -q, q)


def camera_loss(pred: torch.Tensor, target: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """L1 on the 9-d encoding ``[S, 9]``: translation, canonical quaternion, FoV."""
    t = (pred[..., :3] - target[..., :3]).abs().clamp(max=100).mean()
    q = (canonical_quat(pred[..., 3:7]) - canonical_quat(target[..., 3:7])).abs().mean()
    f = (pred[..., 7:] - target[..., 7:]).abs().mean()
    return {"camera_t": t, "camera_quat": q, "camera_fov": f,
            "camera": cfg.camera_t * t + cfg.camera_quat * q + cfg.camera_fov * f}


def gradient_loss(residual: torch.Tensor, mask: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """Mean |d/dx| + |d/dy| of the residual ``[S, H, W]`` at strides 1, 2, 4, 8 over valid neighbours."""
    total, used = residual.new_zeros(()), 0
    for k in range(scales):
        step = 2**k
        r, m = residual[:, ::step, ::step], mask[:, ::step, ::step].float()
        if r.shape[1] < 2 or r.shape[2] < 2:
            break
        mx, my = m[:, :, 1:] * m[:, :, :-1], m[:, 1:] * m[:, :-1]
        gx = ((r[:, :, 1:] - r[:, :, :-1]).abs().clamp(max=100) * mx).sum() / mx.sum().clamp(min=1)
        gy = ((r[:, 1:] - r[:, :-1]).abs().clamp(max=100) * my).sum() / my.sum().clamp(min=1)
        total, used = total + gx + gy, used + 1
    return total / max(used, 1)


def depth_loss(pred: torch.Tensor, target: torch.Tensor, conf: torch.Tensor, cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Trimmed L1 + gradient loss on ``[S, H, W]``; pixels with depth 0 or low confidence are ignored."""
    mask = (target > 0) & (conf > cfg.depth_conf_min)
    if not mask.any():
        zero = pred.sum() * 0
        return {"depth_l1": zero, "depth_grad": zero, "depth": zero}
    res = (pred - target).abs()[mask]
    if cfg.depth_trim > 0 and res.numel() > 1:
        keep = res <= torch.quantile(res.detach().float(), 1 - cfg.depth_trim).to(res.dtype)
        res = res[keep]
    l1 = res.clamp(max=100).mean()
    grad = gradient_loss(pred - target, mask)
    return {"depth_l1": l1, "depth_grad": grad, "depth": l1 + grad}


def scale_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between ``log1p`` of predicted and target metric scale."""
    return (torch.log1p(pred) - torch.log1p(target)).abs().mean()


def distill_loss(pred: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers of mean ``1 - cos`` over tokens; each ``[S, h, w, C]`` (teacher detached)."""
    terms = [(1 - F.cosine_similarity(p, t.detach(), dim=-1)).mean() for p, t in zip(pred, target, strict=True)]
    return torch.stack(terms).mean()
