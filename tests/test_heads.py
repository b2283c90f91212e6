"""Depth heads: the official DPT variant's size at the paper's widths, shapes and gradients on a tiny width."""

import pytest
import torch

from geovr.train.heads import DepthHead, build_depth_head
from geovr.train.heads.dpt import OfficialDepthHead, uv_positional_embedding
from geovr.train.student.model import StudentConfig

# Parameter counts of the official code's DenseHead (models/dense_head.py, GeoVR-MLLM HEAD aa5be40) with
# the arguments its qwen3vl_geo.py passes (patch 16*2, target patch 14*2 for VGGT, features 256, channels
# 256/512/1024/1024), counted once by instantiating that class on the meta device in a scratch folder
# outside this repository: hidden 2048 (Qwen3-VL-2B) and hidden 2560 (Qwen3-VL-4B).
OFFICIAL_PARAMS = {2048: 32_335_153, 2560: 33_777_969}
PAPER = {"depth_channels": [256, 512, 1024, 1024], "depth_features": 256}


def _count(head: torch.nn.Module) -> int:
    return sum(p.numel() for p in head.parameters())


@pytest.mark.parametrize("dim", sorted(OFFICIAL_PARAMS))
def test_official_head_matches_the_paper_code_parameter_count(dim):
    with torch.device("meta"):
        head = build_depth_head(dim, StudentConfig(depth_head="official", **PAPER))
        simple = build_depth_head(dim, StudentConfig(depth_head="simple", **PAPER))
    assert isinstance(head, OfficialDepthHead) and isinstance(simple, DepthHead)
    assert abs(_count(head) - OFFICIAL_PARAMS[dim]) <= 0.01 * OFFICIAL_PARAMS[dim], _count(head)
    assert _count(simple) < 0.6 * OFFICIAL_PARAMS[dim]  # the simplified head is a different architecture


def test_default_depth_head_is_the_official_one():
    assert StudentConfig().depth_head == "official"
    with pytest.raises(ValueError, match="depth_head"):
        build_depth_head(8, StudentConfig(depth_head="dpt"))


@pytest.mark.parametrize(("grid", "out_hw"), [((3, 4), (56, 84)), ((2, 3), (50, 70))])
def test_official_head_shapes_positivity_and_gradients(grid, out_hw):
    torch.manual_seed(0)
    head = OfficialDepthHead(16, (8, 8, 16, 16), 8, target_patch=28)
    grids = [torch.randn(2, *grid, 16, requires_grad=True) for _ in range(4)]
    depth = head(grids, out_hw)
    assert depth.shape == (2, *out_hw) and bool((depth > 0).all())
    depth.log().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert all(g.grad.abs().sum() > 0 for g in grids)


def test_uv_embedding_layout():
    pe = uv_positional_embedding(3, 5, 8, aspect=2.0)
    assert pe.shape == (8, 3, 5)
    # u varies along width only, v along height only; the centre cell is at the origin (sin 0, cos 1)
    assert torch.allclose(pe[:4, 0], pe[:4, 2]) and torch.allclose(pe[4:, :, 0], pe[4:, :, 3])
    assert torch.allclose(pe[:, 1, 2], torch.tensor([0.0, 0, 1, 1, 0, 0, 1, 1]), atol=1e-7)
    # centres span +-aspect/diag * (w-1)/w: the first channel is sin(u) with frequency 1
    diag = (2.0**2 + 1) ** 0.5
    assert pe[0, 0, -1].item() == pytest.approx(torch.tensor(2.0 / diag * 4 / 5).sin().item(), abs=1e-6)
