"""The student wrapper outside DeepSpeed: gradient checkpointing recomputes and changes nothing."""

import os

import pytest
import torch

from geovr.train.config import DataConfig
from geovr.train.data import TrainData
from geovr.train.losses import LossConfig
from geovr.train.objective import GeoObjective
from geovr.train.student.collate import prepare_sample
from geovr.train.student.model import StudentConfig, load_student, resolve_model_path


def _loss_and_grads(store, qa, cache, checkpointing):
    data = TrainData(DataConfig(stores=[str(store)], instructions=[str(qa)]), seed=0)
    cfg = StudentConfig(model="tiny-qwen3vl", tiny_cache=cache, gradient_checkpointing=checkpointing,
                        teacher_feature_dim=data.teacher_dim, teacher_layers=data.teacher_layers)
    resolve_model_path(cfg)  # build the tiny folder (if needed) before seeding: building draws random numbers
    torch.manual_seed(0)  # same head initialisation in both runs
    student, adapter = load_student(cfg)
    objective = GeoObjective(student, LossConfig())
    student.train()
    calls = []
    mlp = student.hf_model.model.language_model.layers[1].mlp  # counts calls of a module inside the layer
    inner = mlp.forward

    def counting(*args, **kwargs):
        calls.append(1)
        return inner(*args, **kwargs)

    mlp.forward = counting  # (module hooks are not replayed by the recompute, so wrap forward itself)
    sample = prepare_sample(adapter, data.sample(0))
    loss = objective([sample])["loss"]
    forward_calls = len(calls)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in student.named_parameters() if p.grad is not None}
    return float(loss.detach()), grads, forward_calls, len(calls) - forward_calls


@pytest.mark.deepspeed
def test_gradient_checkpointing_recomputes_layers_and_gives_the_same_gradients(oracle_store, tmp_path_factory):
    store, qa = oracle_store
    cache = os.environ.get("GEOVR_TEST_CACHE") or str(tmp_path_factory.mktemp("tiny"))
    loss0, g0, fwd0, bwd0 = _loss_and_grads(store, qa, cache, False)
    loss1, g1, fwd1, bwd1 = _loss_and_grads(store, qa, cache, True)
    assert (fwd0, bwd0) == (1, 0) and (fwd1, bwd1) == (1, 1)  # the layer runs again inside backward
    assert loss1 == pytest.approx(loss0, rel=1e-6)
    assert g0.keys() == g1.keys() and len(g0) > 10
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-4, atol=1e-6, msg=name)


def test_head_widths_follow_the_config_and_the_paper_recipe(tmp_path_factory):
    from geovr.train.config import load_config

    cache = os.environ.get("GEOVR_TEST_CACHE") or str(tmp_path_factory.mktemp("tiny"))
    cfg = StudentConfig(model="tiny-qwen3vl", tiny_cache=cache, camera_hidden=24, scale_hidden=12,
                        teacher_feature_dim=40, teacher_layers=[1, 2])
    student, _ = load_student(cfg)
    assert student.camera_head.trunk[1].out_features == 24 and student.scale_head.net[1].out_features == 12
    assert [h.net[1].out_features for h in student.distill_heads] == [40, 40]  # None = teacher width
    assert [h.net[3].out_features for h in student.distill_heads] == [40, 40]
    paper = load_config("paper_qwen3vl_2b").model
    assert (paper.camera_hidden, paper.scale_hidden, paper.distill_hidden) == (1536, 512, None)
