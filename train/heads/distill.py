"""Distillation projector: student token grid ``[S, gh, gw, D]`` -> teacher grid ``[S, h, w, C]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DistillHead(nn.Module):
    """Bilinear resize of the student grid to the teacher grid, then LayerNorm -> Linear -> GELU -> Linear."""

    def __init__(self, dim: int, teacher_dim: int, hidden: int = 1024) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, teacher_dim))

    def forward(self, grid: torch.Tensor, teacher_hw: tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(grid.permute(0, 3, 1, 2), size=teacher_hw, mode="bilinear", align_corners=False)
        return self.net(x.permute(0, 2, 3, 1))
