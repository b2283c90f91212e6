"""The first GPU numbers, in one table (run through ``benchmarks/gpu_check.sh``).

1. Extraction: VGGT-1B (seeded random weights, fp32 with its bf16 autocast, as ``geovr extract``
   runs it) forward on ``--frames`` frames of 392x504 (the extraction contract's stretch of a
   480x640 video) with the four feature layers, frames/s and peak GPU memory.
2. Training: a paper-size student step with the ``paper_qwen3vl_2b`` recipe (Qwen3-VL-2B built
   from its published config with random weights, bf16; the recipe's heads, losses, optimizer
   groups and DeepSpeed ZeRO-2 config as ``geovr train`` builds them, on one GPU), ``--frames``
   frames of 480x640 (300 merged tokens each, the paper's budget) duplicated, with **cached**
   targets vs **online** teachers (VGGT-1B + Depth Anything V2 Large metric in bf16 under bf16
   autocast, run inside each step as the paper's code does). Step time and peak memory, side by
   side in one process (cached first, so its peak excludes the teachers), against the FLOP-ideal
   ratio ``(student + teachers) / student`` of the measured configuration with the FLOP model of
   ``benchmarks/flops.py`` (analytic student step with the LM head at the supervised positions, teachers
   counted on meta tensors; 2.17x at the paper's 32 frames).

Inputs are built in memory (random frames; no video decoding). Each row prints as soon as it is
measured, and a row that runs out of GPU memory reads ``OOM`` instead of ending the run.
``--dry-run`` builds every model on the meta device (no memory, no GPU), checks the DeepSpeed config
and prints the table layout with the FLOP-ideal ratio. ``--smoke`` runs the same measuring code on
the CPU with tiny random models (a tiny Qwen3-VL, a 4-block VGGT, a 4-block Depth Anything; default
2 frames of 70x84 for the teachers and 64x64 for the student, 1 step; DeepSpeed with gloo; bf16) and
prints peak memory as n/a. CI runs both (tests/test_benchmarks.py).

    benchmarks/gpu_check.sh [--wheels DIR] [--frames 32] [--steps 3] [--dry-run | --smoke]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, table  # noqa: E402

QWEN3_VL_2B_TEXT = dict(vocab_size=151936, hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                        num_attention_heads=16, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                        rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20],
                                         "mrope_interleaved": True}, tie_word_embeddings=True)
"""Qwen3-VL-2B-Instruct ``text_config`` (from its published config.json)."""
QWEN3_VL_2B_VISION = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16, out_hidden_size=2048,
                          patch_size=16, temporal_patch_size=2, spatial_merge_size=2, num_position_embeddings=2304,
                          deepstack_visual_indexes=[5, 11, 17])
"""Qwen3-VL-2B-Instruct ``vision_config``."""
GIB = 1 << 30
SOURCE_HW = (480, 640)
"""Source video frame size of the full-size run (4:3, large enough for the student's 300-token budget)."""


@dataclass
class Setup:
    """Everything that differs between the full-size GPU run and the CPU smoke run; ``gpu_run`` is one code path."""

    name: str
    """Printed with the table: what was measured."""
    device: str
    """torch device type: ``cuda`` or ``cpu``."""
    dist_backend: str
    """``torch.distributed`` backend for DeepSpeed: ``nccl`` or ``gloo``."""
    dtype: Any
    """Student weights, online teacher weights and the teachers' autocast dtype (``torch.bfloat16``)."""
    recipe_overrides: list[str]
    """``a.b=value`` overrides of the ``paper_qwen3vl_2b`` recipe (head widths of the smoke run)."""
    teacher_hw: tuple[int, int]
    """Teacher input ``(H, W)`` pixels, multiples of the VGGT patch (14)."""
    student_hw: tuple[int, int]
    """Student frames ``(H, W)`` pixels, multiples of the merged patch (32); presized as a store's frames."""
    layers: tuple[int, ...]
    """VGGT layers of the feature targets (0-based, < the VGGT depth)."""
    vggt: Any
    """``VGGTConfig`` of the teacher."""
    metric: Any
    """transformers ``DepthAnythingConfig`` of the metric teacher."""
    student: Callable[[Path], Any]
    """Tiny student folder (tokenizer, processor) -> the ``Qwen3VLConfig`` to build with random weights."""
    names: dict[str, str]
    """Row labels: ``vggt``, ``metric``, ``student``."""
    sync: Callable[[], None] = lambda: None
    """Wait for queued device work (``torch.cuda.synchronize``)."""
    reset_peak: Callable[[], None] = lambda: None
    """Start a new peak-memory window."""
    peak_bytes: Callable[[], int] | None = None
    """Peak device memory since ``reset_peak`` in bytes; None: not measured (printed n/a)."""
    oom: tuple[type, ...] = field(default_factory=tuple)
    """Exceptions a row catches and reads as ``OOM`` (the GPU's out-of-memory error)."""


def gpu_setup(frames: int) -> Setup:
    """The paper's sizes on one CUDA GPU (also what ``--dry-run`` builds on the meta device): frame sizes from the
    recipe's sampling contract for a ``SOURCE_HW`` video at ``frames`` frames (student 480x640, teacher 392x504)."""
    import torch
    from flops import depth_anything_large_config

    from geovr.extract.teachers.vggt.model import VGGTConfig
    from geovr.shared.sampling import SamplingConfig, student_size, teacher_resize
    from geovr.train.config import load_config

    sampling = SamplingConfig.from_dict(load_config("paper_qwen3vl_2b").data.sampling)
    student_hw = student_size(SOURCE_HW, frames, sampling)
    return Setup(name="paper sizes, one GPU", device="cuda", dist_backend="nccl", dtype=torch.bfloat16,
                 recipe_overrides=[], teacher_hw=teacher_resize(student_hw, sampling).out_hw, student_hw=student_hw,
                 layers=(4, 11, 17, 23),
                 vggt=VGGTConfig.vggt_1b(), metric=depth_anything_large_config(), student=paper_student_config,
                 names={"vggt": "VGGT-1B", "metric": "DA-V2-L", "student": "Qwen3-VL-2B"},
                 sync=torch.cuda.synchronize, reset_peak=torch.cuda.reset_peak_memory_stats,
                 peak_bytes=torch.cuda.max_memory_allocated, oom=(torch.cuda.OutOfMemoryError,))


def smoke_setup() -> Setup:
    """Tiny random models on the CPU: the same code path as the GPU run in seconds (tests)."""
    import torch
    import transformers as tf
    from flops import depth_anything_config

    from geovr.extract.teachers.vggt.model import VGGTConfig

    # position embeddings resized as at full size (trained 37 x 37, run 28 x 36; here 5 x 5 -> 5 x 6); also an odd
    # patch row count (2 x 2 pooling floors it) and a height no multiple of the depth head's 28 px (other videos' shapes)
    vggt = VGGTConfig(img_size=70, embed_dim=32, depth=4, num_heads=2, dino_depth=2, dino_heads=2,
                      camera_trunk_depth=1, camera_heads=2, dpt_features=16, dpt_out_channels=[8, 16, 32, 32],
                      dpt_layers=[0, 1, 2, 3])
    heads = ["model.camera_hidden=64", "model.scale_hidden=32", "model.distill_hidden=32",
             "model.depth_channels=[8,16,32,32]", "model.depth_features=16"]
    return Setup(name="smoke: tiny random models on the CPU", device="cpu", dist_backend="gloo", dtype=torch.bfloat16,
                 recipe_overrides=heads, teacher_hw=(70, 84), student_hw=(64, 64), layers=(0, 1, 2, 3), vggt=vggt,
                 metric=depth_anything_config(32, 4, 2, out_indices=[1, 2, 3, 4], neck=[8, 16, 32, 32], fusion=16),
                 student=tf.AutoConfig.from_pretrained, names={"vggt": "tiny VGGT", "metric": "tiny DA",
                                                               "student": "tiny Qwen3-VL"})


def paper_student_config(proc_dir: Path):
    """The Qwen3-VL-2B config, with the special-token ids of geovr's tokenizer (``proc_dir``)."""
    import transformers as tf

    small = tf.AutoConfig.from_pretrained(proc_dir)
    ids = {k: getattr(small, k) for k in ("image_token_id", "video_token_id", "vision_start_token_id",
                                          "vision_end_token_id")}
    text = {**QWEN3_VL_2B_TEXT, "bos_token_id": small.text_config.bos_token_id,
            "eos_token_id": small.text_config.eos_token_id, "pad_token_id": small.text_config.pad_token_id}
    return tf.Qwen3VLConfig(text_config=text, vision_config=QWEN3_VL_2B_VISION, **ids)


def train_config(setup: Setup):
    """The ``paper_qwen3vl_2b`` recipe (``TrainConfig``) wired to this setup's teacher."""
    from geovr.train.config import load_config

    cfg = load_config("paper_qwen3vl_2b", setup.recipe_overrides)
    cfg.model.teacher_layers = list(setup.layers)
    cfg.model.teacher_feature_dim = setup.vggt.embed_dim
    cfg.model.teacher_num_layers = setup.vggt.depth
    return cfg


def build_student(setup: Setup, device, processor, proc_dir: Path, cfg):
    """``GeoStudent`` (HF model with random weights + geovr's heads) in ``setup.dtype`` on ``device``."""
    import torch
    import transformers as tf

    from geovr.train.student.adapters import adapter_for
    from geovr.train.student.model import GeoStudent

    torch.manual_seed(0)
    with torch.device(device):
        hf = tf.Qwen3VLForConditionalGeneration._from_config(setup.student(proc_dir), dtype=setup.dtype,
                                                            attn_implementation=cfg.model.attn_implementation)
        return GeoStudent(hf, adapter_for(processor, hf.config), cfg.model).to(setup.dtype)


def build_vggt(setup: Setup, device, dtype=None):
    """The VGGT teacher (seeded random weights, frozen) on ``device``; fp32 unless ``dtype``."""
    import torch

    from geovr.extract.teachers.vggt.model import VGGT

    torch.manual_seed(1)
    with torch.device(device):
        model = VGGT(setup.vggt).eval().requires_grad_(False)
    return model.to(dtype) if dtype is not None else model


def build_metric(setup: Setup, device, dtype=None):
    """The metric Depth Anything teacher (seeded random weights, frozen) on ``device``."""
    import torch
    import transformers as tf

    torch.manual_seed(2)
    with torch.device(device):
        model = tf.DepthAnythingForDepthEstimation(setup.metric).eval().requires_grad_(False)
    return model.to(dtype) if dtype is not None else model


def params_b(m) -> float:
    return sum(p.numel() for p in m.parameters()) / 1e9


def online_targets(setup: Setup, vggt, metric, frames) -> dict:
    """Targets from the teachers on the device, as the official code makes them each step: bf16 teachers under
    bf16 autocast, pose ``[S, 9]``, depth / confidence ``[S, H, W]``, least-squares metric scale ``()``, features
    ``{layer: [S, h/2, w/2, C]}`` (frame half, 2x2 average pool), all fp32 like a store's."""
    import torch
    import torch.nn.functional as F

    mean = torch.tensor([0.485, 0.456, 0.406], device=frames.device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=frames.device).view(1, 3, 1, 1)
    with torch.inference_mode(), torch.autocast(setup.device, dtype=setup.dtype):
        out = vggt(frames[None], layers=setup.layers, bf16=True)
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


def cached_targets(setup: Setup, frames: int, device) -> dict:
    """Targets of the shapes and dtype (fp32) a store holds, as the loader hands them over (already on the device)."""
    import torch

    g = torch.Generator().manual_seed(0)
    h, w = setup.teacher_hw
    grid = (h // setup.vggt.patch_size // 2, w // setup.vggt.patch_size // 2)  # patch grid 2x2 pooled (floor)
    rnd = lambda *s: torch.rand(*s, generator=g).to(device)  # noqa: E731
    return {"pose_enc": rnd(frames, 9), "depth": rnd(frames, h, w) + 0.5, "depth_conf": rnd(frames, h, w) + 1,
            "metric_scale": torch.tensor(2.0, device=device),
            "features": {layer: rnd(frames, *grid, setup.vggt.embed_dim) for layer in setup.layers}}


def dry_run(frames: int, proc_dir: Path) -> None:
    import deepspeed
    import transformers as tf
    from flops import paper_sizes

    from geovr.train.loop import ds_config

    setup = gpu_setup(frames)
    cfg = train_config(setup)
    processor = tf.AutoProcessor.from_pretrained(proc_dir)
    models = {"student": build_student(setup, "meta", processor, proc_dir, cfg), "vggt": build_vggt(setup, "meta"),
              "metric": build_metric(setup, "meta")}
    assert all(p.is_meta for m in models.values() for p in m.parameters())
    ds = ds_config(cfg, 1, True, 1)
    assert ds["zero_optimization"]["stage"] == 2 and ds["bf16"]["enabled"]
    ideal = paper_sizes(frames)["ideal_ratio"]
    rows = [{"model": k, "params_B": params_b(m), "device": "meta"} for k, m in models.items()]
    print(table(rows, ["model", "params_B", "device"]))
    print(f"\ndry run: every model built on the meta device; DeepSpeed {deepspeed.__version__} importable, "
          f"ZeRO-{ds['zero_optimization']['stage']} bf16 config ready")
    print(f"FLOP-ideal online/cached at {frames} frames: {ideal:.2f}x")


def gpu_run(setup: Setup, frames: int, steps: int, proc_dir: Path) -> None:  # noqa: C901
    """Measure and print the table (the full-size GPU run and ``--smoke`` both come here)."""
    import deepspeed
    import numpy as np
    import torch
    import transformers as tf
    from flops import counted_teachers, hf_student_step

    from geovr.train.loop import _dist_env, _skip_cpu_shm_op, ds_config
    from geovr.train.objective import GeoObjective
    from geovr.train.student.collate import StudentSample, prepare_sample

    if setup.device == "cuda":
        if not torch.cuda.is_available():
            print("error: no CUDA GPU visible (use --dry-run or --smoke without one)", file=sys.stderr)
            sys.exit(2)
        torch.cuda.set_device(0)
    else:
        _skip_cpu_shm_op()
    _dist_env()
    deepspeed.init_distributed(dist_backend=setup.dist_backend)
    dev = torch.device(setup.device)
    (th, tw), (sh, sw) = setup.teacher_hw, setup.student_hw
    print(f"machine: {machine()}\nsetup: {setup.name}; {frames} frames (teacher {th}x{tw}, student {sh}x{sw}), "
          f"{steps} timed step(s) per row", flush=True)
    cfg = train_config(setup)
    processor = tf.AutoProcessor.from_pretrained(proc_dir)
    merge = processor.video_processor.merge_size
    torch.manual_seed(0)
    teacher_frames = torch.rand(frames, 3, *setup.teacher_hw, device=dev)
    rng = np.random.default_rng(0)
    student_frames = [rng.integers(0, 255, (*setup.student_hw, 3), dtype=np.uint8) for _ in range(frames)]
    rows: list[dict] = []
    names = setup.names

    def report(row: dict) -> None:
        rows.append(row)
        print(table([row], ["what", "s", "frames/s", "peak_GB"]).splitlines()[-1], flush=True)

    def peak_gb() -> float | str:
        return setup.peak_bytes() / GIB if setup.peak_bytes is not None else "n/a"

    def timed(fn: Callable[[], None]) -> tuple[float, float | str] | None:
        """Median seconds of ``steps`` calls after one warm-up, and the peak memory of the timed calls; None: OOM."""
        try:
            fn()
            setup.sync()
            setup.reset_peak()
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                fn()
                setup.sync()
                times.append(time.perf_counter() - t0)
        except setup.oom as exc:
            print(f"out of memory: {str(exc).splitlines()[0]}", file=sys.stderr, flush=True)
            return None
        return float(np.median(times)), peak_gb()

    # 1. extraction throughput: the VGGT forward as `geovr extract` runs it (fp32 weights, bf16 autocast inside)
    vggt = build_vggt(setup, dev)
    with torch.inference_mode():
        got = timed(lambda: vggt(teacher_frames[None], layers=setup.layers, bf16=True))
    what = f"extract {names['vggt']} bf16, {frames} frames"
    report({"what": what, "s": got[0], "frames/s": frames / got[0], "peak_GB": got[1]} if got else
           {"what": what, "s": "OOM"})
    vggt = None  # freed before the student is built
    if setup.device == "cuda":
        torch.cuda.empty_cache()

    # 2. student step, cached then online, one ZeRO-2 engine built as `geovr train` builds it
    student = build_student(setup, dev, processor, proc_dir, cfg).train()
    sample = prepare_sample(student.adapter, StudentSample(frames=student_frames, fps=2.0, presized=True, messages=[
        {"role": "user", "content": "How many chairs are in this room?"},
        {"role": "assistant", "content": "2"}]), cfg.model.frame_mode)
    opt = torch.optim.AdamW([{"params": student.student_parameters(), "lr": cfg.optim.lr},
                             {"params": student.head_parameters(), "lr": cfg.optim.head_lr}],
                            weight_decay=cfg.optim.weight_decay)
    engine, *_ = deepspeed.initialize(model=GeoObjective(student, cfg.loss), optimizer=opt,
                                      config=ds_config(cfg, 1, setup.dtype == torch.bfloat16, 1))
    print(f"DeepSpeed {deepspeed.__version__}: ZeRO-{engine.zero_optimization_stage()}, "
          f"{'bf16' if engine.bfloat16_enabled() else 'fp32'}, {setup.dist_backend}", flush=True)
    fixed = cached_targets(setup, frames, dev)
    teachers: dict = {}

    def step(online: bool) -> None:
        tg = online_targets(setup, teachers["vggt"], teachers["metric"], teacher_frames) if online else fixed
        terms = engine([{**sample, "targets": tg}])
        engine.backward(terms["loss"])
        engine.step()

    student_name = f"student step cached ({names['student']}, ZeRO-{cfg.deepspeed.zero_stage}, {frames} fr dup)"
    online_name = f"student step online (+{names['vggt']} +{names['metric']})"
    cached = timed(lambda: step(False))
    report({"what": student_name, "s": cached[0], "peak_GB": cached[1]} if cached else
           {"what": student_name, "s": "OOM"})
    online = None
    if cached:
        teachers.update(vggt=build_vggt(setup, dev, setup.dtype), metric=build_metric(setup, dev, setup.dtype))
        online = timed(lambda: step(True))
    report({"what": online_name, "s": online[0], "peak_GB": online[1]} if online else
           {"what": online_name, "s": "OOM" if cached else "skipped"})

    grid = sample["inputs"]["video_grid_thw"][0]  # temporal groups, patch rows, patch columns
    llm_tokens, per_frame = int(sample["inputs"]["input_ids"].shape[1]), int(grid[1] * grid[2]) // merge ** 2
    supervised = int((sample["labels"][0][1:] != -100).sum())  # the LM head runs only there (GeoStudent)
    student_flops = hf_student_step(student.hf_model.config, llm_tokens, int(grid.prod()), int(grid[0]), supervised)
    teacher_flops = sum(counted_teachers(frames, setup.teacher_hw, setup.vggt, setup.metric, setup.layers))
    ideal = (student_flops + teacher_flops) / student_flops
    print()
    print(table(rows, ["what", "s", "frames/s", "peak_GB"]))
    ratio = f"{online[0] / cached[0]:.2f}x measured" if cached and online else "n/a (a row ran out of memory)"
    meas = f" (measured/ideal = {online[0] / cached[0] / ideal:.2f})" if cached and online else ""
    print(f"\nonline/cached step time: {ratio} vs {ideal:.2f}x FLOP-ideal{meas}")
    print(f"FLOP-ideal of this configuration (flops.py's model): student step {student_flops / 1e12:.4g} TFLOP "
          f"({per_frame} merged tokens per frame, {llm_tokens} LLM tokens), teachers {teacher_flops / 1e12:.4g} TFLOP")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line and exit 2, as every geovr command
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    ap = _Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, help="Frames per clip (default: 32, the paper's; --smoke: 2).")
    ap.add_argument("--steps", type=int, help="Timed iterations per row, median reported (default: 3; --smoke: 1).")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="Build every model on the meta device; no GPU needed.")
    mode.add_argument("--smoke", action="store_true",
                      help="Run the measuring code on the CPU with tiny random models (seconds; no GPU needed).")
    args = ap.parse_args()
    frames = args.frames if args.frames is not None else 2 if args.smoke else 32
    steps = args.steps if args.steps is not None else 1 if args.smoke else 3
    if frames < 2 or steps < 1:
        print("error: --frames must be >= 2 and --steps >= 1", file=sys.stderr)
        sys.exit(2)
    if args.smoke:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # before DeepSpeed is imported
    from geovr.train.student.tiny import build_tiny_student_dir

    proc_dir = build_tiny_student_dir(Path(tempfile.gettempdir()) / "geovr-gpu-check" / "processor", "qwen3_vl")
    if args.dry_run:
        dry_run(frames, proc_dir)
    else:
        gpu_run(smoke_setup() if args.smoke else gpu_setup(frames), frames, steps, proc_dir)


if __name__ == "__main__":
    main()
