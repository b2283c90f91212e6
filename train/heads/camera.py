"""Camera head: camera-token state ``[S, D]`` -> VGGT ``absT_quaR_FoV`` ``[S, 9]``."""

from __future__ import annotations

import torch
from torch import nn


class CameraHead(nn.Module):
    """LayerNorm -> MLP -> translation (3), quaternion xyzw (4), FoV (2, ReLU so it stays >= 0)."""

    def __init__(self, dim: int, hidden: int = 1536) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden),
                                   nn.GELU())
        self.t, self.quat, self.fov = nn.Linear(hidden, 3), nn.Linear(hidden, 4), nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return torch.cat([self.t(h), self.quat(h), torch.relu(self.fov(h))], dim=-1)
