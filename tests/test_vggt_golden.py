"""geovr's VGGT against golden outputs of the official implementation (tests/data/vggt/README.md).

The official code computed these numbers once on a small configuration; geovr must reproduce every output
(pose encoding, depth, confidence, the four cached aggregator layers) to 1e-5 in fp32 after loading the
same weights through its normal loading path. Two inputs: 2 square frames at the trained grid size (no
position-embedding resize) and 3 wide frames (resize: rows shrink, columns grow).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from geovr.extract.teachers.vggt import VGGTConfig, build

DATA = Path(__file__).parent / "data" / "vggt"
TOL = 1e-5


@pytest.fixture(scope="module")
def teacher_and_golden():
    cfg = VGGTConfig(**json.loads((DATA / "config.json").read_text())["config"])
    teacher = build(weights=str(DATA / "weights.safetensors"), config=cfg, device="cpu", layers=cfg.dpt_layers)
    with np.load(DATA / "golden.npz") as z:
        golden = {k: z[k] for k in z.files}
    return teacher, golden


@pytest.mark.parametrize("case", ["square98", "wide70x126"])
def test_outputs_match_the_official_implementation(teacher_and_golden, case):
    teacher, g = teacher_and_golden
    cfg = teacher.model.cfg
    frames = torch.from_numpy(g[f"{case}/images"])
    s, _, h, w = frames.shape
    out = teacher(frames, cfg.dpt_layers)
    diffs = {k: float(np.abs(getattr(out, k).numpy() - g[f"{case}/{k}"]).max())
             for k in ("pose_enc", "depth", "depth_conf")}
    p0, ph, pw = teacher.model.aggregator.patch_start_idx, h // cfg.patch_size, w // cfg.patch_size
    with torch.inference_mode():
        layers = teacher.model.aggregator(frames[None], set(cfg.dpt_layers))
    for i in cfg.dpt_layers:
        ref = g[f"{case}/layer{i}"]  # [S, P, 2C] with the camera and register tokens
        diffs[f"layer{i}"] = float(np.abs(layers[i][0].numpy() - ref).max())
        feat = ref[:, p0:].reshape(s, ph, pw, -1)
        diffs[f"features{i}"] = float(np.abs(out.features[i].numpy() - feat).max())
    assert max(diffs.values()) <= TOL, diffs
