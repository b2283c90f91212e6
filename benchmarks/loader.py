"""Loader throughput: clips/s and MB/s reading cached clips from Zarr and from WebDataset with
DataLoader workers, against what a 7B-class GPU training step consumes.

Clips have the paper's per-frame shapes (4 layers x 13x18 x 1024 bf16 features, 378x504 fp16 depth
+ confidence, a JPEG frame); ``--frames`` sets frames per clip (paper: 32). The consumption rate is
estimated from the FLOP model (``flops.py``): Qwen2.5-VL-7B step on 32-frame clips at 40 % MFU
of an H100's 989 dense bf16 TFLOP/s, i.e. clips/s that one GPU can train on.

With ``--s3`` each store is also published to a loopback S3 server (moto, ``benchmarks/s3local.py``)
and read back through ``s3://`` with s3fs, side by side with local disk (``source`` column).

    python benchmarks/loader.py [--clips 12] [--frames 8] [--workers 2] [--s3]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import PAPER, jpeg, machine, table  # noqa: E402
from flops import ViT, student_step  # noqa: E402


def paper_clip(clip_id: str, header, frames: int, seed: int):
    from geovr.shared.features import encode_features
    from geovr.shared.schema import ClipTargets, ResizeSpec, VideoRef

    rng = np.random.default_rng(seed)
    h, w = PAPER["hw"]
    gh, gw = PAPER["feat_grid"]
    ext = np.tile(np.eye(3, 4, dtype=np.float32), (frames, 1, 1))
    k = np.tile(np.array([[400.0, 0, w / 2], [0, 400.0, h / 2], [0, 0, 1]], np.float32), (frames, 1, 1))
    pose = np.tile(np.array([0, 0, 0, 0, 0, 0, 1, 0.8, 1.0], np.float32), (frames, 1))
    img = (rng.random((-(-h // 8), -(-w // 8), 3)) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)[:h, :w]
    feats = {
        layer: encode_features(rng.normal(size=(frames, gh, gw, PAPER["feat_channels"])).astype(np.float32), "bf16")[0]
        for layer in PAPER["feat_layers"]
    }
    return ClipTargets(
        clip_id=clip_id, video=VideoRef(uri="x.mp4", sha256="0" * 64, fps=30.0, num_frames=1000),
        frame_indices=np.arange(frames, dtype=np.int64) * 15, timestamps=np.arange(frames) * 0.5,
        resize=ResizeSpec(src_hw=(h, w), crop_box=(0, 0, h, w), out_hw=(h, w)),
        frames=[jpeg(img)] * frames, pose_enc=pose, extrinsics=ext, intrinsics=k,
        depth=(rng.random((frames, h, w)) * 5 + 0.5).astype(np.float16),
        depth_conf=np.ones((frames, h, w), np.float16), metric_scale=1.0, scale_source="oracle", features=feats,
    )


class _ClipDataset:
    def __init__(self, root: str) -> None:
        self.root = root
        self.reader = None
        from geovr.shared.stores import StoreReader

        self.ids = StoreReader(root).clip_ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        from geovr.shared.stores import StoreReader

        if self.reader is None:  # one reader per worker process
            self.reader = StoreReader(self.root)
        clip = self.reader[self.ids[i]]
        return sum(a.nbytes for a in (clip.depth, clip.depth_conf, *clip.features.values())) + sum(
            len(f) for f in clip.frames
        )


def gpu_consumption_clips_per_s(frames: int = 32, mfu: float = 0.4, peak: float = 989e12) -> float:
    llm = ViT(28, 3584, 18944, 0, swiglu=True, kv_dim=512)  # Qwen2.5-VL-7B text model
    vision = ViT(32, 1280, 3420, 0, swiglu=True)
    flops = student_step(llm, vision, frames * 301 + 121, frames * 300 * 4, frames)
    return mfu * peak / flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clips-per-shard", type=int, default=4)
    ap.add_argument("--s3", action="store_true", help="Also read through s3:// from a loopback moto S3 server.")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        s3_base = None
        if args.s3:
            from s3local import loopback_s3

            s3_base = stack.enter_context(loopback_s3())
        run(args, s3_base)


def _read(root: str, args) -> tuple[int, float]:
    import torch

    loader = torch.utils.data.DataLoader(_ClipDataset(root), batch_size=None, shuffle=True,
                                         num_workers=args.workers, generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    nbytes = sum(int(b) for b in loader)
    return nbytes, time.perf_counter() - t0


def run(args, s3_base: str | None) -> None:

    from geovr.shared.features import FeatureSpec
    from geovr.shared.manifest import StoreHeader
    from geovr.shared.schema import TeacherInfo
    from geovr.shared.stores import StoreWriter, finalize_store

    consume = gpu_consumption_clips_per_s()
    consume_frames = consume * 32
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("zarr", "wds"):
            root = str(Path(tmp) / fmt)
            header = StoreHeader(format=fmt, teacher=TeacherInfo("bench", "paper-shapes", feature_layers=PAPER["feat_layers"]),
                                 features=FeatureSpec(layers=PAPER["feat_layers"], dtype="bf16"))
            writer = StoreWriter(root, header)
            t0 = time.perf_counter()
            for s in range(0, args.clips, args.clips_per_shard):
                writer.write_shard([paper_clip(f"c{i:04d}", header, args.frames, i)
                                    for i in range(s, min(args.clips, s + args.clips_per_shard))])
            finalize_store(root)
            write_s = time.perf_counter() - t0
            sources = [("local", root)]
            if s3_base is not None:
                from geovr.shared.shards.transfer import transfer_store

                transfer_store(root, f"{s3_base}/{fmt}")
                sources.append(("s3 loopback", f"{s3_base}/{fmt}"))
            for source, url in sources:
                nbytes, read_s = _read(url, args)
                fps = args.clips * args.frames / read_s
                rows.append({"format": fmt, "source": source, "workers": args.workers, "clips": args.clips,
                             "frames/clip": args.frames, "write_MB/s": nbytes / write_s / 1e6,
                             "read_clips/s": args.clips / read_s, "read_frames/s": fps,
                             "read_MB/s": nbytes / read_s / 1e6, "x_gpu_need": fps / consume_frames})
    print(f"machine: {machine()}")
    print(f"one 7B-class GPU consumes ~{consume:.2f} clips/s of 32 frames (~{consume_frames:.1f} frames/s)\n")
    print(table(rows, list(rows[0])))
    print("\ngoal: x_gpu_need >= 3 (loader is never the bottleneck); per-frame rates compare clip sizes fairly")


if __name__ == "__main__":
    main()
