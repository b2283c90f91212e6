"""Depth alignment (scale, scale+shift; depth or disparity; per clip or per frame) against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from geovr.evaluate.geometry_metrics import DepthAlign, align_depth, depth_metrics


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(3)
    gt = rng.uniform(0.5, 6.0, size=(3, 6, 7))
    gt[0, 0, :3] = 0  # invalid pixels: never fitted, never scored
    return rng, gt


def _affine_closed_form(p, g):
    """Least-squares s, b of g ~ s p + b: s = cov(p, g) / var(p), b = mean(g) - s mean(p)."""
    s = np.mean((p - p.mean()) * (g - g.mean())) / np.var(p)
    return s, g.mean() - s * p.mean()


def test_affine_depth_recovers_scale_and_shift_exactly(scene):
    _, gt = scene
    pred = 0.4 * gt - 0.3  # some predictions negative: kept in an affine fit
    out = align_depth(pred, gt, DepthAlign("affine"))
    np.testing.assert_allclose(out[gt > 0], gt[gt > 0], rtol=1e-10)
    assert depth_metrics(pred, gt, DepthAlign("affine")) == pytest.approx({"abs_rel": 0.0, "delta1": 1.0}, abs=1e-9)
    # scale only cannot undo a shift
    assert depth_metrics(pred, gt, "lstsq")["abs_rel"] > 0.05


def test_affine_fit_equals_closed_form_on_noisy_depth(scene):
    rng, gt = scene
    pred = 2.0 * gt + 0.7 + rng.normal(scale=0.3, size=gt.shape)
    v = gt > 0
    s, b = _affine_closed_form(pred[v], gt[v])
    np.testing.assert_allclose(align_depth(pred, gt, DepthAlign("affine")), s * pred + b, rtol=1e-10)
    s1 = np.sum(pred[v] * gt[v]) / np.sum(pred[v] ** 2)
    np.testing.assert_allclose(align_depth(pred, gt, "lstsq"), s1 * pred, rtol=1e-12)
    s2 = np.median(gt[v]) / np.median(pred[v])
    np.testing.assert_allclose(align_depth(pred, gt, "median"), s2 * pred, rtol=1e-12)


def test_affine_disparity_fits_inverse_depth(scene):
    rng, gt = scene
    disp_gt = 1.0 / np.where(gt > 0, gt, 1.0)
    pred = 1.0 / (3.0 * disp_gt + 0.2)  # a depth whose disparity is affine in the true disparity
    how = DepthAlign("affine", space="disparity")
    out = align_depth(pred, gt, how)
    np.testing.assert_allclose(out[gt > 0], gt[gt > 0], rtol=1e-9)
    assert depth_metrics(pred, gt, DepthAlign("affine"))["abs_rel"] > 1e-3  # depth space cannot
    noisy = 1.0 / (3.0 * disp_gt + 0.2 + rng.uniform(0, 0.05, size=gt.shape))
    v = gt > 0
    s, b = _affine_closed_form(1.0 / noisy[v], 1.0 / gt[v])
    expect = 1.0 / np.maximum(s / noisy[v] + b, 1.0 / gt.max())  # beyond the far cap max(gt): the cap
    assert (1.0 / (s / noisy[v] + b) > gt.max()).any()
    np.testing.assert_allclose(align_depth(noisy, gt, how)[v], expect, rtol=1e-9)


def test_per_frame_alignment_fits_each_frame_and_averages_frames(scene):
    _, gt = scene
    scales = np.array([0.5, 2.0, 7.0])
    pred = gt * scales[:, None, None]
    per_frame = DepthAlign("lstsq", per="frame")
    np.testing.assert_allclose(align_depth(pred, gt, per_frame)[gt > 0], gt[gt > 0], rtol=1e-12)
    assert depth_metrics(pred, gt, per_frame)["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert depth_metrics(pred, gt, "lstsq")["abs_rel"] > 0.1  # one scale per clip cannot
    # per-frame metrics: the mean over frames of each frame's AbsRel, not a pixel-weighted mean
    bad = gt.copy()
    bad[0] *= 1.1  # frame 0 (fewer valid pixels) off by 10% after no alignment
    m = depth_metrics(bad, gt, DepthAlign("none", per="frame"))
    assert m["abs_rel"] == pytest.approx(0.1 / 3)


def test_non_positive_predictions(scene):
    _, gt = scene
    pred = gt.copy()
    pred[1, 2, 3] = -gt[1, 2, 3]  # negative depth: |d - d*| / d* = 2, never within delta
    pred[1, 2, 4] = 0.0
    v = gt > 0
    m = depth_metrics(pred, gt, "none")
    assert m["abs_rel"] == pytest.approx((2.0 + 1.0) / v.sum())
    assert m["delta1"] == pytest.approx(1 - 2 / v.sum())
    # disparity space: they have no disparity, are left out of the fit and read as the far cap max(gt)
    out = align_depth(pred, gt, DepthAlign("lstsq", space="disparity"))
    np.testing.assert_allclose(out[v & (pred > 0)], gt[v & (pred > 0)], rtol=1e-12)
    assert out[1, 2, 3] == out[1, 2, 4] == pytest.approx(gt.max())


def test_bad_settings_refused():
    with pytest.raises(ValueError, match="space"):
        DepthAlign("affine", space="log")
    with pytest.raises(ValueError, match="per"):
        DepthAlign("affine", per="pixel")
    with pytest.raises(ValueError, match="per-frame"):
        align_depth(np.ones(4), np.ones(4), DepthAlign("lstsq", per="frame"))
