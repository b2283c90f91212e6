"""Loss terms on hand-built tensors, values computed by hand from the paper code's definitions (docs/recipe.md)."""

import pytest
import torch

from geovr.train.losses import LossConfig, camera_loss, depth_loss, gradient_loss


def _depth(residuals: torch.Tensor, hw: tuple[int, int]) -> dict:
    """depth_loss of a prediction whose absolute residuals against a target of 1 are ``residuals``."""
    target = torch.ones(1, *hw)
    pred = target + residuals.reshape(1, *hw)
    return depth_loss(pred, target, torch.ones_like(target), LossConfig())


def test_camera_l1_compares_raw_quaternions_by_default():
    target = torch.tensor([[0.1, 0.2, 0.3, 0.0, 0.6, 0.0, 0.8, 1.0, 0.9]])
    pred = target.clone()
    pred[:, 3:7] = -pred[:, 3:7]  # the same rotation with the opposite sign
    raw = camera_loss(pred, target, LossConfig())
    assert raw["camera_quat"].item() == pytest.approx(2 * (0.6 + 0.8) / 4)
    assert raw["camera_t"].item() == 0 and raw["camera_fov"].item() == 0
    assert raw["camera"].item() == pytest.approx(0.7)
    canon = camera_loss(pred, target, LossConfig(camera_quat_canonical=True))
    assert canon["camera_quat"].item() == 0


def test_depth_l1_drops_above_the_kthvalue_not_an_interpolated_quantile():
    n = 2000  # residuals 1/64 ... 2000/64 (exact in float32), one pixel each
    res = torch.arange(1, n + 1, dtype=torch.float32) / 64
    # rank k = ceil(0.98 * 1999) + 1 = 1961: pixels 1..1961 stay (an interpolated quantile keeps 1..1960)
    assert _depth(res, (40, 50))["depth_l1"].item() == pytest.approx(1962 / 2 / 64, rel=1e-6)


def test_depth_l1_keeps_every_residual_at_or_below_1000_valid_pixels():
    res = torch.ones(1000)
    res[0] = 50.0
    assert _depth(res, (25, 40))["depth_l1"].item() == pytest.approx((999 + 50) / 1000, rel=1e-6)


def test_depth_l1_drops_residuals_above_100_instead_of_clamping():
    res = torch.ones(2000)
    res[:100] = 500.0  # 5 %: more than the 2 % trim, so only the hard limit removes them
    assert _depth(res, (40, 50))["depth_l1"].item() == pytest.approx(1.0)
    # when fewer than 1000 residuals would remain, all are kept, clamped at 100
    res[:1100] = 500.0
    assert _depth(res, (40, 50))["depth_l1"].item() == pytest.approx((900 + 1100 * 100) / 2000, rel=1e-6)


def test_gradient_term_skips_scales_with_fewer_than_10_valid_pixels():
    ramp = torch.arange(8, dtype=torch.float32).expand(1, 8, 8).clone()  # |d/dx| = stride, |d/dy| = 0
    mask = torch.ones(1, 8, 8, dtype=torch.bool)
    # strides 1 (64 px) and 2 (16 px) count; stride 4 has 4 px and stride 8 one: skipped
    assert gradient_loss(ramp, mask).item() == pytest.approx((1 + 2) / 2)
    # a scale whose valid pixels have no valid neighbour pair adds 0 but still counts
    sparse = torch.zeros(1, 8, 8, dtype=torch.bool)
    sparse[0, ::2, ::2] = True  # 16 pixels at stride 1 without neighbours, all neighbours at stride 2
    assert gradient_loss(ramp, sparse).item() == pytest.approx((0 + 2) / 2)
    assert gradient_loss(ramp, torch.zeros_like(mask)).item() == 0
