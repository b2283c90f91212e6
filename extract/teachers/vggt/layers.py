"""Transformer building blocks with the official VGGT / DINOv2 parameter names
(``norm1, attn.{qkv,q_norm,k_norm,proj}, ls1.gamma, norm2, mlp.{fc1,fc2}, ls2.gamma``).

LayerNorm eps follows the official code: PyTorch's default ``1e-5`` in the aggregator's frame/global
blocks (q/k norms included) and the camera head; ``1e-6`` only inside DINOv2 (``DINO_EPS``) and the
camera head's adaptive modulation norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_EPS = 1e-5
"""LayerNorm eps of the aggregator blocks, their q/k norms and the camera head (PyTorch's default)."""
DINO_EPS = 1e-6
"""LayerNorm eps inside the DINOv2 patch embedding (its blocks and final norm)."""


class RoPE2D(nn.Module):
    """2D rotary embedding: half the head channels rotate with the row index, half with the column (freq base 100)."""

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = base

    def _rotate(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        inv = 1.0 / self.base ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
        ang = pos.float()[..., None] * inv  # [B, N, d/2]
        cos, sin = torch.cat([ang.cos()] * 2, -1)[:, None], torch.cat([ang.sin()] * 2, -1)[:, None]
        x1, x2 = x.chunk(2, -1)
        return (x.float() * cos + torch.cat([-x2, x1], -1).float() * sin).to(x.dtype)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``x [B, heads, N, hd]``, ``pos [B, N, 2]`` (row, col) integer positions."""
        v, h = x.chunk(2, -1)
        return torch.cat([self._rotate(v, pos[..., 0]), self._rotate(h, pos[..., 1])], -1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qk_norm: bool = False, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        # q/k norms keep PyTorch's default eps even inside DINOv2 (the official Block does not pass its norm on)
        self.q_norm = nn.LayerNorm(dim // heads, eps=DEFAULT_EPS) if qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(dim // heads, eps=DEFAULT_EPS) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.rope is not None and pos is not None:
            q, k = self.rope(q, pos), self.rope(k, pos)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, out: int | None = None) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out or dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale; ``eps`` is the eps of ``norm1`` / ``norm2``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, init_values: float = 0.01, qk_norm: bool = False,
                 rope: RoPE2D | None = None, eps: float = DEFAULT_EPS) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn, self.ls1 = Attention(dim, heads, qk_norm, rope), LayerScale(dim, init_values)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp, self.ls2 = Mlp(dim, int(dim * mlp_ratio)), LayerScale(dim, init_values)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), pos))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """``proj``: a ``patch x patch`` strided convolution."""

    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoV2(nn.Module):
    """DINOv2 ViT with registers (keys ``cls_token, pos_embed, register_tokens, mask_token, patch_embed.proj,
    blocks.i, norm``); returns the normalised patch tokens."""

    def __init__(self, img_size: int, patch: int, dim: int, depth: int, heads: int, registers: int = 4) -> None:
        super().__init__()
        self.patch = patch
        n = (img_size // patch) ** 2
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, registers, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        self.blocks = nn.ModuleList(Block(dim, heads, init_values=1.0, eps=DINO_EPS) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=DINO_EPS)

    def patch_pos_embed(self, ph: int, pw: int) -> torch.Tensor:
        """Position embedding of the ``ph x pw`` patch grid ``[1, ph*pw, dim]`` (fp32): the trained square
        grid as is when it fits, else resized bicubic **with antialiasing** (as the official DINOv2 in VGGT)."""
        g = int(round((self.pos_embed.shape[1] - 1) ** 0.5))
        grid = self.pos_embed[:, 1:].float()
        if (ph, pw) == (g, g):
            return grid
        grid = grid.reshape(1, g, g, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(ph, pw), mode="bicubic", antialias=True)
        return grid.flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        tok = self.patch_embed(x)
        grid = self.patch_pos_embed(h // self.patch, w // self.patch).to(tok.dtype)
        cls = self.cls_token.expand(b, -1, -1) + self.pos_embed[:, :1]
        tok = torch.cat([cls, self.register_tokens.expand(b, -1, -1), tok + grid], 1)
        for blk in self.blocks:
            tok = blk(tok)
        return self.norm(tok)[:, 1 + self.register_tokens.shape[1]:]
