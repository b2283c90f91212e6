"""VGGT's DPT head (official key names: ``norm, projects.i, resize_layers.{0,1,3}, scratch.layer{1..4}_rn,
scratch.refinenet{1..4}.{out_conv,resConfUnit1,resConfUnit2}, scratch.output_conv1, scratch.output_conv2.{0,2}``).
Depth uses ``exp``, confidence ``1 + exp``; runs in fp32 and in frame chunks to bound memory."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResidualConvUnit(nn.Module):
    """``relu(x) + conv2(relu(conv1(relu(x))))``: in the official head the first ReLU is in-place, so the
    skip connection adds the rectified input, not ``x``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return x + self.conv2(F.relu(self.conv1(x)))


class FusionBlock(nn.Module):
    def __init__(self, c: int, residual: bool = True) -> None:
        super().__init__()
        if residual:
            self.resConfUnit1 = ResidualConvUnit(c)
        self.resConfUnit2 = ResidualConvUnit(c)
        self.out_conv = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int] | None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, size=size, scale_factor=None if size else 2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


def uv_embed(c: int, h: int, w: int, device: torch.device, aspect: float | None = None,
             ratio: float = 0.1) -> torch.Tensor:
    """Sin-cos embedding ``[c, h, w]`` (fp32) of aspect-normalised (u, v) coordinates, scaled by ``ratio``.

    ``u`` spans ``±span_x (w-1)/w`` with ``span_x = aspect / sqrt(1 + aspect^2)`` (``aspect``: the *image's*
    width / height; ``v`` likewise with ``1 / sqrt(1 + aspect^2)``), i.e. the centres of ``w`` equal cells;
    the grid is fp32, the angles and sin/cos are computed in float64 and cast, as in the official head.
    """
    if c % 4:
        raise ValueError(f"UV embedding needs a channel count divisible by 4, got {c}")
    aspect = w / h if aspect is None else aspect
    diag = math.sqrt(aspect**2 + 1.0)
    sx, sy = aspect / diag * (w - 1) / w, 1.0 / diag * (h - 1) / h
    u = torch.linspace(-sx, sx, w, device=device, dtype=torch.float32).double()
    v = torch.linspace(-sy, sy, h, device=device, dtype=torch.float32).double()
    freqs = 1.0 / 100.0 ** (torch.arange(c // 4, device=device, dtype=torch.float64) / (c / 4))
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    parts = [f(g[..., None] * freqs).float() for g in (uu, vv) for f in (torch.sin, torch.cos)]
    return ratio * torch.cat(parts, -1).permute(2, 0, 1)


class DPTHead(nn.Module):
    def __init__(self, dim_in: int, features: int, out_channels: list[int], layers: list[int], patch: int,
                 output_dim: int = 2) -> None:
        super().__init__()
        self.layers, self.patch = list(layers), patch
        self.norm = nn.LayerNorm(dim_in)
        self.projects = nn.ModuleList(nn.Conv2d(dim_in, oc, 1) for oc in out_channels)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(out_channels[0], out_channels[0], 4, stride=4),
            nn.ConvTranspose2d(out_channels[1], out_channels[1], 2, stride=2),
            nn.Identity(),
            nn.Conv2d(out_channels[3], out_channels[3], 3, stride=2, padding=1),
        ])
        self.scratch = nn.Module()
        for i, oc in enumerate(out_channels, 1):
            setattr(self.scratch, f"layer{i}_rn", nn.Conv2d(oc, features, 3, padding=1, bias=False))
            setattr(self.scratch, f"refinenet{i}", FusionBlock(features, residual=i != 4))
        self.scratch.output_conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.scratch.output_conv2 = nn.Sequential(nn.Conv2d(features // 2, 32, 3, padding=1), nn.ReLU(),
                                                  nn.Conv2d(32, output_dim, 1))

    def _frames(self, toks: list[torch.Tensor], ph: int, pw: int, h: int, w: int) -> torch.Tensor:
        maps = []
        for i, t in enumerate(toks):
            x = self.norm(t).permute(0, 2, 1).reshape(t.shape[0], -1, ph, pw)
            x = self.projects[i](x)
            x = x + uv_embed(x.shape[1], ph, pw, x.device, aspect=w / h)
            maps.append(self.resize_layers[i](x))
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i}_rn")(m) for i, m in enumerate(maps, 1))
        p = s.refinenet4(l4, None, l3.shape[-2:])
        p = s.refinenet3(p, l3, l2.shape[-2:])
        p = s.refinenet2(p, l2, l1.shape[-2:])
        p = s.refinenet1(p, l1, None)
        out = F.interpolate(s.output_conv1(p), size=(h, w), mode="bilinear", align_corners=True)
        return s.output_conv2(out + uv_embed(out.shape[1], h, w, out.device, aspect=w / h))

    def forward(self, layer_out: dict[int, torch.Tensor], images: torch.Tensor, p0: int,
                chunk: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        b, s, _, h, w = images.shape
        ph, pw = h // self.patch, w // self.patch
        toks = [layer_out[i][:, :, p0:].reshape(b * s, ph * pw, -1).to(self.norm.weight.dtype) for i in self.layers]
        outs = [self._frames([t[j : j + chunk] for t in toks], ph, pw, h, w) for j in range(0, b * s, max(chunk, 1))]
        out = torch.cat(outs).reshape(b, s, -1, h, w)
        return torch.exp(out[:, :, 0]), 1 + torch.exp(out[:, :, 1])
