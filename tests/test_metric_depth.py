"""Metric-scale target from a transformers metric depth model (clips without ground truth)."""

import numpy as np
import pytest
import torch

from geovr.extract.metric_depth import MetricDepth, MetricDepthModel, write_random_depth_anything
from geovr.extract.runner import ExtractConfig, run_extract
from geovr.extract.scale import metric_teacher_scale
from geovr.shared.sampling import SamplingConfig
from geovr.shared.stores import StoreReader, finalize_store


@pytest.fixture(scope="module")
def tiny_da(tmp_path_factory):
    return write_random_depth_anything(tmp_path_factory.mktemp("da") / "tiny-da", max_depth=20)


def test_scale_recovers_a_known_factor_between_metric_and_teacher_depth():
    rng = np.random.default_rng(0)
    teacher = rng.uniform(0.5, 3.0, size=(3, 16, 20)).astype(np.float32)
    conf = rng.uniform(1.0, 5.0, size=teacher.shape).astype(np.float32)
    frames = torch.zeros(3, 3, 16, 20)
    scale, sky_masked = metric_teacher_scale(lambda f, k: MetricDepth(torch.from_numpy(teacher * 3.7)), frames, teacher,
                                             conf)
    assert scale == pytest.approx(3.7) and not sky_masked
    with pytest.raises(ValueError, match="does not match"):
        metric_teacher_scale(lambda f, k: MetricDepth(torch.zeros(3, 8, 10)), frames, teacher, conf)


def test_depth_anything_metric_model_returns_metres_at_frame_size(tiny_da):
    model = MetricDepthModel(str(tiny_da), device="cpu", batch_size=2)
    pred = model(torch.rand(5, 3, 70, 98))
    depth = pred.depth
    assert pred.sky is None
    assert depth.shape == (5, 70, 98) and depth.dtype == torch.float32
    assert torch.isfinite(depth).all() and (depth > 0).all() and (depth <= 20).all()  # sigmoid x max_depth


def test_a_relative_depth_checkpoint_is_refused(tmp_path, tiny_da):
    import json
    import shutil

    rel = tmp_path / "relative"
    shutil.copytree(tiny_da, rel)
    cfg = json.loads((rel / "config.json").read_text())
    (rel / "config.json").write_text(json.dumps({**cfg, "depth_estimation_type": "relative"}))
    with pytest.raises(ValueError, match="relative-depth checkpoint"):
        MetricDepthModel(str(rel), device="cpu")
    with pytest.raises(ValueError, match="cannot load"):
        MetricDepthModel(str(tmp_path / "missing"), device="cpu")


def test_extraction_records_the_metric_teacher_scale(synth_corpus, tmp_path, tiny_da):
    out = tmp_path / "store"
    cfg = ExtractConfig(corpus=str(synth_corpus / "corpus.parquet"), out=str(out), teacher="vggt",
                        teacher_kwargs={"config": "tiny", "device": "cpu", "random_init": True}, sampling=SamplingConfig(num_frames=4,
                        longest_edge=112), metric_depth=str(tiny_da), scale_from="metric_teacher", workers=0,
                        progress=False)
    assert run_extract(cfg).stored == 2
    finalize_store(out)
    clip = StoreReader(out)["synth_0001"]
    assert clip.scale_source == "metric_teacher" and clip.scale_model == str(tiny_da)
    assert not clip.scale_sky_masked  # a transformers metric model has no sky output
    assert np.isfinite(clip.metric_scale) and clip.metric_scale > 0
    with pytest.raises(ValueError, match="needs a metric depth model"):
        run_extract(ExtractConfig(corpus=cfg.corpus, out=str(tmp_path / "x"), teacher="oracle",
                                  scale_from="metric_teacher", progress=False))
