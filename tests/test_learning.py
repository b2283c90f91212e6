"""Learning is real: one short run on oracle targets shrinks every geometry term far below the untrained
student's (same initial weights), in the training loss and in the heads' geometric readout."""

import numpy as np
import pytest
import torch
from conftest import LEARN_STEPS

pytestmark = pytest.mark.deepspeed
GEOMETRY = ("camera", "depth", "scale", "distill")


def _untrained(export):
    """The student the run started from: the same tiny trunk and the heads' seeded initialisation."""
    import json

    from geovr.train.student.model import StudentConfig, load_student

    meta = json.loads((export / "geovr_heads" / "heads.json").read_text())
    torch.manual_seed(0)  # run.seed of the recipe: the loop seeds torch before building the student
    return load_student(StudentConfig(**{**meta["student"], "layer_map": meta["layer_map"]}))


def _terms(student, adapter, store, qa):
    from geovr.train.config import DataConfig
    from geovr.train.data import TrainData
    from geovr.train.losses import LossConfig
    from geovr.train.objective import GeoObjective
    from geovr.train.student.collate import prepare_sample

    objective = GeoObjective(student, LossConfig(lm=0.0))  # every geometry term on
    data = TrainData(DataConfig(stores=[str(store)], instructions=[str(qa)], mix_clips_without_qa=True), seed=0)
    terms = {k: [] for k in GEOMETRY}
    with torch.no_grad():
        for pos in range(len(data)):
            out = objective([prepare_sample(adapter, data.sample(pos))])
            for k in GEOMETRY:
                terms[k].append(float(out[k]))
    return {k: float(np.mean(v)) for k, v in terms.items()}


def _trained_vs_untrained(out, store, qa):
    """Loss terms and head readout of a run's export and of its untrained start: ``(on, off, ro_on, ro_off)``."""
    from geovr.evaluate.student_readout import readout_student
    from geovr.train.export import load_exported

    trained, untrained = load_exported(out / "export"), _untrained(out / "export")
    on, off = _terms(*trained, store, qa), _terms(*untrained, store, qa)
    ro_on = readout_student(*trained, str(store), progress=False)["mean"]
    ro_off = readout_student(*untrained, str(store), progress=False)["mean"]
    print(f"after {LEARN_STEPS} steps:", on, "\nuntrained:", off, "\nreadout:", ro_on, "\nuntrained:", ro_off)
    return on, off, ro_on, ro_off


def _assert_learned(on, off, ro_on, ro_off):
    """The learning bounds (trained vs untrained loss terms and head readout); their measurements are below."""
    assert on["camera"] < 0.8 * off["camera"]
    assert on["depth"] < 0.7 * off["depth"]
    assert on["scale"] < 0.4 * off["scale"]
    assert on["distill"] < 0.05 * off["distill"]
    assert ro_on["abs_rel"] < 0.85 * ro_off["abs_rel"] and ro_on["delta1"] > ro_off["delta1"] + 0.15
    assert ro_on["scale_rel_err"] < 0.6 * ro_off["scale_rel_err"]


def test_each_geometry_term_drops_far_below_the_untrained_student(trained_run, oracle_store, env, monkeypatch):
    monkeypatch.setenv("GEOVR_CACHE", env["GEOVR_CACHE"])  # the tiny trunk the run was built from
    out, _ = trained_run
    on, off, ro_on, ro_off = _trained_vs_untrained(out, *oracle_store)
    # Measured (2 clips x 4 frames, tiny Qwen3-VL, CPU, trained / untrained). With the simple depth head and
    # 60 steps, three runs: camera 0.61, 0.50, 0.35; depth 0.37, 0.49, 0.30; scale 0.025, 0.053, 0.020; distill
    # 0.018, 0.021, 0.018; readout AbsRel 0.56, 0.66, 0.50; delta1 +0.38, +0.29, +0.44; scale error 0.26, 0.26, 0.12.
    # With the official (paper) depth head, the paper's losses and warmup from 0, 60 steps were too few for depth
    # (twice: depth 0.56, delta1 +0.08), so the shared run has 100 steps: camera 0.33, depth 0.28, scale 0.0006,
    # distill 0.017, AbsRel 0.45, delta1 +0.44, scale error 0.10. Each bound keeps about half of the smallest
    # measured drop (2x the worst ratio where the ratio is small), yet fails if a term stays near its untrained
    # value (a control trained without the geometry terms stays there: camera 1.25 vs 1.26 untrained, measured
    # over 200 steps). Pose AUC is still 0 after 100 steps, so the pose readout is not asserted here (the camera
    # term is). On two clips the student can memorise: this shows that each target's gradient path learns, not
    # generalisation. The scale term is one scalar per clip and its last-step value is the noisiest: the Qwen3.5
    # run measured 0.019 and 0.030 here but 0.20 on the CI machine (other CPU, other rounding, same seed), so its
    # bound is 0.4, while the scale readout (error 0.05 of untrained there) keeps the tight check.
    _assert_learned(on, off, ro_on, ro_off)


@pytest.mark.slow
def test_qwen35_geometry_terms_drop_far_below_the_untrained_student(oracle_store, env, monkeypatch, tmp_path):
    """The same run and bounds for the tiny Qwen3.5 student (hybrid gated-delta-net / full attention layers on
    the torch fallback kernels; 74 s on an idle 2-core machine: slow). Measured once at 100 steps, trained /
    untrained: camera 0.015, depth 0.25, scale 0.019, distill 0.014 (on the CI machine: camera 0.020, depth 0.25,
    scale 0.20, distill 0.015, scale readout error 0.05); docs/qwen35.md has 200-step numbers."""
    from conftest import train_cli

    monkeypatch.setenv("GEOVR_CACHE", env["GEOVR_CACHE"])
    store, qa = oracle_store
    train_cli(env, store, qa, tmp_path / "run", f"run.max_steps={LEARN_STEPS}", f"run.save_every={LEARN_STEPS}",
              "data.workers=0", "model.model=tiny-qwen35")
    on, off, ro_on, ro_off = _trained_vs_untrained(tmp_path / "run", store, qa)
    _assert_learned(on, off, ro_on, ro_off)
