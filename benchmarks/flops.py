"""FLOP model of one training step at the paper's real sizes: the student with cached targets vs
the same step running the teachers online (the paper's official design).

- Teachers: counted exactly by ``torch.utils.flop_counter.FlopCounterMode`` running geovr's
  VGGT-1B (aggregator + camera head + DPT depth head) and transformers' Depth Anything V2 Large
  (metric) on **meta tensors** at 504x392 (no weights, no compute, seconds on a CPU): the ``stretch`` teacher
  input of a 640x480 source (docs/architecture.md).
- Student (Qwen3-VL-2B, frozen vision tower): analytic, multiply-adds x 2 of the matmuls and
  attention, forward + backward = 3x forward for the LLM, forward only for the vision tower; norms/softmax
  ignored. The LM head (full vocabulary) is counted where geovr runs it: only at the positions whose next
  token is supervised (``ANSWER_TOKENS``; transformers' ``logits_to_keep``), not at every position as a
  full-logits forward (the paper's code) would.

``cached_vs_online.py`` prints these next to its measured ratio.

    python benchmarks/flops.py          # prints the paper-size numbers for 8..64 frames
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


ANSWER_TOKENS = 16
"""Supervised tokens per sample assumed for the LM head: a VSI-590K answer (a number, a word or an option letter)
with its ``<|im_end|>`` and newline is a handful of tokens."""


def student_step(llm: ViT, vision: ViT, llm_tokens: int, vision_patches: int, vision_seqs: int,
                 vocab: int = 151936, lm_tokens: int | None = ANSWER_TOKENS) -> float:
    """Student step FLOPs: frozen vision tower forward only + LLM forward and backward (3x), its LM head over
    ``lm_tokens`` positions (``None``: every position, a full-logits forward)."""
    lm = llm_tokens if lm_tokens is None else min(lm_tokens, llm_tokens)
    fwd_llm = llm.linear(llm_tokens) + llm.attention(llm_tokens, 1) + 2 * llm.dim * vocab * lm
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
    vggt, metric = counted_teachers(frames)
    teacher = vggt + metric
    return {"student_step": student, "teacher_forward": teacher, "vggt": vggt, "metric": metric,
            "ideal_ratio": (student + teacher) / student}


def depth_anything_large_config():
    """Depth Anything V2 Large, metric head (ViT-L/14 DINOv2 backbone), as a transformers config."""
    return depth_anything_config(1024, 24, 16, out_indices=[5, 12, 18, 24], neck=[256, 512, 1024, 1024], fusion=256)


def depth_anything_config(hidden: int, layers: int, heads: int, out_indices: list[int], neck: list[int],
                          fusion: int):
    """A metric Depth Anything V2 config (max depth 20 m): a DINOv2 ``/14`` backbone of ``layers`` blocks of width
    ``hidden`` read at the 4 blocks ``out_indices`` (1-based), DPT neck widths ``neck``, fusion width ``fusion``."""
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=4 * hidden, image_size=518, patch_size=14, out_indices=out_indices,
                            reshape_hidden_states=False)
    return DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=hidden, neck_hidden_sizes=neck,
                               fusion_hidden_size=fusion, depth_estimation_type="metric", max_depth=20)


def hf_student_step(config, llm_tokens: int, vision_patches: int, groups: int,
                    lm_tokens: int | None = ANSWER_TOKENS) -> float:
    """``student_step`` of a transformers Qwen3-VL-style config (``text_config``, ``vision_config``): ``llm_tokens``
    in the LLM (the LM head at ``lm_tokens`` of them), ``vision_patches`` patches in ``groups`` temporal groups in
    the vision tower."""
    t, v = config.text_config, config.vision_config
    head_dim = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    llm = ViT(t.num_hidden_layers, t.hidden_size, t.intermediate_size, 0, swiglu=True,
              kv_dim=t.num_key_value_heads * head_dim)
    vision = ViT(v.depth, v.hidden_size, v.intermediate_size, 0)
    return student_step(llm, vision, llm_tokens, vision_patches, groups, vocab=t.vocab_size, lm_tokens=lm_tokens)


def counted_teachers(frames: int, hw: tuple[int, int] = (392, 504), vggt_config=None, metric_config=None,
                     layers: tuple[int, ...] = (4, 11, 17, 23)) -> tuple[float, float]:
    """``(VGGT forward, Depth Anything forward)`` FLOPs on ``frames`` frames of ``hw``, counted on meta tensors
    (default configs: VGGT-1B and Depth Anything V2 Large)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import DepthAnythingForDepthEstimation

    from geovr.extract.teachers.vggt.model import VGGT, VGGTConfig

    with torch.device("meta"):
        vggt = VGGT(vggt_config or VGGTConfig.vggt_1b())
        with FlopCounterMode(display=False) as fc:
            vggt(torch.empty(1, frames, 3, *hw), layers=layers, frames_chunk=8)
        da = DepthAnythingForDepthEstimation(metric_config or depth_anything_large_config())
        with FlopCounterMode(display=False) as fm:
            da(pixel_values=torch.empty(frames, 3, *hw))
    return float(fc.get_total_flops()), float(fm.get_total_flops())


if __name__ == "__main__":
    for f in (8, 16, 32, 64):
        r = paper_sizes(f)
        print(f"{f:>3} frames: student step {r['student_step'] / 1e12:7.1f} TFLOP  VGGT {r['vggt'] / 1e12:7.1f}  metric "
              f"{r['metric'] / 1e12:6.1f} TFLOP  FLOP-ideal online/cached = {r['ideal_ratio']:.2f}x")
