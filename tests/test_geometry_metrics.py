"""Geometry metrics on known poses and depths."""

import numpy as np
import pytest

from geovr.evaluate.geometry_metrics import align_depth, depth_metrics, pose_metrics, scale_rel_error
from geovr.shared.geometry import quat_to_rotmat


def _trajectory(s=6, seed=0):
    rng = np.random.default_rng(seed)
    e = np.zeros((s, 3, 4))
    for i in range(s):
        q = rng.normal(size=4) * np.array([0.2, 0.2, 0.2, 1.0])
        e[i, :, :3] = quat_to_rotmat(q / np.linalg.norm(q))
        e[i, :, 3] = rng.normal(size=3)
    return e


def test_identity_gives_perfect_pose_scores():
    e = _trajectory()
    m = pose_metrics(e, e)
    assert (m.rra, m.rta, m.auc, m.num_pairs) == (1.0, 1.0, 1.0, 15)


def test_known_rotation_error_gives_known_rra():
    e = _trajectory(s=5)
    bad = e.copy()
    angle = np.radians(40.0)  # one camera rotated 40 deg about its optical axis: 4 of 10 pairs exceed 30 deg
    rz = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    bad[2] = rz @ bad[2]
    m = pose_metrics(bad, e)
    assert m.rra == pytest.approx(6 / 10)
    assert pose_metrics(bad, e, threshold=45).rra == 1.0


def test_depth_identity_and_known_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 5.0, size=(3, 8, 10)).astype(np.float32)
    gt[0, 0, 0] = 0  # invalid pixel ignored
    assert depth_metrics(gt, gt) == {"abs_rel": 0.0, "delta1": 1.0}
    scaled = gt * 0.37
    raw = depth_metrics(scaled, gt, "none")
    assert raw["abs_rel"] == pytest.approx(0.63, rel=1e-5) and raw["delta1"] == 0.0
    for mode in ("median", "lstsq"):
        m = depth_metrics(scaled, gt, mode)
        assert m["abs_rel"] == pytest.approx(0.0, abs=1e-6) and m["delta1"] == 1.0
    np.testing.assert_allclose(align_depth(scaled, gt, "lstsq")[gt > 0], gt[gt > 0], rtol=1e-5)


def test_scale_error_and_bad_inputs():
    assert scale_rel_error(1.1, 1.0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="shape"):
        depth_metrics(np.ones((2, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="alignment"):
        align_depth(np.ones(3), np.ones(3), "cubic")


def test_eval_geometry_cli_scores_a_store_against_itself_perfectly(oracle_store, tmp_path):
    import json

    from typer.testing import CliRunner

    from geovr.cli import app

    store, _ = oracle_store
    report = tmp_path / "geo.json"
    res = CliRunner().invoke(app, ["eval", "geometry", "--pred", str(store), "--ref", str(store), "--out", str(report)])
    assert res.exit_code == 0, res.output
    mean = json.loads(report.read_text())["mean"]
    assert mean["rra"] == 1.0 and mean["auc"] == pytest.approx(1.0) and mean["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert mean["scale_rel_err"] == pytest.approx(0.0, abs=1e-6)
    assert mean["num_pairs"] > 0 and mean["auc_clip_mean"] == pytest.approx(1.0)
    res = CliRunner().invoke(app, ["eval", "geometry", "--pred", str(store), "--ref", str(store), "--out", str(report),
                                   "--alignment", "affine", "--depth-space", "disparity", "--depth-per", "frame"])
    assert res.exit_code == 0, res.output
    rep = json.loads(report.read_text())
    assert rep["alignment"] == {"mode": "affine", "space": "disparity", "per": "frame"}
    assert rep["mean"]["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    bad = CliRunner().invoke(app, ["eval", "geometry", "--pred", str(store), "--ref", str(store), "--depth-space", "log"])
    assert bad.exit_code == 2 and "space" in bad.output
    for args in ([], ["--pred", str(store), "--model", str(tmp_path)]):
        bad = CliRunner().invoke(app, ["eval", "geometry", "--ref", str(store), *args])
        assert bad.exit_code == 2 and "exactly one of --pred" in bad.output
