"""Protocol presets recorded in the report, and `--predictions` on lmms-eval's sample log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from vsi_cases import random_rows

from geovr.cli import app
from geovr.evaluate.prompts import build_prompt
from geovr.evaluate.protocols import PRESETS, resolve

GOLDEN = json.loads((Path(__file__).parent / "data" / "vsi_golden.json").read_text())
LMMS_KEYS = ["vsibench_overall", "obj_appearance_order_accuracy", "object_abs_distance_mra", "object_counting_mra",
             "object_rel_distance_accuracy", "object_size_estimation_mra", "room_size_estimation_mra",
             "route_planning_accuracy", "object_rel_direction_accuracy"]


def test_geovr_paper_preset_is_the_papers_eval():
    p = PRESETS["geovr-paper"]
    assert (p.num_frames, p.do_sample, p.temperature, p.top_p, p.top_k, p.seed) == (128, True, 0.7, 0.8, 20, 42)
    assert p.generate_kwargs() == {"max_new_tokens": 32768, "do_sample": True, "temperature": 0.7, "top_p": 0.8,
                                   "top_k": 20, "repetition_penalty": 1.0}
    assert p.video_size() == {"longest_edge": 384 * 128 * 1024, "shortest_edge": 4 * 128 * 1024}
    greedy = PRESETS["lmms-eval"].generate_kwargs()
    assert greedy == {"max_new_tokens": 16, "do_sample": False}
    q = resolve("geovr-paper", num_frames=64, seed=7)
    assert q.overrides == ("num_frames", "seed") and q.video_size()["longest_edge"] == 384 * 64 * 1024
    assert resolve("official", num_frames=32).overrides == ()
    with pytest.raises(ValueError, match="protocol"):
        resolve("vlmevalkit")


CODE_GOLDEN = json.loads((Path(__file__).parent / "data" / "geovr_code_golden.json").read_text())


@pytest.mark.parametrize("case", sorted(CODE_GOLDEN["eval_frame_indices"]))
def test_paper_preset_picks_the_frames_the_papers_processor_picks(case):
    total, k = (int(x) for x in case.split("_"))
    want = CODE_GOLDEN["eval_frame_indices"][case]  # the reference's sample_frames(num_frames=k, fps=None)
    assert resolve("geovr-paper", num_frames=k).frame_indices(total).tolist() == want
    floor = resolve("official", num_frames=k).frame_indices(total).tolist()  # VSI-Bench's own: truncation
    assert floor == np.linspace(0, total - 1, k).astype(int).tolist()


def test_rounding_differs_from_truncation_on_the_golden_cases():
    diff = [c for c in CODE_GOLDEN["eval_frame_indices"] if resolve("official", num_frames=int(c.split("_")[1]))
            .frame_indices(int(c.split("_")[0])).tolist() != CODE_GOLDEN["eval_frame_indices"][c]]
    assert len(diff) >= 4  # the two rules pick different frames on most clips


@pytest.mark.parametrize("case", sorted(CODE_GOLDEN["eval_resize"]))
def test_paper_preset_resizes_frames_like_the_papers_transformers(case, tiny_qwen3_processor):
    import copy
    from types import SimpleNamespace

    from geovr.evaluate.vsibench import configure_processor

    frames, h, w = (int(x) for x in case.split("_"))
    vp = copy.deepcopy(tiny_qwen3_processor.video_processor)
    if hasattr(vp, "cap_pixels_per_frame"):  # the per-frame cap transformers announces as its future default
        vp.cap_pixels_per_frame = True
    configure_processor(SimpleNamespace(video_processor=vp), resolve("geovr-paper", num_frames=frames))
    want_h, want_w = CODE_GOLDEN["eval_resize"][case]  # the paper's smart_resize at eval_vsi.py's size
    patches = vp.get_num_of_video_patches(frames, h, w)
    assert patches == frames * (want_h // 16) * (want_w // 16) // 2  # 2-frame temporal patches
    assert want_h * want_w <= 384 * 32 * 32


def test_paper_prompts():
    mca = {"question": "Which is closer?", "options": ["A. chair", "B. table"]}
    assert build_prompt(mca, "geovr-paper") == ("Which is closer?\nA. chair\nB. table\n"
                                                "Answer with ONLY the option's letter directly.")
    na = {"question": "How many chairs?", "options": None}
    assert build_prompt(na, "geovr-paper") == "How many chairs?\nPlease answer the question ONLY using a single Arabic numeral."
    assert build_prompt(na).startswith("These are frames of a video.\nHow many chairs?")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("vsi")
    rows = random_rows()
    with open(root / "test.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps({k: v for k, v in r.items() if k != "prediction"}) + "\n")
    return root, rows


def _lmms_log(path: Path, rows: list[dict], style: str) -> Path:
    """A sample log as lmms-eval writes it (EvaluationTracker.save_results_samples)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for i, r in enumerate(rows):
            doc = {k: v for k, v in r.items() if k != "prediction"}
            scored = {**doc, "prediction": r["prediction"]}
            rec = {"doc_id": i, "target": r["ground_truth"], "doc_hash": f"{i:064x}", "input": "prompt"}
            if style == "new":  # 2026: one key per metric, flattened filtered_resps
                rec.update({"filtered_resps": r["prediction"], "token_counts": [None]})
                rec.update({k: scored for k in LMMS_KEYS})
            elif style == "old":  # vsibench_score, list-valued responses
                rec.update({"resps": [[r["prediction"]]], "filtered_resps": [r["prediction"]], "vsibench_score": scored})
            else:  # no scored document: matched by doc_id
                rec["filtered_resps"] = r["prediction"]
            f.write(json.dumps(rec) + "\n")
    return path


@pytest.mark.parametrize("style", ["new", "old", "bare"])
def test_lmms_eval_sample_log_gives_lmms_eval_aggregate(bench, tmp_path, style):
    root, rows = bench
    log = _lmms_log(tmp_path / "logs" / "model__x" / "20260101_samples_vsibench.jsonl", rows, style)
    out = tmp_path / "out"
    where = log if style != "bare" else tmp_path / "logs"  # a folder holding the log works too
    res = CliRunner().invoke(app, ["eval", "vsibench", "--bench", str(root), "--predictions", str(where),
                                   "--protocol", "lmms-eval", "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["predictions_format"] == "lmms-eval sample log"
    assert report["lmms_eval_metrics"] == GOLDEN["random_rows"]["lmms_eval"]
    assert list(report["lmms_eval_metrics"]) == LMMS_KEYS
    assert report["scores"]["scoring"] == "lmms-eval"
    assert report["scores"]["overall"] == pytest.approx(100 * GOLDEN["random_rows"]["lmms_eval"]["vsibench_overall"],
                                                        abs=1e-4)
    for k in LMMS_KEYS:
        assert k in res.output
    proto = report["protocol"]
    assert proto["name"] == "lmms-eval" and proto["num_frames"] == 32 and proto["generate_kwargs"]["do_sample"] is False


def test_default_protocol_scores_officially_and_records_every_setting(bench, tmp_path):
    root, rows = bench
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "prediction": r["prediction"]}) + "\n" for r in rows))
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["eval", "vsibench", "--bench", str(root), "--predictions", str(preds),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["scores"]["overall"] == pytest.approx(GOLDEN["random_rows"]["official"]["overall"], abs=1e-9)
    assert report["protocol"]["name"] == "official" and report["predictions_format"] == "geovr jsonl"
    res = CliRunner().invoke(app, ["eval", "vsibench", "--bench", str(root), "--predictions", str(preds),
                                   "--protocol", "geovr-paper", "--seed", "5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    proto = json.loads((out / "report.json").read_text())["protocol"]
    assert proto["seed"] == 5 and proto["overrides"] == ["seed"] and proto["scoring"] == "geovr-paper"
    assert proto["temperature"] == 0.7 and proto["top_k"] == 20 and proto["num_frames"] == 128
    bad = CliRunner().invoke(app, ["eval", "vsibench", "--bench", str(root), "--predictions", str(preds),
                                   "--protocol", "vlmevalkit"])
    assert bad.exit_code == 2 and "protocol" in bad.output


def test_lmms_eval_log_from_another_benchmark_version_is_refused(bench, tmp_path):
    root, rows = bench
    changed = [dict(r) for r in rows]
    changed[3]["ground_truth"] = "Z"
    log = _lmms_log(tmp_path / "x_samples_vsibench.jsonl", changed, "new")
    res = CliRunner().invoke(app, ["eval", "vsibench", "--bench", str(root), "--predictions", str(log),
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "differs from the annotations" in str(res.exception)


class _Batch(dict):
    def to(self, _device):
        return self


class _FakeProcessor:
    """Stands in for a Qwen-VL processor: records the prompts, tokenizes to one id per question."""

    def __init__(self):
        self.tokenizer = type("T", (), {"padding_side": "right"})()
        self.video_processor = type("V", (), {"size": None})()
        self.prompts = []

    def apply_chat_template(self, messages, tokenize, add_generation_prompt, **template_kwargs):
        self.template_kwargs = template_kwargs
        return messages[0]["content"][1]["text"]

    def __call__(self, text, videos, video_metadata, do_sample_frames, padding, return_tensors):
        import torch

        self.prompts += text
        self.frames = [len(v) for v in videos]
        return _Batch(input_ids=torch.zeros((len(text), 1), dtype=torch.long))

    def batch_decode(self, ids, skip_special_tokens):
        return [" ".join(str(int(t)) for t in row) for row in ids]


class _FakeModel:
    """Draws its answer tokens from torch's global RNG, as sampled decoding does."""

    calls: list = []
    device = "cpu"

    def to(self, _device):
        return self

    def eval(self):
        return self

    def generate(self, input_ids, **kw):
        import torch

        _FakeModel.calls.append(kw)
        return torch.cat([input_ids, torch.randint(0, 10_000, (len(input_ids), 3))], 1)


@pytest.fixture
def fake_model(monkeypatch):
    import numpy as np
    import transformers

    import geovr.evaluate.vsibench as vb

    proc = _FakeProcessor()
    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", lambda *a, **k: _FakeModel())
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", lambda *a, **k: proc)
    monkeypatch.setattr(vb, "sample_video", lambda path, proto: (np.zeros((proto.num_frames, 2, 2, 3), np.uint8),
                                                                 np.arange(proto.num_frames), 30.0))
    _FakeModel.calls = []
    return proc


def test_protocol_drives_generation_and_seed_makes_sampling_repeatable(bench, tmp_path, fake_model):
    from geovr.evaluate.vsibench import VSIBenchConfig, predict

    root, rows = bench
    rows = rows[:5]

    def answers(name, **kw):
        cfg = VSIBenchConfig(bench_dir=str(root), model="fake", out_dir=str(tmp_path), batch_size=2, **kw)
        path = tmp_path / f"{name}.jsonl"
        predict(cfg, rows, path)
        return [json.loads(line)["prediction"] for line in path.read_text().splitlines()]

    a = answers("a", protocol="geovr-paper", seed=3)
    kw = _FakeModel.calls[-1]
    assert kw == {"max_new_tokens": 32768, "do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20,
                  "repetition_penalty": 1.0}
    assert fake_model.frames == [128] and fake_model.video_processor.size["longest_edge"] == 384 * 128 * 1024
    assert fake_model.prompts[0].endswith("Please answer the question ONLY using a single Arabic numeral.")
    assert fake_model.template_kwargs == {"enable_thinking": False}  # eval_vsi.py's apply_chat_template call
    assert answers("b", protocol="geovr-paper", seed=3) == a
    assert answers("c", protocol="geovr-paper", seed=4) != a
    answers("d", protocol="official", num_frames=8)
    assert _FakeModel.calls[-1] == {"max_new_tokens": 16, "do_sample": False} and fake_model.frames[-1] == 8
    assert fake_model.prompts[-1].startswith("These are frames of a video.")
    assert fake_model.template_kwargs == {}  # the template's own default


@pytest.mark.parametrize("hw", [(480, 640), (1440, 1920)])
def test_paper_preset_keeps_a_per_frame_processor_within_the_per_frame_budget(hw):
    """Qwen2.5-VL's video processor reads ``size`` per frame (Qwen3-VL's: per clip), so the preset's per-frame
    budget must not be multiplied by the frame count there: no frame is upscaled past its own size or kept
    above 384 * 32 * 32 pixels."""
    from types import SimpleNamespace

    from transformers import Qwen2VLVideoProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import smart_resize

    from geovr.evaluate.vsibench import configure_processor

    vp = Qwen2VLVideoProcessor(size={"shortest_edge": 28 * 28, "longest_edge": 256 * 28 * 28}, patch_size=14,
                               merge_size=2, temporal_patch_size=2)
    configure_processor(SimpleNamespace(video_processor=vp), resolve("geovr-paper"))  # 128 frames
    h, w = smart_resize(*hw, factor=28, min_pixels=vp.size["shortest_edge"], max_pixels=vp.size["longest_edge"])
    assert h * w <= 384 * 32 * 32
    assert h * w <= max(hw[0] * hw[1], 4 * 32 * 32) * 1.1  # not upscaled (beyond the factor-28 rounding)
