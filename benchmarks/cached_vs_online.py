"""Cached targets vs teachers run online inside every training step (the paper's official design).

Both modes run the same student training step (Qwen3-VL student + geovr's camera / scale /
depth / distill heads, forward + backward + AdamW) on the same clip. ``online`` first runs the
two frozen teachers forward on the clip (VGGT: poses, depth, confidence, features of layers
4/11/17/23; a Depth Anything V2 metric model: metric depth for the least-squares scale) and
turns their outputs into targets on the device, as the official code does; ``cached`` reads the
targets that ``geovr extract`` stored (here: already in memory, since the loader is measured by
``loader.py``), and never builds the teachers.

Shapes mirror the paper scaled down for a CPU: every width divided by ``--div`` (default 8), the
real layer counts kept (student LLM 28, vision tower 24, VGGT DINOv2 24 + 24 frame/global block
pairs, metric ViT 24), and the teacher-to-student tokens per frame ratio kept (paper: 972 teacher
patches per 504x378 frame vs ~300 merged student tokens; here 126x168 -> 108 vs 160x224 -> 35).

The FLOP-ideal ratio ``(student step + teacher forward) / student step`` is counted with
``torch.utils.flop_counter.FlopCounterMode`` on the measured configuration and computed from the
FLOP model of ``flops.py`` for the paper's real sizes. Each mode runs in its own process so the
peak memory is its own (GPU: ``max_memory_allocated``; CPU: peak RSS of the process).

    python benchmarks/cached_vs_online.py [--div 8] [--frames 8] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, table  # noqa: E402

TEACHER_HW = (126, 168)
"""Teacher input (9 x 12 patches of 14 px): 108 patches, 972 / 9 like the paper's 504x378."""
STUDENT_HW = (160, 224)
"""Student frames (5 x 7 merged tokens of 32 px): 35 tokens, 300 / 8.6 like the paper."""
LAYERS = (4, 11, 17, 23)
"""VGGT layers of the feature targets (paper)."""


def sizes(div: int) -> dict:
    """Paper widths divided by ``div``; heads scale with the width at the real head sizes (ViTs 64,
    LLM 16 here: the tiny builder's M-RoPE sections are laid out for head size 16)."""
    w = lambda x: max(x // div, 16)  # noqa: E731
    vit_heads = max(w(1024) // 64, 1)
    return {
        "text": {"hidden_size": w(2048), "intermediate_size": w(6144), "num_hidden_layers": 28,
                 "num_attention_heads": w(2048) // 16, "num_key_value_heads": w(2048) // 32},
        "vision": {"depth": 24, "hidden_size": w(1024), "intermediate_size": w(4096), "num_heads": vit_heads,
                   "out_hidden_size": w(2048), "deepstack_visual_indexes": [5, 11, 17], "num_position_embeddings": 2304},
        "vggt": {"embed_dim": w(1024), "depth": 24, "num_heads": vit_heads, "camera_heads": vit_heads, "dpt_features": w(256),
                 "dpt_out_channels": [w(256), w(512), w(1024), w(1024)]},
        "metric": {"hidden": w(1024), "layers": 24, "heads": vit_heads},
        "heads": {"camera_hidden": w(1536), "scale_hidden": w(512), "depth_channels": [w(256), w(512), w(1024), w(1024)],
                  "depth_features": w(256)},
    }


def render_frames(frames: int) -> tuple:
    """One synthetic clip: ``(teacher [S, 3, 126, 168] float in [0, 1], student list of [160, 224, 3] uint8)``."""
    import numpy as np
    import torch
    from PIL import Image

    from geovr.shared.video import read_frames
    from geovr.synth.config import SynthConfig
    from geovr.synth.corpus import render_corpus

    with tempfile.TemporaryDirectory() as d:
        render_corpus(d, SynthConfig(clips=1, frames=frames, height=378, width=504), progress=False)
        rgb = read_frames(Path(d) / "videos" / "synth_0000.mp4", np.arange(frames))
    th, tw = TEACHER_HW
    sh, sw = STUDENT_HW
    teacher = np.stack([np.asarray(Image.fromarray(f).resize((tw, th), Image.BICUBIC)) for f in rgb])
    student = [np.asarray(Image.fromarray(f).resize((sw, sh), Image.BICUBIC)) for f in rgb]
    return torch.from_numpy(teacher).permute(0, 3, 1, 2).float().div(255), student


class OnlineTeachers:
    """VGGT + metric depth model, frozen, producing the training targets on the device each step."""

    def __init__(self, sz: dict, device: str, cache: Path) -> None:
        import torch

        from geovr.extract.metric_depth import write_random_depth_anything
        from geovr.extract.teachers.vggt.model import VGGT, VGGTConfig

        torch.manual_seed(0)
        self.vggt = VGGT(VGGTConfig(**sz["vggt"])).to(device).eval().requires_grad_(False)
        from transformers import AutoModelForDepthEstimation

        m = sz["metric"]
        path = write_random_depth_anything(cache / f"da-{m['hidden']}", hidden=m["hidden"], layers=m["layers"],
                                           heads=m["heads"], image_size=518)
        self.metric = AutoModelForDepthEstimation.from_pretrained(path).to(device).eval().requires_grad_(False)
        self.mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    def parameter_bytes(self) -> int:
        mods = (self.vggt, self.metric)
        return sum(p.numel() * p.element_size() for m in mods for p in m.parameters())

    def __call__(self, frames):
        """Targets as the student consumes them: pose ``[S, 9]``, depth/conf ``[S, H, W]``, scale, features."""
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            out = self.vggt(frames[None], layers=LAYERS)
            metric = self.metric(pixel_values=(frames - self.mean) / self.std).predicted_depth
            metric = F.interpolate(metric[:, None], size=frames.shape[-2:], mode="bilinear")[:, 0]
            depth, conf = out["depth"][0], out["depth_conf"][0]
            mask = (depth > 1e-3) & (metric > 1e-2)
            mask &= conf >= conf[mask].median()
            scale = (metric[mask] * depth[mask]).sum() / (depth[mask] ** 2).sum()
            feats = {}
            for layer, f in out["features"].items():  # [S, h, w, 2C] -> frame half -> 2x2 average pool
                f = f[0][..., : f.shape[-1] // 2].permute(0, 3, 1, 2)
                feats[layer] = F.avg_pool2d(f, 2).permute(0, 2, 3, 1).contiguous()
        return {"pose_enc": out["pose_enc"][0], "depth": depth, "depth_conf": conf, "metric_scale": scale.reshape(()),
                "features": feats}


def cached_targets(sz: dict, frames: int, device: str) -> dict:
    """Targets of the shapes ``geovr extract`` stores (values do not change the step's cost)."""
    import torch

    h, w = TEACHER_HW
    c = sz["vggt"]["embed_dim"]
    g = torch.Generator().manual_seed(0)
    rnd = lambda *s: torch.rand(*s, generator=g).to(device)  # noqa: E731
    return {"pose_enc": rnd(frames, 9), "depth": rnd(frames, h, w) + 0.5, "depth_conf": rnd(frames, h, w) + 1,
            "metric_scale": torch.tensor(2.0, device=device),
            "features": {layer: rnd(frames, h // 28, w // 28, c) for layer in LAYERS}}


def run_mode(mode: str, div: int, frames: int, steps: int) -> dict:  # noqa: C901
    """One mode in this process: median step seconds, peak memory, FLOPs of one step."""
    import resource

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from geovr.train.losses import LossConfig
    from geovr.train.objective import GeoObjective
    from geovr.train.student.adapters import adapter_for
    from geovr.train.student.collate import StudentSample, prepare_sample
    from geovr.train.student.model import GeoStudent, StudentConfig
    from geovr.train.student.tiny import build_tiny_student_dir

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sz = sizes(div)
    cache = Path(tempfile.gettempdir()) / "geovr-bench"
    path = build_tiny_student_dir(cache / f"student-div{div}", "qwen3_vl", text=sz["text"], vision=sz["vision"])
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    processor.video_processor.size = {"shortest_edge": 32 * 32, "longest_edge": 16384 * 32 * 32}  # keep 160x224
    hf = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa")
    cfg = StudentConfig(model=str(path), teacher_feature_dim=sz["vggt"]["embed_dim"], teacher_layers=list(LAYERS),
                        **sz["heads"])
    adapter = adapter_for(processor, hf.config)
    student = GeoStudent(hf, adapter, cfg).to(device).train()
    objective = GeoObjective(student, LossConfig())
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-5)
    teacher_frames, student_frames = render_frames(frames)
    teacher_frames = teacher_frames.to(device)
    msgs = [{"role": "user", "content": "How many chairs are in this room?"},
            {"role": "assistant", "content": "2"}]
    sample = prepare_sample(adapter, StudentSample(frames=student_frames, fps=2.0, messages=msgs))
    teachers = OnlineTeachers(sz, device, cache) if mode == "online" else None
    fixed = cached_targets(sz, frames, device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")

    def step() -> None:
        with autocast:
            targets = teachers(teacher_frames) if teachers is not None else fixed
            loss = objective([{**sample, "targets": targets}])["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    step()
    step()  # warm-up (allocator, optimizer state)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with FlopCounterMode(display=False) as fc:
        step()
    teacher_flops = 0
    if teachers is not None:
        with FlopCounterMode(display=False) as ft:
            teachers(teacher_frames)
        teacher_flops = ft.get_total_flops()
    times.sort()
    return {"mode": mode, "device": device, "step_s": times[len(times) // 2], "peak_bytes": int(peak),
            "step_flops": fc.get_total_flops(), "teacher_flops": teacher_flops,
            "teacher_param_bytes": teachers.parameter_bytes() if teachers is not None else 0,
            "student_tokens": int(sample["inputs"]["input_ids"].shape[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--div", type=int, default=8, help="divide every paper width by this")
    ap.add_argument("--frames", type=int, default=8, help="frames per clip (paper: 32)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per mode (median reported)")
    ap.add_argument("--mode", choices=["cached", "online"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.div, args.frames, args.steps)))
        return

    from flops import paper_sizes

    res = {}
    for mode in ("cached", "online"):
        cmd = [sys.executable, __file__, "--mode", mode, "--div", str(args.div), "--frames", str(args.frames),
               "--steps", str(args.steps)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    c, o = res["cached"], res["online"]
    ideal = (c["step_flops"] + o["teacher_flops"]) / c["step_flops"]
    measured = o["step_s"] / c["step_s"]
    rows = [{"mode": m, "step_s": r["step_s"], "peak_MB": r["peak_bytes"] / 2**20,
             "teacher_weights_MB": r["teacher_param_bytes"] / 2**20, "step_GFLOP": (r["step_flops"] / 1e9),
             "teacher_GFLOP": r["teacher_flops"] / 1e9} for m, r in res.items()]
    paper = paper_sizes(32)
    print(f"machine: {machine()}")
    print(f"config: widths / {args.div}, real layer counts, {args.frames} frames (duplicated for the student), "
          f"teacher {TEACHER_HW[0]}x{TEACHER_HW[1]} (108 patches/frame), student {STUDENT_HW[0]}x{STUDENT_HW[1]} "
          f"(35 merged tokens/frame), {c['student_tokens']} LLM tokens; device {c['device']}\n")
    print(table(rows, list(rows[0])))
    print(f"\nmeasured online/cached step time:           {measured:.2f}x")
    print(f"FLOP-ideal online/cached (this config):     {ideal:.2f}x   (measured / ideal = {measured / ideal:.2f}; "
          f"goal >= 0.9)")
    print(f"FLOP-ideal online/cached (paper sizes, 32 frames, flops.py): {paper['ideal_ratio']:.2f}x")
    print(f"peak memory online/cached: {o['peak_bytes'] / c['peak_bytes']:.2f}x "
          f"(teacher weights {o['teacher_param_bytes'] / 2**20:.0f} MB gone in cached mode)")


if __name__ == "__main__":
    main()
