"""The GeoVR paper's dense depth head (``model.depth_head: official``), rebuilt from its description.

Architecture (the official code's ``models/dense_head.py``; numbers are the paper recipe's):

- each of the 4 mapped LLM layers' per-frame token grids ``[S, gh, gw, D]`` goes through one shared
  LayerNorm (eps 1e-5), its own 1x1 projection to ``channels[i]`` (256, 512, 1024, 1024), a sin-cos UV
  positional embedding (x 0.1) and a *learned* resampling: transposed conv x4, transposed conv x2,
  identity, strided 3x3 conv x0.5;
- a 3x3 conv (no bias) brings every level to ``features`` (256) channels;
- RefineNet-style fusion, coarse to fine: the deepest level runs one residual conv unit, every other
  level adds a residual unit of its lateral input to the upsampled coarser result, then runs a second
  unit; each block ends with a bilinear (align_corners) resize to the next level and a 1x1 conv;
- the fused map (4x the student token grid) is resized to 4x the *teacher's* patch grid when the two
  grids differ, gets a second UV embedding with the target's aspect ratio, and a 1x1 conv predicts
  ``(target_patch / 4)**2`` logits per cell that a pixel shuffle turns into one depth value per
  teacher pixel; depth = ``exp(logit)`` (no confidence output).

``target_patch`` is twice the teacher's patch (VGGT: 14 x 2 = 28), so the output has the teacher's
depth resolution when that is a multiple of ``target_patch`` (the paper's 504-edge frames are); other
sizes are bilinearly resized to the target at the end (a geovr addition, a no-op at the paper's sizes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

POS_EMBED_SCALE = 0.1
"""Weight of the UV positional embedding added to the feature maps."""
POS_EMBED_OMEGA = 100.0
"""Base of the sin-cos frequencies of the UV positional embedding."""


def uv_positional_embedding(h: int, w: int, channels: int, aspect: float, device=None) -> torch.Tensor:
    """Sin-cos embedding ``[channels, h, w]`` of a centred UV grid normalised by the plane's diagonal.

    Cell centres span ``±aspect/diag * (w-1)/w`` horizontally and ``±1/diag * (h-1)/h`` vertically,
    ``diag = sqrt(aspect**2 + 1)``; the first half of the channels encodes u, the second v, each half as
    ``[sin(p * f_k), cos(p * f_k)]`` with ``f_k = omega**(-k / (channels/4))``.
    """
    if channels % 4:
        raise ValueError(f"UV embedding needs channels divisible by 4, got {channels}")
    diag = math.sqrt(aspect * aspect + 1.0)
    sx, sy = aspect / diag * (w - 1) / w, 1.0 / diag * (h - 1) / h
    u = torch.linspace(-sx, sx, w, dtype=torch.float64, device=device)
    v = torch.linspace(-sy, sy, h, dtype=torch.float64, device=device)
    quarter = channels // 4
    freq = POS_EMBED_OMEGA ** (-torch.arange(quarter, dtype=torch.float64, device=device) / quarter)

    def enc(p: torch.Tensor) -> torch.Tensor:  # [n] -> [n, channels/2]
        a = p[:, None] * freq[None]
        return torch.cat([a.sin(), a.cos()], dim=-1)

    eu = enc(u)[None].expand(h, w, -1)  # [h, w, C/2]
    ev = enc(v)[:, None].expand(h, w, -1)
    return torch.cat([eu, ev], dim=-1).permute(2, 0, 1).float()


def _with_pos(x: torch.Tensor, aspect: float) -> torch.Tensor:
    """``x [N, C, h, w]`` plus the scaled UV embedding of its grid."""
    pe = uv_positional_embedding(x.shape[-2], x.shape[-1], x.shape[1], aspect, x.device)
    return x + (POS_EMBED_SCALE * pe).to(x.dtype)[None]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


class _ResidualUnit(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with two biased 3x3 convolutions."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class _FusionBlock(nn.Module):
    """``out_conv(resize(unit(x + lateral_unit(lateral))))``; the deepest block has no lateral input."""

    def __init__(self, c: int, lateral: bool) -> None:
        super().__init__()
        self.lateral_unit = _ResidualUnit(c) if lateral else None
        self.unit = _ResidualUnit(c)
        self.out_conv = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor, lateral: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        if self.lateral_unit is not None:
            x = x + self.lateral_unit(lateral)
        return self.out_conv(_resize(self.unit(x), size))


def _resampler(c: int, factor: float) -> nn.Module:
    if factor == 1:
        return nn.Identity()
    if factor == 0.5:
        return nn.Conv2d(c, c, 3, stride=2, padding=1)
    k = int(factor)
    return nn.ConvTranspose2d(c, c, k, stride=k)


class OfficialDepthHead(nn.Module):
    """The paper's DPT variant; ``forward(grids, out_hw) -> [S, H, W]`` depth (teacher units, > 0)."""

    FACTORS = (4.0, 2.0, 1.0, 0.5)
    """Resampling factor of each level relative to the student token grid."""

    def __init__(self, dim: int, channels: tuple[int, ...] = (256, 512, 1024, 1024), features: int = 256,
                 target_patch: int = 28) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"the official depth head reads exactly 4 layers, got channels {channels}")
        if target_patch % 4:
            raise ValueError(f"target_patch must be divisible by 4 (the fused map is 1/4 scale), got {target_patch}")
        self.target_patch, self.shuffle = target_patch, target_patch // 4
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.projects = nn.ModuleList(nn.Conv2d(dim, c, 1) for c in channels)
        self.resamplers = nn.ModuleList(_resampler(c, f) for c, f in zip(channels, self.FACTORS, strict=True))
        self.layer_rn = nn.ModuleList(nn.Conv2d(c, features, 3, padding=1, bias=False) for c in channels)
        self.fusion = nn.ModuleList(_FusionBlock(features, lateral=i < 3) for i in range(4))
        self.out = nn.Conv2d(features, self.shuffle**2, 1)

    def forward(self, grids: list[torch.Tensor], out_hw: tuple[int, int]) -> torch.Tensor:
        gh, gw = grids[0].shape[1:3]
        levels = []
        for g, proj, resample, rn in zip(grids, self.projects, self.resamplers, self.layer_rn, strict=True):
            x = proj(self.norm(g).permute(0, 3, 1, 2))
            levels.append(rn(resample(_with_pos(x, gw / gh))))
        fused = self.fusion[3](levels[3], None, levels[2].shape[-2:])
        fused = self.fusion[2](fused, levels[2], levels[1].shape[-2:])
        fused = self.fusion[1](fused, levels[1], levels[0].shape[-2:])
        fused = self.fusion[0](fused, levels[0], levels[0].shape[-2:])
        th, tw = (max(1, s // self.target_patch) for s in out_hw)
        if (th, tw) != (gh, gw):
            fused = _resize(fused, (4 * th, 4 * tw))
        fused = _with_pos(fused, out_hw[1] / out_hw[0])
        depth = torch.exp(F.pixel_shuffle(self.out(fused), self.shuffle)).squeeze(1)  # [S, 4*th*shuffle, ...]
        if tuple(depth.shape[-2:]) != tuple(out_hw):
            depth = F.interpolate(depth[:, None], size=tuple(out_hw), mode="bilinear", align_corners=False)[:, 0]
        return depth
