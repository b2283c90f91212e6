"""Pose metrics equal VGGT's evaluation code (golden numbers from facebookresearch/vggt
``evaluation/test_co3d.py`` on the camera sets of ``pose_cases.py``) and follow its definitions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pose_cases import auc_errors, cases

from geovr.evaluate.geometry_eval import mean_metrics
from geovr.evaluate.geometry_metrics import pose_auc, pose_metrics
from geovr.shared.geometry import invert_extrinsics, relative_pose_errors, rotation_angle_deg, to_homogeneous

GOLDEN = json.loads((Path(__file__).parent / "data" / "vggt_pose_golden.json").read_text())
CASES = cases()


@pytest.mark.parametrize("name", sorted(GOLDEN["cases"]))
def test_pair_errors_and_metrics_equal_vggt(name):
    pred, gt = CASES[name]
    ref = GOLDEN["cases"][name]
    rot, trans = relative_pose_errors(pred, gt)
    np.testing.assert_allclose(rot, ref["rot_err"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(trans, ref["trans_err"], rtol=0, atol=1e-9)
    m = pose_metrics(pred, gt, threshold=30)
    assert abs(m.rra - ref["rra_30"]) < 1e-9 and abs(m.rta - ref["rta_30"]) < 1e-9
    assert abs(m.auc - ref["auc_30"]) < 1e-9
    for t, v in m.auc_at.items():
        assert abs(v - ref[f"auc_{t}"]) < 1e-9, t


def test_pooling_over_all_pairs_equals_vggt_and_clip_mean_stays_available():
    per_clip = {}
    for name in GOLDEN["cases"]:
        m = pose_metrics(*CASES[name])
        per_clip[name] = {"rra": m.rra, "rta": m.rta, "auc": m.auc, "num_pairs": m.num_pairs,
                          **{f"auc_{t}": v for t, v in m.auc_at.items()}}
    mean = mean_metrics(per_clip)
    ref = GOLDEN["pooled"]
    assert abs(mean["rra"] - ref["rra_30"]) < 1e-9 and abs(mean["rta"] - ref["rta_30"]) < 1e-9
    for t in (3, 5, 15, 30):
        assert abs(mean[f"auc_{t}"] - ref[f"auc_{t}"]) < 1e-9
    assert mean["num_pairs"] == sum(len(c["rot_err"]) for c in GOLDEN["cases"].values())
    clip_mean = np.mean([c["auc_30"] for c in GOLDEN["cases"].values()])
    assert abs(mean["auc_clip_mean"] - clip_mean) < 1e-12 and abs(clip_mean - ref["auc_30"]) > 0.01


def test_auc_definition_thresholds_inclusive_at_the_top():
    rot, trans = auc_errors()
    for key, v in GOLDEN["auc_definition"].items():
        assert abs(pose_auc(rot, trans, int(key.split("_")[1])) - v) < 1e-12, key
    # from the definition: an error of exactly 30 counts at AUC@30 (only at the last threshold)
    assert pose_auc(np.array([30.0]), np.array([0.0]), 30) == pytest.approx(1 / 30)
    assert pose_auc(np.array([30.0]), np.array([0.0]), 31) == pytest.approx(1 / 31)
    assert pose_auc(np.array([0.0]), np.array([0.0]), 30) == 1.0
    assert pose_auc(np.array([0.5, 30.5]), np.array([0.0, 0.0]), 30) == pytest.approx(0.5)


def test_relative_pose_convention_pair_order_and_sign_folding():
    """From the definitions: pairs (i < j) row-major; T_ij = E_i inv(E_j); baselines compared as lines."""
    pred, gt = CASES["independent"]
    s = len(gt)
    i, j = np.triu_indices(s, 1)
    rel = lambda e: (to_homogeneous(e)[i] @ to_homogeneous(invert_extrinsics(e))[j])  # noqa: E731
    rp, rg = rel(pred), rel(gt)
    rot, trans = relative_pose_errors(pred, gt)
    np.testing.assert_allclose(rot, rotation_angle_deg(np.swapaxes(rp[:, :3, :3], 1, 2) @ rg[:, :3, :3]), atol=1e-9)
    tp, tg = rp[:, :3, 3], rg[:, :3, 3]
    cos = np.sum(tp * tg, -1) / np.linalg.norm(tp, axis=-1) / np.linalg.norm(tg, axis=-1)
    unfolded = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    np.testing.assert_allclose(trans, np.minimum(unfolded, 180 - unfolded), atol=1e-6)
    assert trans.max() <= 90 and unfolded.max() > 90  # the fold matters on this set
    # point-mirrored centres flip every baseline: unfolded 180, folded 0
    c = -np.einsum("sji,sj->si", gt[:, :, :3], gt[:, :, 3])
    mirrored = np.concatenate([gt[:, :, :3], np.einsum("sij,sj->si", gt[:, :, :3], c)[..., None]], -1)
    _, t_m = relative_pose_errors(mirrored, gt)
    np.testing.assert_allclose(t_m, 0, atol=1e-6)
    # a zero baseline has no direction: 90 degrees
    dup = gt.copy()
    dup[1] = dup[0]
    _, t_d = relative_pose_errors(dup, gt)
    assert t_d[0] == 90.0
