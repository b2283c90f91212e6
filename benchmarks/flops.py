"""FLOP model of one training step: student with cached targets vs the same step running the
teachers online (the paper's official design). Counts multiply-adds x 2 of the matmuls and
attention (softmax/norms ignored); used by ``cached_vs_online.py`` for the FLOP-ideal ratio.

    python benchmarks/flops.py          # prints the paper-size numbers
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViT:
    """A transformer stack run on ``frames`` frames of ``tokens`` tokens each."""

    layers: int
    """Blocks."""
    dim: int
    """Hidden size."""
    mlp: int
    """MLP inner size (SwiGLU counts 3 matrices: pass ``swiglu=True``)."""
    tokens: int
    """Tokens per frame (or per sequence when ``frames == 1``)."""
    swiglu: bool = False
    """Three MLP matrices instead of two."""
    kv_dim: int = 0
    """K/V projection width for grouped-query attention (0 = dim)."""

    def linear(self, n_tokens: int) -> float:
        kv = self.kv_dim or self.dim
        per_tok = 2 * (2 * self.dim * self.dim + 2 * self.dim * kv + (3 if self.swiglu else 2) * self.dim * self.mlp)
        return self.layers * n_tokens * per_tok

    def attention(self, seq: int, n_seqs: int) -> float:
        return self.layers * n_seqs * 4 * seq * seq * self.dim  # QK^T and AV


def vggt_forward(frames: int, patches: int, dim: int = 1024, depth: int = 24, dpt_gflop_per_frame: float = 0.0) -> float:
    """VGGT aggregator (DINOv2 patch embed + alternating frame/global blocks) forward FLOPs."""
    p = patches + 5  # camera + 4 registers
    dino = ViT(24 if dim == 1024 else depth, dim, 4 * dim, patches + 5)
    blocks = ViT(depth, dim, 4 * dim, p)
    n = frames * p
    total = dino.linear(frames * (patches + 5)) + dino.attention(patches + 5, frames)
    total += 2 * blocks.linear(n)  # frame + global blocks
    total += blocks.attention(p, frames)  # frame attention: within each frame
    total += blocks.attention(n, 1)  # global attention: across all frames of the clip
    return total + frames * dpt_gflop_per_frame * 1e9


def metric_teacher_forward(frames: int, patches: int, dim: int = 1024, depth: int = 24) -> float:
    """A ViT-L monocular metric-depth teacher (per frame) forward FLOPs (head ignored)."""
    vit = ViT(depth, dim, 4 * dim, patches + 1)
    return vit.linear(frames * (patches + 1)) + vit.attention(patches + 1, frames)


def student_step(llm: ViT, vision: ViT, llm_tokens: int, vision_patches: int, vision_seqs: int) -> float:
    """Student step FLOPs: frozen vision tower forward only + LLM forward and backward (3x)."""
    fwd_llm = llm.linear(llm_tokens) + llm.attention(llm_tokens, 1)
    fwd_vis = vision.linear(vision_patches) + vision.attention(vision_patches // vision_seqs, vision_seqs)
    return fwd_vis + 3 * fwd_llm


def paper_sizes(frames: int = 32) -> dict[str, float]:
    """FLOPs per clip at the paper's sizes: Qwen3-VL-2B student, VGGT-1B + ViT-L metric teacher."""
    llm = ViT(28, 2048, 6144, 0, swiglu=True, kv_dim=1024)  # Qwen3-VL-2B text model
    vision = ViT(24, 1024, 4096, 0)  # Qwen3-VL vision tower
    groups = frames  # frames duplicated: one temporal group per original frame
    llm_tokens = groups * (300 + 1) + 1 + 120  # 300 merged tokens + camera token per frame, scale token, text
    vision_patches = groups * 300 * 4  # 2x2 patches per merged token (each patch spans both duplicates)
    student = student_step(llm, vision, llm_tokens, vision_patches, groups)
    teacher = vggt_forward(frames, 27 * 36) + metric_teacher_forward(frames, 27 * 36)
    return {"student_step": student, "teacher_forward": teacher, "ideal_ratio": (student + teacher) / student}


if __name__ == "__main__":
    for f in (8, 16, 32, 64):
        r = paper_sizes(f)
        print(f"{f:>3} frames: student step {r['student_step'] / 1e12:8.1f} TFLOP  teachers {r['teacher_forward'] / 1e12:8.1f}"
              f" TFLOP  FLOP-ideal online/cached = {r['ideal_ratio']:.2f}x")
