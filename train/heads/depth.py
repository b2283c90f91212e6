"""Depth heads on the mapped LLM layers' per-frame token grids, and ``build_depth_head`` choosing one.

``model.depth_head``: ``official`` (default; the paper's DPT variant, ``geovr.train.heads.dpt``) or
``simple`` (``DepthHead`` below, about half the parameters). ``simple``: each of the 4 layers' grids
``[S, gh, gw, D]`` is projected (1x1 conv) to its own width, resized by x4 / x2 / x1 / x0.5 (as VGGT's DPT reassembly), brought to a common resolution, fused
coarse-to-fine with residual conv blocks, upsampled to the target depth size and activated
with ``exp`` (depth > 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DEPTH_HEADS = ("official", "simple")
"""Values of ``model.depth_head``."""


class _Residual(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DepthHead(nn.Module):
    """DPT-style dense head; ``forward(grids, out_hw) -> [S, H, W]`` depth."""

    def __init__(self, dim: int, channels: tuple[int, ...] = (64, 128, 256, 256), features: int = 64) -> None:
        super().__init__()
        self.factors = (4.0, 2.0, 1.0, 0.5)[: len(channels)]
        self.norm = nn.LayerNorm(dim)
        self.projects = nn.ModuleList(nn.Conv2d(dim, c, 1) for c in channels)
        self.layer_rn = nn.ModuleList(nn.Conv2d(c, features, 3, padding=1, bias=False) for c in channels)
        self.fuse = nn.ModuleList(_Residual(features) for _ in channels)
        self.out = nn.Sequential(nn.Conv2d(features, features // 2, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(features // 2, 1, 1))

    def forward(self, grids: list[torch.Tensor], out_hw: tuple[int, int]) -> torch.Tensor:
        maps = []
        for g, proj, rn, f in zip(grids, self.projects, self.layer_rn, self.factors, strict=True):
            x = proj(self.norm(g).permute(0, 3, 1, 2))
            size = (max(1, round(x.shape[-2] * f)), max(1, round(x.shape[-1] * f)))
            maps.append(rn(F.interpolate(x, size=size, mode="bilinear", align_corners=False)))
        fused = self.fuse[-1](maps[-1])
        for x, block in zip(reversed(maps[:-1]), reversed(self.fuse[:-1]), strict=True):
            fused = block(x + F.interpolate(fused, size=x.shape[-2:], mode="bilinear", align_corners=False))
        fused = F.interpolate(fused, size=out_hw, mode="bilinear", align_corners=False)
        return torch.exp(self.out(fused).squeeze(1).clamp(max=20))


def build_depth_head(dim: int, cfg) -> nn.Module:
    """The depth head ``cfg.depth_head`` names (``cfg``: the student config's ``depth_*`` fields) at LLM width ``dim``."""
    kind = getattr(cfg, "depth_head", "official")
    if kind == "official":
        from geovr.train.heads.dpt import OfficialDepthHead

        return OfficialDepthHead(dim, tuple(cfg.depth_channels), cfg.depth_features,
                                 getattr(cfg, "depth_target_patch", 28))
    if kind == "simple":
        return DepthHead(dim, tuple(cfg.depth_channels), cfg.depth_features)
    raise ValueError(f"model.depth_head {kind!r} not in {DEPTH_HEADS}")
