"""Scale head: scale-token state ``[D]`` -> positive metric scale factor ``s`` (metres per teacher unit)."""

from __future__ import annotations

import torch
from torch import nn


class ScaleHead(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear(1) -> exp."""

    def __init__(self, dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.net(x).squeeze(-1).clamp(max=20))
