"""``geovr shards show``: one PNG per clip (frames, depth, feature PCA, camera trajectory)."""

from __future__ import annotations

import io

import numpy as np

from geovr.shared.schema import ClipTargets

__all__ = ["camera_centres", "feature_pca_rgb", "render_clip"]


def camera_centres(extrinsics: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``[S, 3]`` and forward (+z) directions ``[S, 3]`` in world of camera-from-world ``[S, 3, 4]``."""
    r = extrinsics[:, :, :3].astype(np.float64)
    t = extrinsics[:, :, 3].astype(np.float64)
    centres = -np.einsum("sji,sj->si", r, t)
    forward = r[:, 2, :]  # R^T e_z
    return centres, forward


def feature_pca_rgb(feat: np.ndarray) -> np.ndarray:
    """float32 ``[S, h, w, C]`` -> RGB in ``[0, 1]`` ``[S, h, w, 3]`` from the top-3 principal components."""
    s, h, w, c = feat.shape
    x = feat.reshape(-1, c).astype(np.float64)
    x = x - x.mean(axis=0)
    if c == 0 or not np.any(x):
        return np.zeros((s, h, w, 3))
    _u, _sv, vt = np.linalg.svd(x, full_matrices=False)
    proj = x @ vt[:3].T
    if proj.shape[1] < 3:
        proj = np.pad(proj, ((0, 0), (0, 3 - proj.shape[1])))
    lo, hi = np.percentile(proj, 1, axis=0), np.percentile(proj, 99, axis=0)
    rgb = np.clip((proj - lo) / np.where(hi > lo, hi - lo, 1.0), 0, 1)
    return rgb.reshape(s, h, w, 3)


def render_clip(
    clip: ClipTargets, feature_dtype: str, out_png: str, layer: int | None = None,
    max_frames: int = 4, size_px: tuple[int, int] = (1200, 800),
) -> None:
    """Write a ``size_px = (width, height)`` PNG: frames, depth (turbo), PCA of one feature layer, trajectory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    s = clip.num_frames
    idx = np.unique(np.linspace(0, s - 1, min(max_frames, s)).round().astype(int))
    n = len(idx)
    layers = sorted(clip.features)
    if layer is None and layers:
        layer = layers[0]
    if layer is not None and layer not in clip.features:
        raise ValueError(f"clip {clip.clip_id!r} has no feature layer {layer}; stored layers: {layers}")
    pca = None
    if layer is not None:
        feat = clip.decoded_features(feature_dtype)[layer]
        pca = feature_pca_rgb(feat)
    dpi = 100
    fig = plt.figure(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi)
    grid = fig.add_gridspec(3, n + 1, width_ratios=[1] * n + [1.3], wspace=0.35)
    depth = clip.depth.astype(np.float32)
    valid = depth[depth > 0]
    vmin, vmax = (np.percentile(valid, [2, 98]) if valid.size else (0.0, 1.0))
    for col, i in enumerate(idx):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(np.asarray(Image.open(io.BytesIO(clip.frames[i])).convert("RGB")))
        ax.set_title(f"frame {clip.frame_indices[i]}", fontsize=8)
        ax.axis("off")
        ax = fig.add_subplot(grid[1, col])
        ax.imshow(np.ma.masked_equal(depth[i], 0), cmap="turbo", vmin=vmin, vmax=vmax)
        ax.set_title("depth", fontsize=8)
        ax.axis("off")
        ax = fig.add_subplot(grid[2, col])
        if pca is not None:
            ax.imshow(pca[i], interpolation="nearest")
            ax.set_title(f"PCA feat l{layer}", fontsize=8)
        ax.axis("off")
    ax = fig.add_subplot(grid[:, n])
    c, f = camera_centres(clip.extrinsics)
    ax.plot(c[:, 0], c[:, 2], "-o", ms=3, color="tab:blue")
    span = float(np.ptp(c[:, [0, 2]], axis=0).max()) or 1.0
    ax.quiver(c[:, 0], c[:, 2], f[:, 0], f[:, 2], angles="xy", scale_units="xy", scale=4 / span, color="tab:red", width=0.005)
    ax.plot(c[0, 0], c[0, 2], "ks", ms=6)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (depth units)")
    ax.set_ylabel("z (depth units)")
    ax.set_title("camera trajectory (top view)", fontsize=9)
    fig.suptitle(f"{clip.clip_id}  S={s}  metric_scale={clip.metric_scale:.3g} ({clip.scale_source})", fontsize=10)
    fig.savefig(out_png, dpi=dpi)
    plt.close(fig)
