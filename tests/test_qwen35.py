"""Qwen3.5 student specifics on a tiny hybrid model: linear/full layer pattern, CPU gated-delta-net path,
both frame modes through the objective, the layer map over the real 2B layout."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

from geovr.train.losses import LossConfig
from geovr.train.objective import GeoObjective
from geovr.train.student.adapters import adapter_for
from geovr.train.student.collate import StudentSample, prepare_sample
from geovr.train.student.model import GeoStudent, StudentConfig
from geovr.train.student.tiny import build_tiny_student_dir

LAYERS = [4, 11, 17, 23]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = os.environ.get("GEOVR_TEST_CACHE") or str(tmp_path_factory.mktemp("tiny"))
    path = build_tiny_student_dir(Path(root) / "tiny-qwen35", "qwen3_5")
    adapter = adapter_for(AutoProcessor.from_pretrained(path), AutoConfig.from_pretrained(path))
    torch.manual_seed(0)
    return adapter, AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa")


def _sample(frames=4):
    rng = np.random.default_rng(0)
    targets = {"pose_enc": rng.normal(size=(frames, 9)).astype(np.float32),
               "depth": np.ones((frames, 8, 12), np.float32), "depth_conf": np.ones((frames, 8, 12), np.float32),
               "metric_scale": np.float32(2.0),
               "features": {layer: np.ones((frames, 2, 3, 8), np.float32) for layer in LAYERS}}
    return StudentSample(frames=[rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(frames)],
                         messages=[{"role": "user", "content": "How many chairs?"},
                                   {"role": "assistant", "content": "Two."}], targets=targets)


def test_tiny_is_hybrid_and_the_linear_layers_run_the_torch_path(tiny):
    adapter, hf = tiny
    types = hf.config.text_config.layer_types
    assert types == ["linear_attention", "full_attention"] * 2
    assert adapter.full_attention_layers() == [2, 4]
    layers = hf.model.language_model.layers
    assert all(hasattr(layer, "linear_attn") == (kind == "linear_attention") for layer, kind in zip(layers, types, strict=True))
    if importlib.util.find_spec("fla") or importlib.util.find_spec("causal_conv1d"):
        pytest.skip("fast kernels installed: the torch fallback is not what runs")
    s = prepare_sample(adapter, _sample())
    out = hf(**s["inputs"], position_ids=adapter.position_ids(hf, s["inputs"]), output_hidden_states=True)
    hs = out.hidden_states
    assert len(hs) == adapter.num_layers() + 1 and all(torch.isfinite(h).all() for h in hs)
    assert all(not torch.equal(hs[i], hs[i + 1]) for i in range(len(hs) - 1))  # every layer, linear ones too, acts


@pytest.mark.parametrize("mode, groups", [("duplicate", 4), ("pair", 2)])
def test_both_frame_modes_train_every_term_and_the_gated_delta_net(tiny, mode, groups):
    adapter, hf = tiny
    hf.zero_grad(set_to_none=True)
    student = GeoStudent(hf, adapter, StudentConfig(frame_mode=mode, teacher_feature_dim=8, teacher_layers=LAYERS,
                                                    camera_hidden=16, scale_hidden=16, distill_hidden=16))
    s = prepare_sample(adapter, _sample(), frame_mode=mode)
    ids = s["inputs"]["input_ids"][0]
    assert int((ids == adapter.camera_id).sum()) == groups == int(s["inputs"]["video_grid_thw"][0, 0])
    terms = GeoObjective(student, LossConfig())([s])
    assert all(float(terms[k].detach()) > 0 for k in ("lm", "camera", "depth", "scale", "distill"))
    terms["loss"].backward()
    linear = hf.model.language_model.layers[0].linear_attn
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in (linear.A_log, linear.dt_bias,
                                                                          linear.conv1d.weight))
    assert hf.model.visual.merger.linear_fc1.weight.grad is not None
    assert hf.model.visual.blocks[0].attn.qkv.weight.grad is None  # frozen


def test_layer_map_over_the_real_2b_layout(tiny):
    adapter, hf = tiny
    cfg = AutoConfig.from_pretrained(hf.config.name_or_path)
    text = cfg.get_text_config()
    text.num_hidden_layers = 24  # Qwen3.5-2B: 6 x (3 gated-delta-net + 1 full-attention)
    text.layer_types = ["linear_attention" if (i + 1) % 4 else "full_attention" for i in range(24)]
    big = type(adapter)(adapter.processor, cfg)
    assert big.full_attention_layers() == [4, 8, 12, 16, 20, 24]
    assert big.layer_map(LAYERS, 24) == [5, 12, 18, 24]
    assert big.full_attention_map(LAYERS, 24) == [4, 12, 20, 24]
    assert adapter.full_attention_map(LAYERS, 24) == [2, 2, 4, 4]  # tiny: 4 layers -> default [1, 2, 3, 4]
    text.layer_types = ["linear_attention"] * 24
    with pytest.raises(ValueError, match="no full-attention layer"):
        type(adapter)(adapter.processor, cfg).full_attention_map(LAYERS, 24)


def test_recipe_is_the_papers_with_the_qwen35_student():
    from dataclasses import asdict

    from geovr.train.config import load_config

    ours, paper = asdict(load_config("paper_qwen35_2b")), asdict(load_config("paper_qwen3vl_2b"))
    assert ours["model"].pop("model") == "Qwen/Qwen3.5-2B" and paper["model"].pop("model").startswith("Qwen/Qwen3-VL")
    assert ours["run"].pop("out_dir") != paper["run"].pop("out_dir")
    assert ours == paper  # every hyperparameter (losses, optimiser, ZeRO, sampling, heads) is the paper's
