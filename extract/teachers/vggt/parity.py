"""Check geovr's VGGT against the official implementation on the same weights and input.

    python -m geovr.extract.teachers.vggt.parity --reference-code ~/src/vggt --weights /ckpt/VGGT-1B/model.pt

``--reference-code`` is a checkout of github.com/facebookresearch/vggt (the folder that contains the
``vggt`` package); nothing of it is copied, it is imported from there. Both models get the same weights
and the same frames (seeded random, or ``--images``), run in fp32 (no autocast, TF32 off), and the script
prints the largest absolute difference per output: pose encoding, depth, depth confidence and the
aggregated tokens of the depth head's four layers. Exit 0 if every difference is at most
``--tol`` x the output's largest magnitude, 1 otherwise, 2 on bad usage.

The official model is used through its public parts only: ``vggt.models.vggt.VGGT()`` and its
``aggregator(images) -> (tokens_list, patch_start_idx)``, ``camera_head(tokens_list)[-1]`` and
``depth_head(tokens_list, images=..., patch_start_idx=...)``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _frames(args: argparse.Namespace):
    import numpy as np
    import torch

    if args.images:
        from PIL import Image

        files = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not files:
            _fail(f"{args.images}: no .jpg/.png images")
        h, w = args.size
        imgs = [np.asarray(Image.open(f).convert("RGB").resize((w, h), Image.Resampling.BICUBIC)) for f in
                files[: args.frames]]
        return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float().div(255.0)
    g = torch.Generator().manual_seed(args.seed)
    return torch.rand(args.frames, 3, *args.size, generator=g)


def _reference(code: Path, state: dict):
    sys.path.insert(0, str(code))
    try:
        from vggt.models.vggt import VGGT as Official
    except ImportError as e:
        _fail(f"{code}: cannot import vggt.models.vggt ({e}); pass the folder that contains the vggt package")
    ref = Official()
    missing, unexpected = ref.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("point_head.", "track_head."))]
    if missing or unexpected:
        _fail(f"weights do not fit the official model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return ref


def compare(args: argparse.Namespace) -> dict[str, tuple[float, float]]:
    """``{output: (max abs difference, max |reference|)}``."""
    import torch

    from geovr.extract.teachers.vggt.model import VGGTConfig
    from geovr.extract.teachers.vggt.teacher import (
        DROPPED_PREFIXES,
        _read_state_dict,
        load_vggt,
        resolve_weights,
    )

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    if args.config.endswith(".json"):
        raw = json.loads(Path(args.config).read_text())
        cfg = VGGTConfig(**raw.get("config", raw))
    else:
        cfg = getattr(VGGTConfig, args.config)()
    path = resolve_weights(args.weights)
    ours, _ = load_vggt(path, cfg)
    ref = _reference(Path(args.reference_code), _read_state_dict(path))
    assert all(k.startswith(DROPPED_PREFIXES) for k in set(ref.state_dict()) - set(ours.state_dict()))
    ours, ref = ours.to(args.device).eval(), ref.to(args.device).eval()
    x = _frames(args).to(args.device)[None]
    res = {}
    with torch.no_grad():
        tokens, p0 = ref.aggregator(x)
        want = {"pose_enc": ref.camera_head(tokens)[-1]}
        depth, conf = ref.depth_head(tokens, images=x, patch_start_idx=p0)
        want["depth"], want["depth_conf"] = depth.reshape(conf.shape), conf
        got = ours(x, bf16=False)
        layers = ours.aggregator(x, set(cfg.dpt_layers))
        for i in cfg.dpt_layers:
            want[f"layer{i}"], got[f"layer{i}"] = tokens[i], layers[i]
        for k, v in want.items():
            res[k] = (float((got[k].float() - v.float()).abs().max()), float(v.abs().max()))
    return res


def _commit(code: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m geovr.extract.teachers.vggt.parity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference-code", required=True, help="folder containing the official vggt package")
    ap.add_argument("--weights", required=True, help="checkpoint (.pt/.safetensors) or hub id, as for geovr extract")
    ap.add_argument("--config", default="vggt_1b", help="geovr VGGTConfig preset or a JSON file of its fields")
    ap.add_argument("--frames", type=int, default=2, help="frames (S)")
    ap.add_argument("--size", type=int, nargs=2, default=(294, 518), metavar=("H", "W"),
                    help="input height and width, multiples of 14 (default 294 518: resizes the position embedding)")
    ap.add_argument("--images", default="", help="folder of images to use instead of seeded random frames")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random frames")
    ap.add_argument("--device", default="cpu", help="torch device (fp32 either way)")
    ap.add_argument("--tol", type=float, default=1e-5, help="pass if max diff <= tol * max |reference| per output")
    args = ap.parse_args(argv)
    if not (Path(args.reference_code) / "vggt").is_dir():
        _fail(f"{args.reference_code}: no vggt package folder in it")
    if args.size[0] % 14 or args.size[1] % 14 or args.frames < 1:
        _fail("--size must be multiples of 14 and --frames >= 1")
    res = compare(args)
    print(f"reference {args.reference_code} (commit {_commit(Path(args.reference_code))}), weights {args.weights}, "
          f"{args.frames} frames {args.size[0]}x{args.size[1]}, fp32 on {args.device}")
    print(f"{'output':<12} {'max_abs_diff':>13} {'max_abs_ref':>12}  ok (tol {args.tol:g} x max_abs_ref)")
    ok = True
    for k, (d, m) in res.items():
        good = d <= args.tol * max(m, 1e-12)
        ok &= good
        print(f"{k:<12} {d:>13.3e} {m:>12.4g}  {'yes' if good else 'NO'}")
    print("PARITY OK" if ok else "PARITY FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
