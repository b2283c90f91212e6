"""The paper's metric scale: DA3 metric output rescaled by the teacher's focal (metres = f * out / 300), sky
(DA3 sky >= 0.3) left out, confidence median over the non-sky pixels (official GeoVR alignment)."""

import numpy as np
import pytest
import torch
from torch import nn

from geovr.extract.metric_depth import DA3MetricDepth, MetricDepth
from geovr.extract.scale import alignment_mask, metric_teacher_scale

TRUE_SCALE, FOCAL = 2.5, 180.0


class _RawDA3(nn.Module):
    """Stands in for the DA3 network: returns fixed raw depth and sky probability ``[1, S, H, W]``."""

    def __init__(self, raw: torch.Tensor, sky_prob: torch.Tensor) -> None:
        super().__init__()
        self.raw, self.sky_prob = raw, sky_prob

    def forward(self, x):
        assert x.shape[:2] == (1, self.raw.shape[0])
        return {"depth": self.raw[None], "sky": self.sky_prob[None]}


def _scene():
    """3 frames 28x42; the top 8 rows are sky. Off the sky the metric depth is exactly TRUE_SCALE x the teacher's;
    in the sky DA3 says 'far' (80 m) where the teacher's depth stays modest and confident."""
    rng = np.random.default_rng(0)
    s, h, w = 3, 28, 42
    teacher = rng.uniform(0.5, 4.0, (s, h, w)).astype(np.float32)
    conf = rng.uniform(1.0, 3.0, (s, h, w)).astype(np.float32)
    sky = np.zeros((s, h, w), bool)
    sky[:, :8] = True
    teacher[sky] = rng.uniform(3.0, 5.0, int(sky.sum()))
    conf[sky] = 4.0  # confident sky: it passes the confidence median unless it is masked
    metric = TRUE_SCALE * teacher
    metric[sky] = 80.0
    raw = torch.from_numpy(metric * 300.0 / FOCAL)  # what DA3 metric outputs for a camera of focal FOCAL
    sky_prob = torch.from_numpy(np.where(sky, 0.9, 0.05).astype(np.float32))
    k = torch.tensor([[FOCAL * 1.1, 0, 21], [0, FOCAL * 0.9, 14], [0, 0, 1]]).expand(s, 3, 3)  # mean(fx, fy) = FOCAL
    return teacher, conf, sky, raw, sky_prob, k


def test_fitted_scale_is_within_1pct_with_sky_masked_and_5pct_off_without():
    teacher, conf, sky, raw, sky_prob, k = _scene()
    da3 = DA3MetricDepth(_RawDA3(raw, sky_prob), "stand-in", device="cpu")
    frames = torch.rand(3, 3, 28, 42)
    pred = da3(frames, k)
    assert torch.equal(pred.sky, torch.from_numpy(sky))
    np.testing.assert_allclose(pred.depth.numpy()[~sky], TRUE_SCALE * teacher[~sky], rtol=1e-5)  # focal rescale
    scale, masked = metric_teacher_scale(da3, frames, teacher, conf, k)
    assert masked and abs(scale / TRUE_SCALE - 1) < 0.01
    unmasked, masked = metric_teacher_scale(lambda f, kk: MetricDepth(da3(f, kk).depth), frames, teacher, conf, k)
    assert not masked and abs(unmasked / TRUE_SCALE - 1) >= 0.05
    with pytest.raises(ValueError, match="intrinsics"):
        da3(frames)


def test_confidence_median_is_taken_over_non_sky_pixels():
    teacher = np.ones((1, 4, 4), np.float32)
    metric = np.ones_like(teacher)
    conf = np.array([[[9, 9, 9, 9], [9, 9, 9, 9], [1, 2, 3, 4], [5, 6, 7, 8]]], np.float32)
    sky = np.zeros_like(teacher, bool)
    sky[:, :2] = True  # the 8 confident pixels are sky: the median of the other 8 is 4.5
    assert alignment_mask(teacher, conf, metric, sky).sum() == 4
    assert alignment_mask(teacher, conf, metric).sum() == 8  # no sky: median 8.5 over all 16 -> the eight 9s
    with pytest.raises(ValueError, match="sky almost everywhere"):
        everywhere = DA3MetricDepth(_RawDA3(torch.ones(1, 4, 4), torch.ones(1, 4, 4)), "x", device="cpu")
        metric_teacher_scale(everywhere, torch.rand(1, 3, 4, 4), teacher, conf, torch.eye(3)[None])


def test_da3_package_adapter_on_a_random_tiny_model(tmp_path):
    pytest.importorskip("depth_anything_3.model.da3", reason="depth-anything-3 not installed (optional)")
    from geovr.extract.metric_depth import load_metric_depth, write_random_da3_metric

    folder = write_random_da3_metric(tmp_path / "da3")
    model = load_metric_depth(f"da3:{folder}", device="cpu")
    assert isinstance(model, DA3MetricDepth) and model.name == f"da3:{folder}"
    frames, k = torch.rand(2, 3, 42, 56), torch.tensor([[60.0, 0, 28], [0, 40.0, 21], [0, 0, 1]]).expand(2, 3, 3)
    pred = model(frames, k)
    with torch.no_grad():
        raw = model.net(frames[None])
    assert pred.depth.shape == (2, 42, 56) and pred.sky.dtype == torch.bool and pred.sky.shape == (2, 42, 56)
    torch.testing.assert_close(pred.depth, raw["depth"][0] * 50.0 / 300.0)  # focal = (60 + 40) / 2
    assert torch.equal(pred.sky, raw["sky"][0] >= 0.3)
    with pytest.raises(ValueError, match="not a Depth Anything 3"):
        load_metric_depth(f"da3:{tmp_path}", device="cpu")


def test_da3_as_the_main_teacher_on_a_random_small_model():
    pytest.importorskip("depth_anything_3.model.da3", reason="depth-anything-3 not installed (optional)")
    from geovr.extract.teachers import build_teacher
    from geovr.shared.features import FeatureSpec

    with pytest.raises(ValueError, match="random_init"):
        build_teacher("da3", preset="da3-small", device="cpu")
    teacher = build_teacher("da3", preset="da3-small", device="cpu", random_init=True, layers=(1, 5, 11))
    assert teacher.info.name == "da3" and teacher.info.num_layers == 12 and teacher.info.random_init
    spec = FeatureSpec(layers=(1, 5, 11), channels="both", pool=2, dtype="bf16")
    out = teacher(torch.rand(2, 3, 56, 70), (1, 5, 11), spec=spec)
    assert out.pose_enc.shape == (2, 9) and out.depth.shape == (2, 56, 70) and out.depth_conf.shape == (2, 56, 70)
    torch.testing.assert_close(out.extrinsics[0], torch.eye(3, 4))  # frame 0 = world
    assert out.features[5].shape == (2, 2, 2, 384) and out.features[5].dtype == torch.bfloat16
    with pytest.raises(ValueError, match="single-width"):
        teacher(torch.rand(2, 3, 56, 70), (1,), spec=FeatureSpec(layers=(1,), channels="frame", pool=2))
