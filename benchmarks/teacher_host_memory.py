"""Host memory of the VGGT teacher's feature hand-off, before/after device-side reduction (issue #18 item 2).

One clip through ``teacher(...)`` + ``build_targets`` (the stored result), each mode in a fresh process:

- ``host copy (before)``: the teacher returns every requested layer's full ``[S, h, w, 2C]`` float32 output and
  ``extract/targets.py`` slices the frame half and pools in numpy (``spec=None``, the old path);
- ``device reduce (after)``: the teacher slices, pools and casts on its device and hands over only what the
  store keeps (``spec=FeatureSpec``, what ``geovr extract`` now does).

Columns (growth of the resident set over the process after the model is built and the clip is in memory):
``feature_MiB`` = bytes of the features the teacher hands over; ``held_after_teacher_MiB`` = resident when the
teacher call returns (what target assembly and the writer queue keep alive per clip); ``peak_targets_MiB`` =
peak while ``build_targets`` runs; ``peak_call_MiB`` = peak over teacher + targets (on CPU the forward's
activations are host memory too; on a GPU only the hand-off and the targets are). Peaks are Linux ``VmHWM``
after resetting it (``clear_refs``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import machine, table  # noqa: E402


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def child(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from geovr.extract.targets import build_targets
    from geovr.extract.teachers.vggt import VGGTConfig, build
    from geovr.shared.features import FeatureSpec
    from geovr.shared.manifest import StoreHeader
    from geovr.shared.schema import ResizeSpec, VideoRef

    torch.set_num_threads(args.threads)
    d = args.embed_dim
    layers = (1, 3, 5, 7)
    cfg = VGGTConfig(img_size=224, embed_dim=d, depth=8, num_heads=d // 64, patch_embed="conv", camera_trunk_depth=1,
                     camera_heads=d // 64, dpt_features=64, dpt_out_channels=[64, 128, 256, 256], dpt_layers=list(layers))
    teacher = build(config=cfg, device="cpu", layers=layers, random_init=True)
    spec = FeatureSpec(layers=layers, channels="frame", pool=2, dtype="bf16")
    header = StoreHeader(format="zarr", teacher=teacher.info, features=spec)
    s, h, w = args.frames, args.height, args.width
    x = torch.rand(s, 3, h, w)
    frames = np.zeros((s, h, w, 3), np.uint8)
    base = _status("VmRSS")
    _reset_peak()
    out = teacher(x, layers, spec=spec if args.mode == "after" else None)
    held = _status("VmRSS")
    peak_teacher = _status("VmHWM")
    _reset_peak()
    feat_bytes = sum(t.numel() * t.element_size() for t in out.features.values())
    clip = build_targets("c", VideoRef("v.mp4", "0" * 64, 2.0, s), np.arange(s), np.arange(s, dtype=float),
                         ResizeSpec((h, w), (0, 0, h, w), (h, w)), frames, out, header, 1.0, "ground_truth")
    del clip
    peak_targets = _status("VmHWM")
    mib = 1 / 2**20
    return {"feature_MiB": feat_bytes * mib, "held_after_teacher_MiB": (held - base) * mib,
            "peak_targets_MiB": (peak_targets - base) * mib,
            "peak_call_MiB": (max(peak_teacher, peak_targets) - base) * mib}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=32, help="frames of the clip")
    ap.add_argument("--height", type=int, default=168, help="teacher input height (multiple of 14)")
    ap.add_argument("--width", type=int, default=308, help="teacher input width (multiple of 14)")
    ap.add_argument("--embed-dim", type=int, default=512, help="VGGT width (2x in the layer outputs); 8 layers")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--mode", choices=["before", "after"], help=argparse.SUPPRESS)  # child process
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(child(args)))
        return
    rows = []
    for mode, name in (("before", "host copy (before)"), ("after", "device reduce (after)")):
        cmd = [sys.executable, __file__, "--mode", mode] + [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                                                             if k != "mode"]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append({"row": name, **json.loads(res.stdout.strip().splitlines()[-1])})
    print(f"machine: {machine()}")
    print(f"config: 1 clip x {args.frames} frames {args.height}x{args.width}, random VGGT {args.embed_dim}d x 8 layers "
          f"(conv patch embed), 4 layers cached, frame half, 2x2 pool, bf16; cpu, {args.threads} threads\n")
    cols = ["row", "feature_MiB", "held_after_teacher_MiB", "peak_targets_MiB", "peak_call_MiB"]
    print(table(rows, cols))
    print(f"\nfeature hand-off ratio before/after: {rows[0]['feature_MiB'] / rows[1]['feature_MiB']:.1f}x")


if __name__ == "__main__":
    main()
