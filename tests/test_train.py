"""Stage two under DeepSpeed on CPU: ZeRO-2 (1 and 2 processes), ZeRO-3, exact resume, export."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.deepspeed
TERMS = ("lm", "camera", "depth", "scale", "distill")


def _train(env, store, qa, out, *overrides, nproc=1):
    cmd = [sys.executable, "-m", "geovr", "train", "--config", "tiny_cpu", f"data.stores=[{store}]",
           f"data.instructions=[{qa}]", f"run.out_dir={out}", *overrides]
    if nproc > 1:
        cmd += ["--nproc", str(nproc), "--master-port", str(29600 + os.getpid() % 300)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _generates_with_plain_transformers(env, export, cwd):
    """The export loads with AutoModelForImageTextToText / AutoProcessor alone (no geovr) and generates."""
    script = (
        "import numpy as np, torch\n"
        "from transformers import AutoModelForImageTextToText, AutoProcessor\n"
        f"p = {str(export)!r}\n"
        "m = AutoModelForImageTextToText.from_pretrained(p).eval(); proc = AutoProcessor.from_pretrained(p)\n"
        "msgs = [{'role': 'user', 'content': [{'type': 'video'}, {'type': 'text', 'text': 'How many chairs?'}]}]\n"
        "text = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)\n"
        "video = (np.random.default_rng(0).random((4, 56, 84, 3)) * 255).astype(np.uint8)\n"
        "inp = proc(text=[text], videos=[video], do_sample_frames=False, return_tensors='pt')\n"
        "out = m.generate(**inp, max_new_tokens=5, do_sample=False)\n"
        "assert out.shape[1] > inp['input_ids'].shape[1]\n"
        "import sys; assert not any(k.startswith('geovr') for k in sys.modules)\n"
        "print('GENERATED', repr(proc.batch_decode(out[:, inp['input_ids'].shape[1]:])[0]))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                         cwd=cwd)
    assert res.returncode == 0 and "GENERATED" in res.stdout, res.stderr[-2000:]


def test_zero2_one_process_logs_every_term_and_exports_a_plain_hf_model(env, oracle_store, tmp_path):
    store, qa = oracle_store
    metrics = _train(env, store, qa, tmp_path / "run", "run.max_steps=3", "run.save_every=3")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for m in metrics:
        assert all(math.isfinite(m[t]) for t in (*TERMS, "loss"))
    assert any(m["lm"] > 0 for m in metrics) and all(m["distill"] > 0 for m in metrics)
    assert (tmp_path / "run" / "config.yaml").is_file() and (tmp_path / "run" / "checkpoints" / "step3").is_dir()
    _generates_with_plain_transformers(env, tmp_path / "run" / "export", tmp_path)


def test_resume_continues_exactly(env, oracle_store, tmp_path):
    store, qa = oracle_store
    # samples are a pure function of the position: in-process (0 workers) and 2 DataLoader workers agree
    full = _train(env, store, qa, tmp_path / "a", "run.max_steps=4", "run.save_every=100", "data.workers=0")
    _train(env, store, qa, tmp_path / "b", "run.max_steps=4", "run.stop_at=2", "run.export=false", "data.workers=2")
    resumed = _train(env, store, qa, tmp_path / "b", "run.max_steps=4", "run.resume=true", "run.export=false",
                     "data.workers=2")
    assert [m["step"] for m in resumed] == [1, 2, 3, 4]
    for k in ("loss", *TERMS):
        assert resumed[2][k] == pytest.approx(full[2][k], rel=1e-6, abs=1e-7), k
        assert resumed[3][k] == pytest.approx(full[3][k], rel=1e-5, abs=1e-6), k


@pytest.mark.parametrize("family", ["tiny-qwen3vl", "tiny-qwen25vl"])
def test_zero2_two_processes(env, request, tmp_path, family):
    store, qa = request.getfixturevalue("oracle_store_q25" if "25" in family else "oracle_store")
    metrics = _train(env, store, qa, tmp_path / "r2", "run.max_steps=2", "run.export=false", f"model.model={family}",
                     nproc=2)
    assert len(metrics) == 2 and all(math.isfinite(m[t]) for m in metrics for t in TERMS)


# tiny-qwen35 under ZeRO-3 is slow-marked to keep the default run short (18-42 s on the shared 2-core box at
# load 5-8); the ZeRO-2 pair-mode test below trains and exports it by default
@pytest.mark.parametrize("family", ["tiny-qwen3vl", "tiny-qwen25vl", pytest.param("tiny-qwen35", marks=pytest.mark.slow)])
def test_zero3_one_process(env, request, tmp_path, family):
    store, qa = request.getfixturevalue("oracle_store_q25" if "25" in family else "oracle_store")
    metrics = _train(env, store, qa, tmp_path / "z3", "run.max_steps=2", "deepspeed.zero_stage=3",
                     f"model.model={family}")
    assert len(metrics) == 2 and all(math.isfinite(m[t]) for m in metrics for t in TERMS)
    assert (tmp_path / "z3" / "export" / "geovr_heads" / "heads.safetensors").is_file()
    from safetensors.numpy import load_file

    weights = load_file(tmp_path / "z3" / "export" / "model.safetensors")
    assert all(v.size > 0 for v in weights.values())  # ZeRO-3 partitions were gathered, not saved empty
    assert np.isfinite(np.concatenate([v.ravel()[:10] for v in weights.values()])).all()


def test_qwen35_zero2_pair_mode_exports_a_plain_hf_model(env, oracle_store, tmp_path):
    store, qa = oracle_store
    metrics = _train(env, store, qa, tmp_path / "run", "run.max_steps=2", "model.model=tiny-qwen35",
                     "model.frame_mode=pair")
    assert len(metrics) == 2 and all(math.isfinite(m[t]) for m in metrics for t in TERMS)
    assert all(m["distill"] > 0 and m["camera"] > 0 for m in metrics)
    config = json.loads((tmp_path / "run" / "export" / "config.json").read_text())
    assert config["model_type"] == "qwen3_5" and "linear_attention" in config["text_config"]["layer_types"]
    _generates_with_plain_transformers(env, tmp_path / "run" / "export", tmp_path)
