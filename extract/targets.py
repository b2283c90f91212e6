"""Teacher output -> ``ClipTargets``: feature channel half, pooling and encoding, depth dtype and
resolution, the JPEG frames the student sees (the teacher's input was derived from them), and the metric scale with its source."""

from __future__ import annotations

import math

import numpy as np
import torch

from geovr.extract.teachers.base import TeacherOutput
from geovr.shared.features import encode_features, pca_encode, pool_features, select_channels
from geovr.shared.manifest import StoreHeader
from geovr.shared.schema import ClipTargets, ResizeSpec, VideoRef
from geovr.shared.video import encode_jpeg


def feature_target(x: np.ndarray, channels: str, pool: int) -> np.ndarray:
    """``[S, h, w, 2C]`` -> channel slice -> ``pool x pool`` average (grid floored like ``avg_pool2d``)."""
    x = select_channels(x, channels)
    s, h, w, c = x.shape
    return pool_features(x[:, : h - h % pool, : w - w % pool], pool)


def build_targets(
    clip_id: str,
    video: VideoRef,
    frame_indices: np.ndarray,
    timestamps: np.ndarray,
    resize: ResizeSpec,
    frames: np.ndarray,
    out: TeacherOutput,
    header: StoreHeader,
    metric_scale: float,
    scale_source: str,
    scale_model: str = "",
    scale_sky_masked: bool = False,
    teacher_input: ResizeSpec | None = None,
    teacher_mode: str = "",
    start_frame: int = 0,
    end_frame: int | None = None,
) -> ClipTargets:
    """Assemble one clip's targets as the store header prescribes; raises ``ValueError`` on non-finite output.

    ``frames`` are the stored (student) frames ``[S, h, w, 3]``; ``out`` refers to the teacher input
    ``teacher_input`` made from them."""
    spec = header.features
    reduced = out.features_spec is not None
    if reduced and out.features_spec != spec:
        raise ValueError(f"clip {clip_id!r}: teacher reduced its features as {out.features_spec}, the store "
                         f"keeps {spec}")
    feats, scales, pca_mean, pca_basis = {}, {}, {}, {}
    for layer in spec.layers:
        if layer not in out.features:
            raise ValueError(f"clip {clip_id!r}: teacher returned no features for layer {layer}")
        t = out.features[layer].cpu()
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"clip {clip_id!r}: non-finite teacher features at layer {layer}")
        if reduced and t.dtype == torch.bfloat16 and spec.dtype == "bf16":  # cast on the teacher's device (RNE)
            feats[layer] = t.view(torch.int16).numpy().view(np.uint16)
            continue
        if reduced and t.dtype == torch.float16 and spec.dtype == "fp16":
            feats[layer] = t.numpy()
            continue
        x = t.float().numpy()
        if not reduced:
            x = feature_target(x, spec.channels, spec.pool)
        if spec.pca_dims:
            x, pca_mean[layer], pca_basis[layer] = pca_encode(x, spec.pca_dims)
        enc, sc = encode_features(x, spec.dtype)
        feats[layer] = enc
        if sc is not None:
            scales[layer] = sc
    ddt = np.float16 if header.depth_dtype == "fp16" else np.float32
    step = header.depth_downsample
    depth = out.depth.float().cpu().numpy()[:, ::step, ::step]
    conf = out.depth_conf.float().cpu().numpy()[:, ::step, ::step]
    if not np.isfinite(depth).all() or not np.isfinite(out.pose_enc.numpy()).all():
        raise ValueError(f"clip {clip_id!r}: non-finite teacher depth or pose")
    if header.depth_dtype == "fp16":
        conf = np.minimum(conf, np.finfo(np.float16).max)
    clip = ClipTargets(
        clip_id=clip_id, video=video, frame_indices=frame_indices.astype(np.int64),
        timestamps=timestamps.astype(np.float64), resize=resize,
        frames=[encode_jpeg(f, header.jpeg_quality) for f in frames],
        pose_enc=out.pose_enc.float().numpy(), extrinsics=out.extrinsics.float().numpy(),
        intrinsics=out.intrinsics.float().numpy(), depth=depth.astype(ddt), depth_conf=conf.astype(ddt),
        metric_scale=metric_scale if math.isfinite(metric_scale) else float("nan"),
        scale_source=scale_source if math.isfinite(metric_scale) else "none",
        scale_model=scale_model, scale_sky_masked=scale_sky_masked and math.isfinite(metric_scale),
        features=feats, feature_scales=scales, feature_pca_mean=pca_mean, feature_pca_basis=pca_basis,
        teacher_input=teacher_input, teacher_mode=teacher_mode, start_frame=start_frame, end_frame=end_frame,
    )
    clip.validate()
    return clip
