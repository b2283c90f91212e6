"""Storage per frame of each preset, and the fidelity each costs.

Presets (per frame, teacher input 504x378, 4 layers on a 13x18 pooled grid):

- ``paper``: the exact recipe — 1024 channels bf16, full-resolution fp16 depth + confidence, JPEG frame.
- ``int8``: per-channel int8 features, full-resolution depth.
- ``compact``: int8 features, half-resolution depth (what ``geovr extract --preset compact`` writes).
- ``compact+pca256``: additionally a per-layer PCA to 256 channels fit on a sample of the corpus
  (basis stored once per store; NOT yet written by the stores — measured here as the next step).

Fidelity: mean cosine of reconstructed to original features; depth AbsRel of the stored depth
(upsampled back, nearest) against the full-resolution float32 depth of the synthetic corpus.

Features: real VGGT weights cannot be downloaded here, so by default the features are synthetic
with a power-law channel spectrum (singular values ~ k^-alpha, like ViT activations); pass
``--store PATH`` to measure on the features of a real target store instead.

    python benchmarks/storage.py [--alpha 1.0] [--store STORE]
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


def pca_roundtrip(x: np.ndarray, k: int, fit_rows: int) -> np.ndarray:
    mean = x[:fit_rows].mean(0)
    _, _, vt = np.linalg.svd(x[:fit_rows] - mean, full_matrices=False)
    basis = vt[:k]
    return (x - mean) @ basis.T @ basis + mean


def render_fixture() -> tuple[np.ndarray, np.ndarray]:
    """A rendered RGB frame ``[H, W, 3]`` and metric depth ``[S, H, W]`` at the paper's teacher size."""
    import av

    from geovr.synth.config import SynthConfig
    from geovr.synth.corpus import render_corpus

    h, w = PAPER["hw"]
    with tempfile.TemporaryDirectory() as d:
        render_corpus(d, SynthConfig(clips=1, frames=4, height=h, width=w), progress=False)
        with av.open(str(Path(d) / "videos" / "synth_0000.mp4")) as container:
            rgb = next(container.decode(video=0)).to_ndarray(format="rgb24")
        return rgb, np.load(Path(d) / "gt" / "synth_0000" / "depth.npy", allow_pickle=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alpha", type=float, default=1.0, help="power-law exponent of the synthetic spectrum")
    ap.add_argument("--store", default="", help="measure on the features of this target store instead")
    ap.add_argument("--pca", type=int, default=256, help="PCA channels for the compact+pca preset")
    args = ap.parse_args()

    from geovr.shared.features import decode_features, encode_features

    gh, gw = PAPER["feat_grid"]
    tokens = gh * gw
    layers = len(PAPER["feat_layers"])
    c = PAPER["feat_channels"]
    if args.store:
        from geovr.shared.stores import StoreReader

        clip = next(iter(StoreReader(args.store)))
        layer = sorted(clip.features)[0]
        x = decode_features(clip.features[layer], "bf16" if clip.features[layer].dtype == np.uint16 else "fp32",
                            clip.feature_scales.get(layer)).reshape(-1, clip.features[layer].shape[-1])
        c = x.shape[1]
        source = f"store {args.store} layer {layer}"
    else:
        x = synthetic_features(4096, c, args.alpha)
        source = f"synthetic power-law alpha={args.alpha}"
    rgb, depth = render_fixture()
    h, w = PAPER["hw"]
    frame_bytes = len(jpeg(rgb, 95))

    def feat(dtype: str, k: int | None = None) -> tuple[int, float]:
        src = pca_roundtrip(x, k, fit_rows=2048) if k else x
        enc, scales = encode_features(src.reshape(1, 1, -1, src.shape[1]), dtype)
        rec = decode_features(enc, dtype, scales).reshape(src.shape)
        per_frame = layers * tokens * (k or c) * enc.dtype.itemsize
        return per_frame, cosine(rec, x)

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
        f"compact+pca{args.pca}": (feat("int8", args.pca), dep(2)),
    }
    paper_total = presets["paper"][0][0] + presets["paper"][1][0] + frame_bytes
    rows = []
    for name, ((fb, cos), (db, absrel)) in presets.items():
        total = fb + db + frame_bytes
        rows.append({"preset": name, "feat_KB": fb / 1e3, "depth_KB": db / 1e3, "jpeg_KB": frame_bytes / 1e3,
                     "total_KB/frame": total / 1e3, "vs_paper": total / paper_total, "feat_cos": round(cos, 5),
                     "depth_absrel": absrel, "MB/32f_clip": 32 * total / 1e6})
    print(f"machine: {machine()}\nfeatures: {source}\n")
    print(table(rows, list(rows[0])))
    print("\ngoal: compact <= 25 % of paper with feature cosine >= 0.98")


if __name__ == "__main__":
    main()
