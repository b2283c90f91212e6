"""geovr's VGGT: aggregator (alternating frame / global attention), camera head, DPT depth head,
with module names equal to the official checkpoint's (``aggregator.*``, ``camera_head.*``, ``depth_head.*``).

Inputs ``[B, S, 3, H, W]`` in ``[0, 1]`` (H, W multiples of the patch size). Outputs: pose encoding
``[B, S, 9]`` (absT_quaR_FoV, last refinement), depth ``[B, S, H, W]``, confidence ``[B, S, H, W]``
and the requested layers' patch tokens ``[B, S, h, w, 2*embed_dim]`` (``cat(frame, global)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from geovr.extract.teachers.vggt.dpt import DPTHead
from geovr.extract.teachers.vggt.layers import DEFAULT_EPS, Block, DinoV2, Mlp, PatchEmbed, RoPE2D
from geovr.shared.teacher_layers import VGGT_DPT_LAYERS


@dataclass
class VGGTConfig:
    """Architecture (defaults = VGGT-1B)."""

    img_size: int = 518
    """Training image size (sets the DINOv2 position-embedding grid)."""
    patch_size: int = 14
    """Patch size in pixels."""
    embed_dim: int = 1024
    """Aggregator width (layer outputs are 2x: frame + global)."""
    depth: int = 24
    """Alternating-attention blocks (each one frame + one global block)."""
    num_heads: int = 16
    """Attention heads."""
    num_register_tokens: int = 4
    """Register tokens per frame (patch tokens start at ``1 + registers``)."""
    patch_embed: str = "dinov2_vitl14_reg"
    """``dinov2_vitl14_reg`` (a DINOv2 ViT with registers, width ``embed_dim``, ``dino_depth`` blocks,
    ``dino_heads`` heads; VGGT-1B: ViT-L/14) or ``conv`` (one strided convolution; tiny test models)."""
    dino_depth: int = 24
    """Blocks of the DINOv2 patch embedding (ViT-L: 24)."""
    dino_heads: int = 16
    """Attention heads of the DINOv2 patch embedding (ViT-L: 16)."""
    camera_trunk_depth: int = 4
    """Blocks in the camera head trunk."""
    camera_heads: int = 16
    """Attention heads of the camera head trunk blocks (official: 16)."""
    dpt_features: int = 256
    """DPT fusion width."""
    dpt_out_channels: list[int] = field(default_factory=lambda: [256, 512, 1024, 1024])
    """DPT projection widths."""
    dpt_layers: list[int] = field(default_factory=lambda: list(VGGT_DPT_LAYERS))
    """Aggregator layers the depth head reads."""

    @classmethod
    def vggt_1b(cls) -> VGGTConfig:
        return cls()

    @classmethod
    def tiny(cls) -> VGGTConfig:
        return cls(img_size=56, embed_dim=32, depth=4, num_heads=2, patch_embed="conv", camera_trunk_depth=1,
                   camera_heads=2, dpt_features=16, dpt_out_channels=[8, 16, 32, 32], dpt_layers=[0, 1, 2, 3])

    def __post_init__(self) -> None:
        if self.patch_embed != "conv" and not self.patch_embed.startswith("dinov2"):
            raise ValueError(f"patch_embed must be 'conv' or 'dinov2_*', not {self.patch_embed!r}")
        if len(self.dpt_layers) != 4 or len(self.dpt_out_channels) != 4:
            raise ValueError("the DPT head reads exactly 4 layers with 4 projection widths")
        if not all(0 <= i < self.depth for i in self.dpt_layers):
            raise ValueError(f"dpt_layers {self.dpt_layers} outside the aggregator's {self.depth} layers")


class Aggregator(nn.Module):
    def __init__(self, cfg: VGGTConfig) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.patch_size, self.reg = cfg.patch_size, cfg.num_register_tokens
        self.patch_embed = PatchEmbed(cfg.patch_size, d) if cfg.patch_embed == "conv" else \
            DinoV2(cfg.img_size, cfg.patch_size, d, cfg.dino_depth, cfg.dino_heads, cfg.num_register_tokens)
        self.rope = RoPE2D(100.0)
        self.frame_blocks = nn.ModuleList(Block(d, cfg.num_heads, qk_norm=True, rope=self.rope) for _ in range(cfg.depth))
        self.global_blocks = nn.ModuleList(Block(d, cfg.num_heads, qk_norm=True, rope=self.rope) for _ in range(cfg.depth))
        self.camera_token = nn.Parameter(torch.randn(1, 2, 1, d) * 1e-6)
        self.register_token = nn.Parameter(torch.randn(1, 2, cfg.num_register_tokens, d) * 1e-6)
        self.register_buffer("_resnet_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("_resnet_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1), persistent=False)

    @property
    def patch_start_idx(self) -> int:
        return 1 + self.reg

    def forward(self, images: torch.Tensor, keep: set[int]) -> dict[int, torch.Tensor]:
        """Layer outputs ``[B, S, P, 2d]`` for the layer indices in ``keep`` only (memory-saving)."""
        b, s, _, h, w = images.shape
        x = ((images - self._resnet_mean) / self._resnet_std).reshape(b * s, 3, h, w)
        tok = self.patch_embed(x)
        ph, pw = h // self.patch_size, w // self.patch_size

        def special(p: torch.Tensor) -> torch.Tensor:  # first frame gets index 0, the others index 1
            return torch.cat([p[:, :1].expand(b, 1, *p.shape[2:]), p[:, 1:].expand(b, s - 1, *p.shape[2:])], 1) \
                .reshape(b * s, *p.shape[2:])

        tok = torch.cat([special(self.camera_token), special(self.register_token), tok], 1)
        n, d = tok.shape[1], tok.shape[2]
        ys, xs = torch.meshgrid(torch.arange(ph), torch.arange(pw), indexing="ij")
        pos = torch.stack([ys.flatten(), xs.flatten()], -1) + 1  # patches from 1; special tokens at 0
        pos = torch.cat([torch.zeros(self.patch_start_idx, 2, dtype=pos.dtype), pos]).to(images.device)
        frame_pos, global_pos = pos.expand(b * s, n, 2), pos.repeat(s, 1).expand(b, s * n, 2)
        out = {}
        for i, (fb, gb) in enumerate(zip(self.frame_blocks, self.global_blocks, strict=True)):
            tok = fb(tok.reshape(b * s, n, d), frame_pos)
            f = tok.reshape(b, s, n, d)
            tok = gb(tok.reshape(b, s * n, d), global_pos)
            if i in keep:
                out[i] = torch.cat([f, tok.reshape(b, s, n, d)], -1)
        return out


class CameraHead(nn.Module):
    """Iterative pose refinement on the camera token of the last layer (adaLN-modulated trunk).
    LayerNorm eps 1e-5 everywhere except the adaptive modulation norm (1e-6), as in the official code."""

    def __init__(self, dim_in: int, trunk_depth: int, heads: int) -> None:
        super().__init__()
        self.token_norm, self.trunk_norm = nn.LayerNorm(dim_in, eps=DEFAULT_EPS), nn.LayerNorm(dim_in, eps=DEFAULT_EPS)
        self.trunk = nn.Sequential(*(Block(dim_in, heads, init_values=0.01) for _ in range(trunk_depth)))
        self.empty_pose_tokens = nn.Parameter(torch.zeros(1, 1, 9))
        self.embed_pose = nn.Linear(9, dim_in)
        self.poseLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim_in, 3 * dim_in))
        self.adaln_norm = nn.LayerNorm(dim_in, elementwise_affine=False, eps=1e-6)
        self.pose_branch = Mlp(dim_in, dim_in // 2, 9)

    def forward(self, tokens: torch.Tensor, iters: int = 4) -> torch.Tensor:
        """``tokens [B, S, 2d]`` camera tokens -> ``[B, S, 9]``."""
        tokens = self.token_norm(tokens)
        pred = None
        for _ in range(iters):
            inp = self.embed_pose(self.empty_pose_tokens.expand(*tokens.shape[:2], 9) if pred is None else pred.detach())
            shift, scale, gate = self.poseLN_modulation(inp).chunk(3, -1)
            x = gate * (self.adaln_norm(tokens) * (1 + scale) + shift) + tokens
            delta = self.pose_branch(self.trunk_norm(self.trunk(x)))
            pred = delta if pred is None else pred + delta
        return torch.cat([pred[..., :7], F.relu(pred[..., 7:])], -1)  # translation, quaternion linear; FoV relu


class VGGT(nn.Module):
    def __init__(self, cfg: VGGTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.aggregator = Aggregator(cfg)
        self.camera_head = CameraHead(2 * cfg.embed_dim, cfg.camera_trunk_depth, cfg.camera_heads)
        self.depth_head = DPTHead(2 * cfg.embed_dim, cfg.dpt_features, cfg.dpt_out_channels, cfg.dpt_layers,
                                  cfg.patch_size)

    def forward(self, images: torch.Tensor, layers: Sequence[int] = (), frames_chunk: int = 8,
                bf16: bool | None = None) -> dict:
        """``bf16``: run the aggregator under bfloat16 autocast (default: on CUDA only); the heads run in their
        weights' dtype (fp32 unless the model was cast, as the paper's online teachers are to bf16)."""
        if images.ndim == 4:
            images = images[None]
        b, s, _, h, w = images.shape
        keep = {*self.cfg.dpt_layers, self.cfg.depth - 1, *layers}
        bf16 = images.is_cuda if bf16 is None else bf16
        dev = images.device.type if images.device.type in ("cuda", "cpu") else "cpu"  # meta: FLOP counting
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=bf16):
            out = self.aggregator(images, keep)
        out = {k: v.to(self.camera_head.token_norm.weight.dtype) for k, v in out.items()}
        p0 = self.aggregator.patch_start_idx
        pose = self.camera_head(out[self.cfg.depth - 1][:, :, 0])
        depth, conf = self.depth_head(out, images, p0, frames_chunk)
        ph, pw = h // self.cfg.patch_size, w // self.cfg.patch_size
        feats = {i: out[i][:, :, p0:].reshape(b, s, ph, pw, -1) for i in layers}
        return {"pose_enc": pose, "depth": depth, "depth_conf": conf, "features": feats}
