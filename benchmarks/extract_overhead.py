"""Extraction overhead: wall time of the real ``geovr extract`` job over the pure teacher forward time.

A synthetic corpus is rendered once. Then, side by side on the same frames:

- ``teacher forward only``: every clip is decoded beforehand by the job's own ``_ClipSource``
  (probe, ``plan_sampling``, ``read_frames``, ``crop_resize``); the teacher is built once and only
  ``teacher(x, layers, ctx)`` is timed over all clips.
- ``teacher build``: ``build_teacher`` alone (part of every job run, not of the forward row).
- ``extract (fmt)``: ``run_extract`` over the whole corpus (``workers=2``, fresh output folder each
  repeat), total wall time, and the same minus the teacher build time. The ratio is taken on the
  latter: decoding (DataLoader workers) and shard writing (a forked writer process, or with
  ``--shard-writers thread`` a thread of the job) should overlap with the teacher, so the job should
  cost little more than its forwards.

The teacher is a seeded random VGGT (no weights needed); ``--teacher-config`` picks ``tiny``,
``small`` (a mid-size config whose forward dominates on a CPU) or ``vggt_1b``.

    python benchmarks/extract_overhead.py [--clips 8] [--frames 8] [--height 112 --width 140] [--repeat 3]
        [--formats zarr,wds] [--shard-writers process,thread]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, table, timeit  # noqa: E402

GOAL = 1.10
"""Job wall time (minus teacher build) over pure teacher forward time."""


def teacher_setup(name: str):
    """``(config, layers)`` for ``--teacher-config``."""
    from geovr.extract.teachers.vggt import VGGTConfig

    if name == "tiny":
        return "tiny", (0, 1, 2, 3)
    if name == "small":
        cfg = VGGTConfig(img_size=224, embed_dim=192, depth=8, num_heads=4, patch_embed="conv", camera_trunk_depth=1, camera_heads=4,
                         dpt_features=32, dpt_out_channels=[32, 64, 128, 128], dpt_layers=[1, 3, 5, 7])
        return cfg, (1, 3, 5, 7)
    if name == "vggt_1b":
        return "vggt_1b", (4, 11, 17, 23)
    raise SystemExit(f"unknown --teacher-config {name!r}; known: tiny, small, vggt_1b")


def decode_all(corpus: Path, sampling):
    """Every clip decoded by the job's own ``_ClipSource``: ``[(x [S,3,H,W] float in [0,1], ctx)]``."""
    import torch

    from geovr.extract.corpus import read_corpus
    from geovr.extract.runner import _ClipSource
    from geovr.extract.teachers import ClipContext

    source = _ClipSource(read_corpus(corpus), sampling)
    out = []
    for i in range(len(source)):
        item = source[i]
        if "error" in item:
            raise SystemExit(f"{item['row'].uri}: {item['error']}")
        row, plan = item["row"], item["plan"]
        x = torch.from_numpy(item["teacher_frames"]).permute(0, 3, 1, 2).float().div(255.0)
        ctx = ClipContext(clip_id=row.clip_id, frame_indices=plan.indices, resize=plan.teacher_view,
                          gt_dir=row.gt_dir)
        out.append((x, ctx))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=8, help="clips in the synthetic corpus")
    ap.add_argument("--frames", type=int, default=8, help="frames per clip (all go through the teacher)")
    ap.add_argument("--height", type=int, default=112, help="rendered frame height (multiple of 28 keeps it uncropped)")
    ap.add_argument("--width", type=int, default=140, help="rendered frame width (multiple of 28 keeps it uncropped)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats (median), after one warm-up")
    ap.add_argument("--teacher-config", default="small", help="VGGT config: tiny | small | vggt_1b")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader decoding workers of the job")
    ap.add_argument("--clips-per-shard", type=int, default=4,
                    help="job shard size; the last (partial) shard is written after the last forward")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for both sides (0 = torch's default; on a 2-core box the job's decode "
                         "workers compete with them, and a busy box stalls multi-threaded ops badly)")
    ap.add_argument("--formats", default="zarr,wds", help="store formats to time, comma-separated")
    ap.add_argument("--shard-writers", default="process",
                    help="job shard writers to time, comma-separated: process (the default) and/or thread")
    args = ap.parse_args()

    import torch

    from geovr.extract.runner import ExtractConfig, run_extract
    from geovr.extract.teachers import build_teacher
    from geovr.shared.sampling import SamplingConfig
    from geovr.synth.config import SynthConfig
    from geovr.synth.corpus import MANIFEST_NAME, render_corpus

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    config, layers = teacher_setup(args.teacher_config)
    kwargs = {"config": config, "device": "cpu", "random_init": True}
    sampling = SamplingConfig(num_frames=args.frames, min_frames=min(4, args.frames), max_frames=max(32, args.frames),
                              longest_edge=max(args.height, args.width))
    n_frames = args.clips * args.frames
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    writers = [w.strip() for w in args.shard_writers.split(",") if w.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        render_corpus(root / "corpus", SynthConfig(clips=args.clips, frames=args.frames, height=args.height,
                                                   width=args.width), progress=False)
        corpus = root / "corpus" / MANIFEST_NAME

        # (b) pure teacher forward on pre-decoded frames; the teacher is built once
        clips = decode_all(corpus, sampling)
        teacher = build_teacher("vggt", layers=layers, **kwargs)
        layers_used = tuple(teacher.info.feature_layers)
        in_hw = tuple(clips[0][0].shape[-2:])
        runs = iter(range(10_000))

        def forward() -> None:
            for x, ctx in clips:
                teacher(x, layers_used, ctx)

        def build() -> None:
            build_teacher("vggt", layers=layers, **kwargs)

        def job(fmt: str, how: str) -> None:  # (a) the real job, fresh output folder per run
            res = run_extract(ExtractConfig(corpus=str(corpus), out=str(root / f"out_{fmt}_{next(runs)}"),
                                            teacher="vggt", teacher_kwargs=kwargs, format=fmt, layers=layers,
                                            sampling=sampling, clips_per_shard=args.clips_per_shard,
                                            workers=args.workers, shard_writer=how, progress=False))
            if res.stored != args.clips or res.failed:
                raise RuntimeError(f"extract stored {res.stored}/{args.clips} clips, failed: {res.failed}")

        fns = {"forward": forward, "build": build}
        jobs = [(fmt, how) for fmt in formats for how in writers]
        fns |= {f"{fmt} {how}": partial(job, fmt, how) for fmt, how in jobs}
        for fn in fns.values():  # warm-up (imports, page cache, allocator)
            fn()
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.repeat):  # interleaved, so load drift hits every row alike
            for k, fn in fns.items():
                times[k].append(timeit(fn, repeat=1, warmup=0))
    t = {k: float(np.median(v)) for k, v in times.items()}

    def row(name: str, sec: float) -> dict:
        return {"row": name, "seconds": sec, "clips/s": args.clips / sec, "frames/s": n_frames / sec,
                "ratio_vs_teacher": sec / t["forward"]}

    rows = [row("teacher forward only", t["forward"]), {"row": "teacher build (once per job)", "seconds": t["build"]}]
    for fmt, how in jobs:
        k = f"{fmt} {how}"
        rows += [row(f"extract ({fmt}, {how} writer) total", t[k]),
                 row(f"extract ({fmt}, {how} writer) minus build", t[k] - t["build"])]

    tname = args.teacher_config if isinstance(config, str) else f"small (custom: {config.embed_dim}d x {config.depth})"
    print(f"machine: {machine()}")
    print(f"config: {args.clips} clips x {args.frames} frames, rendered {args.height}x{args.width}, teacher input "
          f"{in_hw[0]}x{in_hw[1]}, VGGT {tname} random weights, layers {layers_used}, cpu, torch threads {threads}, "
          f"job workers {args.workers}, {args.clips_per_shard} clips/shard, median of {args.repeat} after 1 warm-up\n")
    print(table(rows, ["row", "seconds", "clips/s", "frames/s", "ratio_vs_teacher"]))
    print(f"\ngoal: extract minus build <= {GOAL:.2f} x teacher forward (decode and writing overlapped with the teacher)")


if __name__ == "__main__":
    main()
