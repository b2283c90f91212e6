"""Student family adapters on tiny models of each family: token positions, label masks, layer map, frozen names."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

from geovr.train.losses import LossConfig
from geovr.train.objective import TERMS, GeoObjective
from geovr.train.student.adapters import ADAPTERS, IGNORE, adapter_for
from geovr.train.student.collate import StudentSample, prepare_sample
from geovr.train.student.model import GeoStudent, StudentConfig
from geovr.train.student.tiny import TINY_MODELS, build_tiny_student_dir

FAMILIES = {family: name for name, family in TINY_MODELS.items()}
QA = [{"role": "user", "content": "How many chairs are in this room?"},
      {"role": "assistant", "content": "There are 2 chairs."}]


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def tiny(request, tmp_path_factory):
    """``(adapter, hf_model)`` of a tiny random student of each family (built once per module)."""
    root = os.environ.get("GEOVR_TEST_CACHE") or str(tmp_path_factory.mktemp("tiny"))
    path = build_tiny_student_dir(Path(root) / FAMILIES[request.param], request.param)
    adapter = adapter_for(AutoProcessor.from_pretrained(path), AutoConfig.from_pretrained(path))
    torch.manual_seed(0)
    hf = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa").eval()
    return adapter, hf


def _sample(frames=4, hw=(64, 96), messages=QA, presized=False, targets=None):
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (*hw, 3), dtype=np.uint8) for _ in range(frames)]
    return StudentSample(frames=imgs, fps=2.0, messages=messages, presized=presized, targets=targets or {})


def test_registry_picks_the_adapter_by_model_type(tiny):
    adapter, hf = tiny
    assert type(adapter) is ADAPTERS[hf.config.model_type] and adapter.model_type == hf.config.model_type
    cfg = AutoConfig.from_pretrained(hf.config.name_or_path)
    cfg.model_type = "no_such_family"
    with pytest.raises(ValueError, match="no_such_family.*known: qwen2_5_vl, qwen3_5, qwen3_vl"):
        adapter_for(adapter.processor, cfg)


def test_no_family_names_in_the_family_independent_modules():
    root = Path(__file__).parents[1] / "train" / "student"
    for name in ("model.py", "collate.py"):
        text = (root / name).read_text()
        assert not re.search(r"qwen|_VL|Qwen", text, re.IGNORECASE), name


@pytest.mark.parametrize("train", [True, False])
def test_labels_are_exactly_the_answer_its_end_of_turn_and_newline(tiny, train):
    adapter, _ = tiny
    s = prepare_sample(adapter, _sample(), train=train)
    ids, labels = s["inputs"]["input_ids"][0], s["labels"][0]
    tok = adapter.processor.tokenizer
    want = tok("There are 2 chairs.<|im_end|>\n", add_special_tokens=False)["input_ids"]  # GeoVR's mask
    sup = (labels != IGNORE).nonzero().squeeze(-1)
    assert labels[sup].tolist() == want == ids[sup].tolist()
    assert (sup.diff() == 1).all()  # one contiguous span
    assert tok.decode(ids[: sup[0]]).endswith("<|im_start|>assistant\n")  # right after the generation prompt
    geo = prepare_sample(adapter, _sample(messages=None), train=train)  # no answer: no LM loss
    assert (geo["labels"] == IGNORE).all()


def test_placeholders_follow_each_group_and_keep_every_other_position(tiny):
    adapter, hf = tiny
    tr = prepare_sample(adapter, _sample(), train=True)["inputs"]
    inf = prepare_sample(adapter, _sample(), train=False)["inputs"]
    ids = tr["input_ids"][0]
    cam, sc = ids == adapter.camera_id, ids == adapter.scale_id
    t = int(tr["video_grid_thw"][0, 0])
    assert int(cam.sum()) == t == 4 and int(sc.sum()) == 1
    ph = cam | sc
    assert torch.equal(ids[~ph], inf["input_ids"][0])  # placeholders are the only difference
    pos = adapter.position_ids(hf, tr)
    ref, _ = hf.model.get_rope_index(**{k: v for k, v in inf.items() if k != "pixel_values_videos"})  # HF's own
    assert torch.equal(pos[:, :, ~ph], ref)  # every token, the text after the video included, keeps its position
    after = int(ph.nonzero().max()) + 1
    assert torch.equal(pos[:, 0, after:], ref[:, 0, after - int(ph.sum()):])
    # camera g takes group g's last patch position; the scale token the last frame's last patch
    vid = (ids == adapter.video_id).nonzero().squeeze(-1)
    per = len(vid) // t
    last_patch = vid[per - 1 :: per]
    cam_idx = cam.nonzero().squeeze(-1)
    assert torch.equal(cam_idx, last_patch + 1)  # each right after its group's last patch
    assert torch.equal(pos[:, 0, cam_idx], pos[:, 0, last_patch])
    assert torch.equal(pos[:, 0, sc.nonzero().squeeze(-1)], pos[:, 0, last_patch[-1:]])
    assert len(set(pos[0, 0, last_patch].tolist())) == t  # distinct temporal positions per group


@pytest.mark.parametrize("layers, want", [(28, [6, 14, 21, 28]), (36, [8, 18, 27, 36])])
def test_layer_map_of_the_paper(tiny, layers, want):
    adapter, hf = tiny
    cfg = AutoConfig.from_pretrained(hf.config.name_or_path)
    cfg.get_text_config().num_hidden_layers = layers
    big = type(adapter)(adapter.processor, cfg)
    assert big.layer_map([4, 11, 17, 23], 24) == want
    assert big.layer_map([1, 3], 4) == [layers // 2, layers]
    with pytest.raises(ValueError, match="not all in"):
        big.layer_map([24], 24)


def test_frozen_vision_tower_except_its_merger_and_token_init(tiny):
    adapter, hf = tiny
    student = GeoStudent(hf, adapter, StudentConfig(teacher_feature_dim=8))
    vision = dict(adapter.vision_module(hf).named_parameters())
    trainable = sorted(n for n, p in vision.items() if p.requires_grad)
    assert trainable and all(n.startswith("merger.") for n in trainable)
    assert trainable == sorted(n for n in vision if n.startswith("merger."))
    assert not any(p.requires_grad for n, p in vision.items() if "deepstack" in n)
    frozen = [n for n, p in vision.items() if not p.requires_grad]
    assert any(n.startswith("blocks.") for n in frozen) and any(n.startswith("patch_embed.") for n in frozen)
    if hf.config.model_type == "qwen3_vl":
        assert any(n.startswith("deepstack_merger_list.") for n in frozen)
    assert all(p.requires_grad for p in hf.model.language_model.parameters())
    w = torch.cat([student.camera_embed.weight.flatten(), student.scale_embed.weight.flatten()])
    assert 0.8 < float(w.detach().std()) < 1.2  # N(0, 1), not 0.02
    small = GeoStudent(hf, adapter, StudentConfig(teacher_feature_dim=8, freeze_vision=False, token_init_std=0.02))
    assert 0.015 < float(small.camera_embed.weight.detach().std()) < 0.025
    assert all(p.requires_grad for p in adapter.vision_module(hf).parameters())


def test_presized_frames_are_not_resized(tiny):
    adapter, _ = tiny
    m = adapter.merged_patch
    assert m == adapter.patch_size * adapter.merge_size
    hw = (18 * m, 24 * m)  # over the tiny processor's pixel budget: it would shrink them
    resized = prepare_sample(adapter, _sample(hw=hw), train=False)["inputs"]["video_grid_thw"][0]
    kept = prepare_sample(adapter, _sample(hw=hw, presized=True), train=False)["inputs"]["video_grid_thw"][0]
    assert kept[1:].tolist() == [18 * adapter.merge_size, 24 * adapter.merge_size] != resized[1:].tolist()
    with pytest.raises(ValueError, match="multiples of the student's merged patch"):
        prepare_sample(adapter, _sample(hw=(m + 2, 2 * m), presized=True))


def test_objective_returns_every_term_and_builds_the_unused_list_once(tiny):
    adapter, hf = tiny
    S, layers = 4, [4, 11, 17, 23]
    targets = {"pose_enc": np.random.default_rng(1).normal(size=(S, 9)).astype(np.float32),
               "depth": np.ones((S, 8, 12), np.float32), "depth_conf": np.ones((S, 8, 12), np.float32),
               "metric_scale": np.float32(2.0), "features": {layer: np.ones((S, 2, 3, 8), np.float32) for layer in layers}}
    student = GeoStudent(hf, adapter, StudentConfig(teacher_feature_dim=8, teacher_layers=layers, camera_hidden=16,
                                                    scale_hidden=16, distill_hidden=16))
    objective = GeoObjective(student, LossConfig())
    sample = prepare_sample(adapter, _sample(targets=targets))
    terms = objective([sample])
    assert tuple(terms) == TERMS and all(torch.isfinite(v) for v in terms.values())
    assert all(float(terms[k].detach()) > 0 for k in ("lm", "camera", "depth", "scale", "distill"))
    terms["loss"].backward()
    assert student.camera_embed.weight.grad.abs().sum() > 0 and student.scale_embed.weight.grad.abs().sum() > 0
    unused = objective.maybe_unused()
    def walked(*args, **kwargs):
        raise AssertionError("named_parameters walked per micro-batch")

    student.named_parameters = walked  # a second micro-batch must not walk the parameters again
    geo_only = objective([prepare_sample(adapter, _sample(messages=None))])  # no targets, no answer
    assert objective.maybe_unused() is unused
    assert all(float(geo_only[k]) == 0 for k in TERMS)
    del student.named_parameters
    pred = student.predict(sample, (8, 12))
    assert pred["pose_enc"].shape == (S, 9) and pred["depth"].shape == (S, 8, 12) and pred["metric_scale"].ndim == 0


def test_lm_term_projects_only_supervised_positions_and_equals_the_full_logits_loss(tiny):
    """The LM head runs on the K positions whose next token is supervised (not all L): the same loss as the
    full-logits cross entropy with ignored labels, at a fraction of the memory."""
    import torch.nn.functional as F

    adapter, hf = tiny
    student = GeoStudent(hf, adapter, StudentConfig(camera_hidden=16, scale_hidden=16, distill_hidden=16))
    sample = prepare_sample(adapter, _sample())
    labels = sample["labels"][0]
    with torch.no_grad():
        pred = student([sample], heads=())[0]
        terms = GeoObjective(student, LossConfig())([sample])
        inputs = {**sample["inputs"], "position_ids": adapter.position_ids(hf, sample["inputs"])}
        full = hf(**inputs, use_cache=False).logits[0]
    k = int((labels[1:] != IGNORE).sum())
    assert 0 < k < labels.numel() // 2 and pred["logits"].shape == (k, full.shape[-1])
    expected = F.cross_entropy(full[:-1].float(), labels[1:], ignore_index=IGNORE)
    torch.testing.assert_close(terms["lm"], expected, rtol=1e-5, atol=1e-6)
