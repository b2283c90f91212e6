"""Storage per frame of each preset, and the fidelity each costs.

Shapes follow the extraction contract for a source size (``--source-hw``, default 480 640): the
student frame is the Qwen-VL ``smart_resize`` of the paper's budget (300 merged tokens per frame at
32 frames), stored as JPEG; the teacher input is derived from it (``stretch``: longest edge 504, a
multiple of 28); features sit on the teacher's 14-px patch grid, 2x2 average-pooled (floor).

Presets (per frame, 4 layers):

- ``paper``: the exact recipe — 1024 channels bf16, full-resolution fp16 depth + confidence, JPEG frame.
- ``int8``: per-channel int8 features, full-resolution depth.
- ``compact``: int8 features, half-resolution depth (what ``geovr extract --preset compact`` writes).
- ``compact-pca``: additionally each clip's features projected on their own top-256 principal
  directions per layer (``--preset compact-pca``; the float16 basis travels with the clip and is
  counted here, spread over the clip's frames).

Fidelity: mean cosine of reconstructed to original features; depth AbsRel of the stored depth
(upsampled back, nearest) against the full-resolution float32 depth of the synthetic corpus.

Features: real VGGT weights cannot be downloaded here, so by default the features are synthetic
with a power-law channel spectrum (singular values ~ k^-alpha, like ViT activations); pass
``--store PATH`` to measure on the features of a real target store instead.

    python benchmarks/storage.py [--alpha 1.0] [--source-hw 480 640] [--store STORE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import PAPER, jpeg, machine, table  # noqa: E402


def synthetic_features(n: int, c: int, alpha: float, seed: int = 0) -> np.ndarray:
    """``[n, c]`` float32 with singular values ~ k^-alpha in a random basis."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(c, c)))[0]
    coeffs = rng.normal(size=(n, c)) * (np.arange(1, c + 1) ** -alpha)
    return (coeffs @ basis.T + 0.05 * rng.normal(size=(1, c))).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12
    return float((num / den).mean())


def shapes(source_hw: tuple[int, int], frames: int) -> dict[str, tuple[int, int]]:
    """Student frame, teacher input and pooled feature grid ``(H, W)`` for a ``source_hw`` clip of ``frames``
    frames under the paper's sampling defaults (what ``geovr extract`` would store)."""
    from geovr.shared.sampling import SamplingConfig, student_size, teacher_resize

    cfg = SamplingConfig()
    frame = student_size(source_hw, frames, cfg)
    teacher = teacher_resize(frame, cfg).out_hw
    return {"frame": frame, "teacher": teacher, "feat_grid": (teacher[0] // 14 // 2, teacher[1] // 14 // 2)}


def render_fixture(frame_hw: tuple[int, int], teacher_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A rendered RGB frame ``[H, W, 3]`` at the student frame size and metric depth ``[S, h, w]`` (metres) at
    the teacher input size (two renders of the same procedural room)."""
    import av

    from geovr.synth.config import SynthConfig
    from geovr.synth.corpus import render_corpus

    out = []
    for h, w in (frame_hw, teacher_hw):
        with tempfile.TemporaryDirectory() as d:
            render_corpus(d, SynthConfig(clips=1, frames=4, height=h, width=w), progress=False)
            with av.open(str(Path(d) / "videos" / "synth_0000.mp4")) as container:
                rgb = next(container.decode(video=0)).to_ndarray(format="rgb24")
            out.append((rgb, np.load(Path(d) / "gt" / "synth_0000" / "depth.npy", allow_pickle=False)))
    return out[0][0], out[1][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alpha", type=float, default=1.0, help="power-law exponent of the synthetic spectrum")
    ap.add_argument("--store", default="", help="measure on the features of this target store instead")
    ap.add_argument("--pca", type=int, default=256, help="PCA channels for the compact-pca preset")
    ap.add_argument("--source-hw", type=int, nargs=2, default=(480, 640), metavar=("H", "W"),
                    help="source video size the stored shapes are derived from (default 480 640)")
    args = ap.parse_args()

    from geovr.shared.features import decode_features, encode_features, pca_decode, pca_encode

    shp = shapes(tuple(args.source_hw), PAPER["frames"])
    gh, gw = shp["feat_grid"]
    tokens = gh * gw
    layers = len(PAPER["feat_layers"])
    c = PAPER["feat_channels"]
    if args.store:
        from geovr.shared.stores import StoreReader

        reader = StoreReader(args.store)
        clip = reader[reader.clip_ids[0]]
        layer = sorted(clip.features)[0]
        feats = clip.decoded_features(reader.header.features.dtype)[layer]
        x, frames = feats.reshape(-1, feats.shape[-1]), clip.num_frames
        c = x.shape[1]
        source = f"store {args.store} clip {clip.clip_id} layer {layer} ({frames} frames)"
    else:
        frames = PAPER["frames"]
        x = synthetic_features(frames * tokens, c, args.alpha)
        source = f"synthetic power-law alpha={args.alpha}, one {frames}-frame clip"
    rgb, depth = render_fixture(shp["frame"], shp["teacher"])
    h, w = shp["teacher"]
    frame_bytes = len(jpeg(rgb, 95))

    def feat(dtype: str, k: int | None = None) -> tuple[float, float]:
        if not k:
            enc, scales = encode_features(x, dtype)
            return layers * tokens * c * enc.dtype.itemsize, cosine(decode_features(enc, dtype, scales), x)
        codes, mean, basis = pca_encode(x, k)  # exactly what geovr.extract.targets does per clip and layer
        enc, scales = encode_features(codes, dtype)
        rec = pca_decode(decode_features(enc, dtype, scales), mean, basis)
        per_clip = basis.nbytes + mean.nbytes + scales.nbytes
        return layers * (tokens * k * enc.dtype.itemsize + per_clip / frames), cosine(rec, x)

    def dep(down: int) -> tuple[int, float]:
        d16 = depth[:, ::down, ::down].astype(np.float16)
        up = np.repeat(np.repeat(d16, down, 1), down, 2)[:, : depth.shape[1], : depth.shape[2]].astype(np.float32)
        valid = depth > 0
        absrel = float(np.mean(np.abs(up[valid] - depth[valid]) / depth[valid]))
        return 2 * 2 * (h // down) * (w // down), absrel  # depth + confidence, fp16

    presets = {
        "paper": (feat("bf16"), dep(1)),
        "int8": (feat("int8"), dep(1)),
        "compact": (feat("int8"), dep(2)),
        "compact-pca": (feat("int8", args.pca), dep(2)),
    }
    paper_total = presets["paper"][0][0] + presets["paper"][1][0] + frame_bytes
    rows = []
    for name, ((fb, cos), (db, absrel)) in presets.items():
        total = fb + db + frame_bytes
        rows.append({"preset": name, "feat_KB": fb / 1e3, "depth_KB": db / 1e3, "jpeg_KB": frame_bytes / 1e3,
                     "total_KB/frame": total / 1e3, "vs_paper": total / paper_total, "feat_cos": round(cos, 5),
                     "depth_absrel": absrel, "MB/32f_clip": 32 * total / 1e6})
    print(f"machine: {machine()}\nfeatures: {source}\nshapes: source {args.source_hw[0]}x{args.source_hw[1]} -> "
          f"student frame {shp['frame'][0]}x{shp['frame'][1]} (JPEG), teacher input {h}x{w}, "
          f"feature grid {gh}x{gw}\n")
    print(table(rows, list(rows[0])))
    print("\ngoal: compact <= 25 % of paper with feature cosine >= 0.98")


if __name__ == "__main__":
    main()
