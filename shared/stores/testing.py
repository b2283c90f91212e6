"""Tiny synthetic ``ClipTargets`` and headers for tests (stores, extract, train); numpy + PIL only."""

from __future__ import annotations

import io

import numpy as np

from geovr.shared.features import FeatureSpec, encode_features
from geovr.shared.manifest import StoreHeader
from geovr.shared.schema import ClipTargets, ResizeSpec, TeacherInfo, VideoRef

__all__ = ["make_clip", "make_header"]


def make_header(fmt: str = "zarr", dtype: str = "fp16", layers: tuple[int, ...] = (4, 11), **kw: object) -> StoreHeader:
    """A header for a tiny fake teacher storing ``layers`` in ``dtype``."""
    fields: dict[str, object] = {
        "format": fmt,
        "teacher": TeacherInfo(name="fake", version="tiny", feature_layers=layers),
        "sampling": {"num_frames": 4, "stride": 2},
        "features": FeatureSpec(layers=layers, dtype=dtype),
        "created_by": {"geovr": "test"},
    }
    return StoreHeader(**{**fields, **kw})  # type: ignore[arg-type]


def _jpeg(rng: np.random.Generator, h: int, w: int) -> bytes:
    from PIL import Image

    img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_clip(
    clip_id: str,
    header: StoreHeader,
    s: int = 3,
    hw: tuple[int, int] = (28, 42),
    grid: tuple[int, int] = (2, 3),
    channels: int = 8,
    seed: int = 0,
) -> ClipTargets:
    """A valid random clip of ``s`` frames at ``hw`` with features on ``grid`` matching ``header``."""
    rng = np.random.default_rng(seed)
    h, w = hw
    ext = np.zeros((s, 3, 4), np.float32)
    ext[:, :, :3] = np.eye(3, dtype=np.float32)
    ext[1:, :, 3] = rng.normal(size=(s - 1, 3)).astype(np.float32)
    k = np.tile(np.array([[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]], np.float32), (s, 1, 1))
    pose = np.concatenate([ext[:, :, 3], np.tile([0, 0, 0, 1], (s, 1)), rng.random((s, 2)) + 0.5], axis=1)
    ddt = np.float16 if header.depth_dtype == "fp16" else np.float32
    hd, wd = h // header.depth_downsample, w // header.depth_downsample
    feats, scales = {}, {}
    for layer in header.features.layers:
        x = rng.normal(size=(s, grid[0], grid[1], channels)).astype(np.float32)
        enc, sc = encode_features(x, header.features.dtype)
        feats[layer] = enc
        if sc is not None:
            scales[layer] = sc
    return ClipTargets(
        clip_id=clip_id,
        video=VideoRef(uri=f"videos/{clip_id.split('/')[0]}.mp4", sha256="0" * 64, fps=30.0, num_frames=100),
        frame_indices=np.arange(s, dtype=np.int64) * 2,
        timestamps=np.arange(s, dtype=np.float64) * 2 / 30.0,
        resize=ResizeSpec(src_hw=(h * 2, w * 2), crop_box=(0, 0, h * 2, w * 2), out_hw=(h, w)),
        frames=[_jpeg(rng, h, w) for _ in range(s)],
        pose_enc=pose.astype(np.float32),
        extrinsics=ext,
        intrinsics=k,
        depth=(rng.random((s, hd, wd)) * 5 + 0.1).astype(ddt),
        depth_conf=(rng.random((s, hd, wd)) + 1).astype(ddt),
        metric_scale=float(rng.random() + 0.5),
        scale_source="oracle",
        features=feats,
        feature_scales=scales,
    )
