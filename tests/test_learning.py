"""Learning is real: 200 steps on oracle targets shrink every geometry term vs a control run without it."""

import subprocess
import sys

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.deepspeed
GEOMETRY = ("camera", "depth", "scale", "distill")


def _run(env, store, qa, out, *overrides):
    cmd = [sys.executable, "-m", "geovr", "train", "--config", "tiny_cpu", f"data.stores=[{store}]",
           f"data.instructions=[{qa}]", f"run.out_dir={out}", "run.max_steps=200", "run.save_every=1000", *overrides]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]


def _evaluate(export, store, qa):
    from geovr.train.config import DataConfig
    from geovr.train.data import TrainData
    from geovr.train.export import load_exported
    from geovr.train.losses import LossConfig
    from geovr.train.objective import GeoObjective
    from geovr.train.student.collate import prepare_sample

    student, adapter = load_exported(export)
    objective = GeoObjective(student, LossConfig(lm=0.0))  # every geometry term on, whatever the run trained
    data = TrainData(DataConfig(stores=[str(store)], instructions=[str(qa)]), seed=0)
    terms = {k: [] for k in GEOMETRY}
    with torch.no_grad():
        for pos in range(len(data)):
            out = objective([prepare_sample(adapter, data.sample(pos))])
            for k in GEOMETRY:
                terms[k].append(float(out[k]))
    return {k: float(np.mean(v)) for k, v in terms.items()}


@pytest.mark.parametrize("family", ["tiny-qwen3vl", pytest.param("tiny-qwen35", marks=pytest.mark.slow)])
def test_each_geometry_term_drops_against_a_control_without_it(env, oracle_store, tmp_path, family):
    # tiny-qwen35 (hybrid gated-delta-net / full attention, torch fallback kernels on CPU) is marked slow;
    # its measured trained / control ratios are in docs/qwen35.md
    store, qa = oracle_store
    _run(env, store, qa, tmp_path / "on", f"model.model={family}")
    _run(env, store, qa, tmp_path / "off", f"model.model={family}", *(f"loss.{k}=0" for k in GEOMETRY))
    on = _evaluate(tmp_path / "on" / "export", store, qa)
    off = _evaluate(tmp_path / "off" / "export", store, qa)
    print("trained:", on, "\ncontrol:", off)
    # Measured on two runs (2 clips x 4 frames, 200 steps, tiny Qwen3-VL, CPU), trained / control:
    # camera 0.057 and 0.230 / 1.25, depth 0.55 and 0.60 / 2.42, scale 0.00016 and 0.00017 / 0.068,
    # distill 0.012 and 0.013 / 0.97 (the trained run is not bit-reproducible across machines' thread
    # schedules). Each bound keeps ~2x margin over the worse measured ratio (0.185, 0.25, 0.0025, 0.013)
    # yet fails if a term merely fluctuates near its untrained value. On two clips the student can
    # memorise: this shows each target's gradient path learns, not generalisation.
    # the same exports read out by `geovr eval geometry --model` (heads -> poses, depth, scale)
    from geovr.evaluate.student_readout import readout_metrics

    ro_on = readout_metrics(str(tmp_path / "on" / "export"), str(store), progress=False)["mean"]
    ro_off = readout_metrics(str(tmp_path / "off" / "export"), str(store), progress=False)["mean"]
    print("readout trained:", ro_on, "\nreadout control:", ro_off)
    assert on["camera"] < 0.4 * off["camera"]
    assert on["depth"] < 0.5 * off["depth"]
    assert on["scale"] < 0.05 * off["scale"]
    assert on["distill"] < 0.05 * off["distill"]
    # Readout measured once (trained / control): AbsRel 0.130 / 0.379, delta1 0.87 / 0.39, pose AUC@30
    # 0.22 / 0.003, metric-scale error 0.037 / 0.67; bounds keep ~2x margin on each measured gap.
    assert ro_on["abs_rel"] < 0.7 * ro_off["abs_rel"] and ro_on["delta1"] > ro_off["delta1"] + 0.2
    assert ro_on["auc"] > ro_off["auc"] + 0.1
    assert ro_on["scale_rel_err"] < 0.15 * ro_off["scale_rel_err"]
