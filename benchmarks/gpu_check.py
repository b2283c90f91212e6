"""The first GPU numbers, in one table (run through ``benchmarks/gpu_check.sh``).

1. Extraction: VGGT-1B (seeded random weights, bf16 autocast) forward on ``--frames`` frames of
   378x504 with the four feature layers, frames/s and peak GPU memory.
2. Training: a paper-size student step — Qwen3-VL-2B built from its published config with random
   weights (bf16), ``--frames`` frames duplicated, geovr's heads and losses, DeepSpeed ZeRO-2 on one
   GPU — with **cached** targets vs **online** teachers (VGGT-1B + Depth Anything V2 Large metric,
   run inside each step as the paper's code does). Step time and peak memory, side by side in one
   process (cached first, so its peak excludes the teachers), against the FLOP-ideal ratio
   ``(student + teachers) / student`` of ``benchmarks/flops.py`` (2.00x at 32 frames).

Inputs are built in memory (random frames; no video decoding). ``--dry-run`` builds every model
on the meta device (no memory, no GPU), checks the DeepSpeed config and prints the table layout
with the FLOP-ideal ratio: CI runs it (tests/test_benchmarks.py).

    benchmarks/gpu_check.sh [--wheels DIR] [--frames 32] [--steps 3] [--dry-run]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, table  # noqa: E402

LAYERS = (4, 11, 17, 23)
TEACHER_HW = (378, 504)
"""Teacher input: 27 x 36 patches of 14 px (longest edge 504, the paper's)."""
STUDENT_HW = (384, 512)
"""Student frames: 12 x 16 merged tokens of 32 px (~ the paper's ~300 tokens per frame group at 2x2 merge)."""
FEAT_GRID = (13, 18)
"""Stored feature grid: 27 x 36 patches, 2 x 2 average-pooled (floor)."""

QWEN3_VL_2B_TEXT = dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                        num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                        rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20],
                                         "mrope_interleaved": True}, tie_word_embeddings=True)
"""Qwen3-VL-2B-Instruct ``text_config`` (from its published config.json)."""
QWEN3_VL_2B_VISION = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
                          patch_size=16, temporal_patch_size=2, spatial_merge_size=2, num_position_embeddings=2304,
                          deepstack_visual_indexes=[5, 11, 17])
"""Qwen3-VL-2B-Instruct ``vision_config``."""


def student_config(proc_dir: Path):
    """The Qwen3-VL-2B config, with the special-token ids of geovr's tokenizer (``proc_dir``)."""
    import transformers as tf

    small = tf.AutoConfig.from_pretrained(proc_dir)
    ids = {k: getattr(small, k) for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                          "vision_end_token_id")}
    text = {**QWEN3_VL_2B_TEXT, "bos_token_id": small.text_config.bos_token_id,
            "eos_token_id": small.text_config.eos_token_id, "pad_token_id": small.text_config.pad_token_id}
    return tf.Qwen3VLConfig(text_config=text, vision_config=QWEN3_VL_2B_VISION, **ids)


def build_models(device, dtype, proc_dir: Path, teachers: bool = True) -> dict:
    """Student (HF model + geovr heads), and optionally VGGT-1B + Depth Anything V2 Large, on ``device``."""
    import torch
    import transformers as tf
    from flops import depth_anything_large_config

    from geovr.extract.teachers.vggt.model import VGGT, VGGTConfig
    from geovr.train.student.adapters import adapter_for
    from geovr.train.student.model import GeoStudent, StudentConfig

    torch.manual_seed(0)
    out = {}
    with torch.device(device):
        hf = tf.Qwen3VLForConditionalGeneration._from_config(student_config(proc_dir), attn_implementation="sdpa",
                                                            dtype=dtype)
        adapter = adapter_for(tf.AutoProcessor.from_pretrained(proc_dir), hf.config)
        cfg = StudentConfig(model="Qwen/Qwen3-VL-2B-Instruct (config, random weights)", frame_mode="duplicate",
                            freeze_vision=True, gradient_checkpointing=True, teacher_feature_dim=1024,
                            teacher_layers=list(LAYERS))
        out["student"] = GeoStudent(hf, adapter, cfg).to(dtype)
        if teachers:
            out["vggt"] = VGGT(VGGTConfig.vggt_1b()).eval().requires_grad_(False)
            out["metric"] = tf.DepthAnythingForDepthEstimation(depth_anything_large_config()).eval().requires_grad_(False)
    return out


def params_b(m) -> float:
    return sum(p.numel() for p in m.parameters()) / 1e9


def ds_config() -> dict:
    """ZeRO-2, bf16, one GPU, micro-batch 1 (the paper's recipe per GPU)."""
    return {"train_micro_batch_size_per_gpu": 1, "gradient_accumulation_steps": 1, "gradient_clipping": 1.0,
            "bf16": {"enabled": True}, "zero_optimization": {"stage": 2, "overlap_comm": True,
                                                            "contiguous_gradients": True}}


def online_targets(vggt, metric, frames):
    """Targets from the teachers on the device (as the official code does each step)."""
    import torch
    import torch.nn.functional as F

    mean = torch.tensor([0.485, 0.456, 0.406], device=frames.device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=frames.device).view(1, 3, 1, 1)
    with torch.inference_mode():
        out = vggt(frames[None], layers=LAYERS)
        md = metric(pixel_values=(frames - mean) / std).predicted_depth
        md = F.interpolate(md[:, None].float(), size=frames.shape[-2:], mode="bilinear")[:, 0]
        depth, conf = out["depth"][0].float(), out["depth_conf"][0].float()
        mask = (depth > 1e-3) & (md > 1e-2)
        mask &= conf >= conf[mask].median()
        scale = (md[mask] * depth[mask]).sum() / (depth[mask] ** 2).sum()
        feats = {}
        for layer, f in out["features"].items():
            f = f[0][..., : f.shape[-1] // 2].permute(0, 3, 1, 2).float()
            feats[layer] = F.avg_pool2d(f, 2).permute(0, 2, 3, 1).contiguous()
    return {"pose_enc": out["pose_enc"][0].float(), "depth": depth, "depth_conf": conf,
            "metric_scale": scale.reshape(()), "features": feats}


def cached_targets(frames: int, device):
    import torch

    g = torch.Generator().manual_seed(0)
    h, w = TEACHER_HW
    rnd = lambda *s: torch.rand(*s, generator=g).to(device)  # noqa: E731
    return {"pose_enc": rnd(frames, 9), "depth": rnd(frames, h, w) + 0.5, "depth_conf": rnd(frames, h, w) + 1,
            "metric_scale": torch.tensor(2.0, device=device),
            "features": {layer: rnd(frames, *FEAT_GRID, 1024) for layer in LAYERS}}


def dry_run(frames: int, proc_dir: Path) -> None:
    import torch
    from flops import paper_sizes

    models = build_models("meta", torch.bfloat16, proc_dir)
    assert all(p.is_meta for m in models.values() for p in m.parameters())
    ds = ds_config()
    assert ds["zero_optimization"]["stage"] == 2
    import deepspeed  # noqa: F401  (present: the real run needs it)

    ideal = paper_sizes(frames)["ideal_ratio"]
    rows = [{"model": k, "params_B": params_b(m), "device": "meta"} for k, m in models.items()]
    print(table(rows, ["model", "params_B", "device"]))
    print(f"\ndry run: every model built on the meta device; DeepSpeed {deepspeed.__version__} importable, "
          f"ZeRO-{ds['zero_optimization']['stage']} bf16 config ready")
    print(f"FLOP-ideal online/cached at {frames} frames: {ideal:.2f}x")


def gpu_run(frames: int, steps: int, proc_dir: Path) -> None:  # noqa: C901
    import deepspeed
    import numpy as np
    import torch
    import transformers as tf
    from flops import paper_sizes

    from geovr.train.losses import LossConfig
    from geovr.train.objective import GeoObjective
    from geovr.train.student.adapters import adapter_for
    from geovr.train.student.collate import StudentSample, prepare_sample

    assert torch.cuda.is_available(), "gpu_check needs a CUDA GPU (use --dry-run without one)"
    dev = torch.device("cuda")
    for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": os.environ.get("MASTER_PORT", "29561")}.items():
        os.environ.setdefault(k, v)
    deepspeed.init_distributed(dist_backend="nccl")
    rng = np.random.default_rng(0)
    teacher_frames = torch.rand(frames, 3, *TEACHER_HW, device=dev)
    student_frames = [rng.integers(0, 255, (*STUDENT_HW, 3), dtype=np.uint8) for _ in range(frames)]
    processor = tf.AutoProcessor.from_pretrained(proc_dir)
    processor.video_processor.size = {"shortest_edge": 32 * 32, "longest_edge": 16384 * 32 * 32}
    msgs = [{"role": "user", "content": "How many chairs are in this room?"},
            {"role": "assistant", "content": "2"}]
    sample = prepare_sample(adapter_for(processor, tf.AutoConfig.from_pretrained(proc_dir)),
                            StudentSample(frames=student_frames, fps=2.0, messages=msgs))
    rows = []
    gb = 1 << 30

    # 1. extraction throughput: VGGT-1B forward, bf16 autocast
    from geovr.extract.teachers.vggt.model import VGGT, VGGTConfig

    torch.manual_seed(0)
    vggt = VGGT(VGGTConfig.vggt_1b()).to(dev).eval().requires_grad_(False)
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        vggt(teacher_frames[None], layers=LAYERS)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            vggt(teacher_frames[None], layers=LAYERS)
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    rows.append({"what": f"extract VGGT-1B bf16, {frames} frames", "s": dt, "frames/s": frames / dt,
                 "peak_GB": torch.cuda.max_memory_allocated() / gb})
    del vggt
    torch.cuda.empty_cache()

    # 2. student step, cached then online, one ZeRO-2 engine
    models = build_models(dev, torch.bfloat16, proc_dir, teachers=False)
    student = models["student"].train()
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-5)
    engine, *_ = deepspeed.initialize(model=GeoObjective(student, LossConfig()), optimizer=opt, config=ds_config())
    fixed = cached_targets(frames, dev)
    teachers: dict = {}

    def step(online: bool) -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            tg = online_targets(teachers["vggt"], teachers["metric"], teacher_frames) if online else fixed
            loss = engine([{**sample, "targets": tg}])["loss"]
        engine.backward(loss)
        engine.step()

    def measure(online: bool) -> tuple[float, float]:
        step(online)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step(online)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return float(np.median(times)), torch.cuda.max_memory_allocated() / gb

    cached_s, cached_gb = measure(False)
    torch.manual_seed(1)
    teachers.update({k: v.to(dev, torch.bfloat16) for k, v in build_models(dev, torch.bfloat16, proc_dir).items()
                     if k != "student"})
    online_s, online_gb = measure(True)
    ideal = paper_sizes(frames)["ideal_ratio"]
    rows.append({"what": f"student step cached (Qwen3-VL-2B, ZeRO-2, {frames} fr dup)", "s": cached_s,
                 "peak_GB": cached_gb})
    rows.append({"what": "student step online (+VGGT-1B +DA-V2-L)", "s": online_s, "peak_GB": online_gb})
    print(f"machine: {machine()}")
    print(table(rows, ["what", "s", "frames/s", "peak_GB"]))
    ratio = online_s / cached_s
    print(f"\nonline/cached step time: {ratio:.2f}x measured vs {ideal:.2f}x FLOP-ideal "
          f"(measured/ideal = {ratio / ideal:.2f}); student tokens {int(sample['inputs']['input_ids'].shape[1])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=32, help="Frames per clip (paper: 32).")
    ap.add_argument("--steps", type=int, default=3, help="Timed iterations per row (median / mean).")
    ap.add_argument("--dry-run", action="store_true", help="Build every model on the meta device; no GPU needed.")
    args = ap.parse_args()
    if args.frames < 2 or args.steps < 1:
        print("error: --frames must be >= 2 and --steps >= 1", file=sys.stderr)
        sys.exit(2)
    from geovr.train.student.tiny import build_tiny_student_dir

    proc_dir = build_tiny_student_dir(Path(tempfile.gettempdir()) / "geovr-gpu-check" / "processor", "qwen3_vl")
    if args.dry_run:
        dry_run(args.frames, proc_dir)
    else:
        gpu_run(args.frames, args.steps, proc_dir)


if __name__ == "__main__":
    main()
