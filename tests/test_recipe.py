"""The paper recipes' training length, batch, schedule, data mix and token limit (values from the official code)."""

import math
import os

import numpy as np
import pytest
import torch

from geovr.train.config import ConfigError, accumulation, load_config, total_steps
from geovr.train.loader import fit_max_tokens
from geovr.train.loop import build_scheduler, warmup_steps


@pytest.mark.parametrize("recipe", ["paper_qwen3vl_2b", "paper_qwen3vl_4b"])
def test_paper_recipes_are_one_epoch_at_global_batch_32_on_qa_only(recipe):
    cfg = load_config(recipe)
    assert (cfg.run.epochs, cfg.run.max_steps, cfg.optim.global_batch) == (1, 0, 32)
    assert not cfg.data.mix_clips_without_qa and cfg.data.max_tokens == 16384
    assert cfg.data.prompt_strip == ["<image>\n", "These are frames of a video.\n"] and cfg.data.first_exchange
    assert cfg.model.depth_head == "official" and not cfg.loss.camera_quat_canonical
    assert [accumulation(cfg.optim, w) for w in (1, 4, 8, 32)] == [32, 8, 4, 1]  # README: --nproc 8 -> 4
    with pytest.raises(ConfigError, match="not divisible by the world size 3"):
        accumulation(cfg.optim, 3)
    # 590K VSI video rows + 205K VLM-3R rows would give ceil(n / 32) steps; a cap still applies
    assert total_steps(cfg.run, 100, 32) == 4 and total_steps(cfg.run, 96, 32) == 3
    capped = load_config(recipe, ["run.max_steps=2"])
    assert total_steps(capped.run, 100, 32) == 2
    assert total_steps(load_config(recipe, ["run.epochs=2"]).run, 100, 32) == 8


def test_4b_recipe_is_the_2b_script_with_the_4b_model():
    two, four = load_config("paper_qwen3vl_2b"), load_config("paper_qwen3vl_4b")
    assert four.model.model == "Qwen/Qwen3-VL-4B-Instruct" and two.model.model == "Qwen/Qwen3-VL-2B-Instruct"
    for section in ("loss", "optim", "deepspeed", "data"):
        assert getattr(two, section) == getattr(four, section), section
    four.model.model, four.run.out_dir = two.model.model, two.run.out_dir
    assert four.model == two.model and four.run == two.run


def test_old_geometry_only_key_is_refused_with_the_new_name(tmp_path):
    with pytest.raises(ConfigError, match="data.mix_clips_without_qa"):
        load_config("tiny_cpu", ["data.geometry_only=false"])
    path = tmp_path / "old.yaml"
    path.write_text("data: {geometry_only: true}\n")
    with pytest.raises(ConfigError, match="renamed"):
        load_config(str(path))
    with pytest.raises(ConfigError, match="both"):
        accumulation(load_config("paper_qwen3vl_2b", ["optim.grad_accum=2"]).optim, 8)


def test_cli_refuses_a_world_size_that_does_not_divide_the_global_batch_before_launching():
    from typer.testing import CliRunner

    from geovr.cli import app

    res = CliRunner().invoke(app, ["train", "--config", "paper_qwen3vl_2b", "--nproc", "3"])
    assert res.exit_code == 2 and "error: optim.global_batch=32 is not divisible" in res.output


def test_warmup_starts_from_zero_then_cosine_as_transformers():
    total, ratio, lr = 100, 0.03, 2e-5
    warm = warmup_steps(total, ratio)
    assert warm == 3
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = build_scheduler(opt, total, ratio)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])  # the learning rate the next update uses
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.0, lr / 3, 2 * lr / 3, lr])
    k = 50
    assert lrs[k] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * (k - warm) / (total - warm))))
    assert lrs[-1] < lr * 1e-3


VE = 9  # a protected id (the video block's last token)


def _prepared(n: int, video_end: int) -> dict:
    ids = torch.arange(100, 100 + n)[None]
    ids[0, video_end] = VE
    return {"inputs": {"input_ids": ids, "attention_mask": torch.ones(1, n, dtype=torch.long),
                       "mm_token_type_ids": torch.zeros(1, n, dtype=torch.long),
                       "position_ids": torch.arange(n).expand(3, 1, n), "pixel_values_videos": torch.zeros(4, n),
                       "video_grid_thw": torch.tensor([[2, 2, 2]])},
            "labels": torch.arange(n)[None], "targets": {}}


def test_fit_max_tokens_cuts_only_text_after_the_video():
    p = _prepared(12, video_end=5)
    same, cut = fit_max_tokens(p, 12, {VE})
    assert same is p and not cut
    out, cut = fit_max_tokens(p, 8, {VE})
    assert cut and out["inputs"]["input_ids"].shape == (1, 8) and out["labels"].tolist() == [list(range(8))]
    assert out["inputs"]["position_ids"].shape == (3, 1, 8) and out["inputs"]["attention_mask"].shape == (1, 8)
    assert out["inputs"]["pixel_values_videos"].shape == (4, 12)  # pixels are never cut
    assert torch.equal(out["inputs"]["video_grid_thw"], p["inputs"]["video_grid_thw"])
    assert fit_max_tokens(p, 6, {VE})[0] is not None and fit_max_tokens(p, 5, {VE}) == (None, False)


@pytest.fixture(scope="module")
def tiny_adapter(tmp_path_factory):
    from transformers import AutoConfig, AutoProcessor

    from geovr.train.student.adapters import adapter_for
    from geovr.train.student.tiny import build_tiny_student_dir

    root = os.environ.get("GEOVR_TEST_CACHE") or str(tmp_path_factory.mktemp("tiny"))
    path = build_tiny_student_dir(f"{root}/tiny-qwen3vl", "qwen3_vl")
    return adapter_for(AutoProcessor.from_pretrained(path), AutoConfig.from_pretrained(path))


def test_data_mix_and_token_limit_on_a_store(oracle_store, tiny_adapter, monkeypatch):
    from geovr.train.config import DataConfig
    from geovr.train.data import TrainData
    from geovr.train.loader import PreparedSamples
    from geovr.train.student.collate import prepare_sample

    store, qa = oracle_store
    qa_only = TrainData(DataConfig(stores=[str(store)], instructions=[str(qa)]), seed=0)
    mixed = TrainData(DataConfig(stores=[str(store)], instructions=[str(qa)], mix_clips_without_qa=True), seed=0)
    assert [m is not None for _, m in qa_only.items] == [True]
    assert sorted(c for c, _ in mixed.items) == ["synth_0000", "synth_0001"]

    full = prepare_sample(tiny_adapter, qa_only.sample(0))
    n = full["inputs"]["input_ids"].shape[1]
    ids = full["inputs"]["input_ids"][0].numpy()
    video_end = int(np.nonzero(ids == tiny_adapter.processor.vision_end_token_id)[0].max()) + 1
    assert video_end < n - 2  # the question and answer follow the video
    cfg = DataConfig(stores=[str(store)], instructions=[str(qa)], max_tokens=video_end + 1, workers=0)
    s = PreparedSamples(cfg, 0, tiny_adapter, "duplicate", 0, 1, 0, 1, 1, qa_only)[0]
    assert s["data_meta"] == {"skipped": 0, "truncated": 1} and s["inputs"]["input_ids"].shape[1] == video_end + 1
    assert torch.equal(s["inputs"]["input_ids"][0], full["inputs"]["input_ids"][0, : video_end + 1])
    cfg.max_tokens = video_end - 1  # the video block alone does not fit: every replacement fails too
    monkeypatch.setattr("geovr.train.loader.MAX_REPLACEMENTS", 3)
    with pytest.raises(RuntimeError, match="data.max_tokens"):
        PreparedSamples(cfg, 0, tiny_adapter, "duplicate", 0, 1, 0, 1, 1, qa_only)[0]
