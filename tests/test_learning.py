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

    from geovr.train.losses import LossConfig
    from geovr.train.student.model import StudentConfig, load_student

    meta = json.loads((export / "geovr_heads" / "heads.json").read_text())
    torch.manual_seed(0)  # run.seed of the recipe: the loop seeds torch before building the student
    return load_student(StudentConfig(**{**meta["student"], "layer_map": meta["layer_map"]}), LossConfig())


def _terms(student, processor, store, qa):
    from geovr.train.config import DataConfig
    from geovr.train.data import TrainData
    from geovr.train.losses import LossConfig
    from geovr.train.student.collate import prepare_sample

    student.loss_cfg = LossConfig(lm=0.0)  # every geometry term on
    data = TrainData(DataConfig(stores=[str(store)], instructions=[str(qa)]), seed=0)
    terms = {k: [] for k in GEOMETRY}
    with torch.no_grad():
        for pos in range(len(data)):
            out = student([prepare_sample(processor, data.sample(pos))])
            for k in GEOMETRY:
                terms[k].append(float(out[k]))
    return {k: float(np.mean(v)) for k, v in terms.items()}


def test_each_geometry_term_drops_far_below_the_untrained_student(trained_run, oracle_store, env, monkeypatch):
    from geovr.evaluate.student_readout import readout_student
    from geovr.train.export import load_exported

    monkeypatch.setenv("GEOVR_CACHE", env["GEOVR_CACHE"])  # the tiny trunk the run was built from
    out, _ = trained_run
    store, qa = oracle_store
    trained, untrained = load_exported(out / "export"), _untrained(out / "export")
    on, off = _terms(*trained, store, qa), _terms(*untrained, store, qa)
    ro_on = readout_student(*trained, str(store), progress=False)["mean"]
    ro_off = readout_student(*untrained, str(store), progress=False)["mean"]
    print(f"after {LEARN_STEPS} steps:", on, "\nuntrained:", off, "\nreadout:", ro_on, "\nuntrained:", ro_off)
    # Measured (2 clips x 4 frames, 60 steps, tiny Qwen3-VL, CPU; see the report of this change), trained /
    # untrained: the bounds keep ~2x margin over the worst measured ratio, yet fail if a term merely fluctuates
    # near its untrained value. On two clips the student can memorise: this shows that each target's gradient
    # path learns, not generalisation.
    assert on["camera"] < 0.6 * off["camera"]
    assert on["depth"] < 0.6 * off["depth"]
    assert on["scale"] < 0.2 * off["scale"]
    assert on["distill"] < 0.1 * off["distill"]
    assert ro_on["abs_rel"] < 0.8 * ro_off["abs_rel"] and ro_on["delta1"] > ro_off["delta1"] + 0.1
    assert ro_on["scale_rel_err"] < 0.5 * ro_off["scale_rel_err"]
