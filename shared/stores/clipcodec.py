"""``ClipTargets`` <-> named arrays + JSON metadata (shared by both shard formats)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from geovr.shared.features import stored_numpy_dtype
from geovr.shared.manifest import StoreHeader
from geovr.shared.safety import CorruptStoreError
from geovr.shared.schema import ClipTargets, ResizeSpec, VideoRef

__all__ = ["FRAME_ARRAYS", "clip_from_parts", "clip_to_parts", "feat_name", "frame_shapes", "pca_names", "scale_name"]

FRAME_ARRAYS = ("pose_enc", "extrinsics", "intrinsics", "depth", "depth_conf")
"""Per-frame arrays every clip has (features add ``feat_lXX``)."""


def feat_name(layer: int) -> str:
    """Array / member name of a feature layer: ``feat_l04``."""
    return f"feat_l{int(layer):02d}"


def scale_name(layer: int) -> str:
    """Array / member name of an int8 layer's per-channel scales: ``feat_l04_scale``."""
    return f"{feat_name(layer)}_scale"


def pca_names(layer: int) -> tuple[str, str]:
    """Per-clip array names of a PCA-reduced layer: ``(feat_lXX_pca_mean, feat_lXX_pca_basis)``."""
    return f"{feat_name(layer)}_pca_mean", f"{feat_name(layer)}_pca_basis"


def clip_to_parts(clip: ClipTargets, header: StoreHeader) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Validate ``clip`` against ``header``; return ``(meta, per_frame_arrays, per_clip_arrays)``.

    Per-frame arrays have a leading ``S`` axis and the store's dtypes (pose/camera float32, depth
    cast to ``header.depth_dtype``); per-clip arrays are the int8 feature scales ``[C]`` and, for
    PCA-reduced features, the PCA mean ``[C]`` (float32) and basis ``[k, C]`` (float16).
    Raises ``ValueError`` naming the clip on any mismatch.
    """
    clip.validate()
    ddt = np.float16 if header.depth_dtype == "fp16" else np.float32
    frame = {
        "pose_enc": np.ascontiguousarray(clip.pose_enc, dtype=np.float32),
        "extrinsics": np.ascontiguousarray(clip.extrinsics, dtype=np.float32),
        "intrinsics": np.ascontiguousarray(clip.intrinsics, dtype=np.float32),
        "depth": np.ascontiguousarray(clip.depth, dtype=ddt),
        "depth_conf": np.ascontiguousarray(clip.depth_conf, dtype=ddt),
    }
    per_clip: dict[str, np.ndarray] = {}
    spec = header.features
    want = set(spec.layers)
    if set(clip.features) != want:
        raise ValueError(f"clip {clip.clip_id!r}: feature layers {sorted(clip.features)} != store layers {sorted(want)}")
    fdt = stored_numpy_dtype(spec.dtype)
    for layer in spec.layers:
        f = clip.features[layer]
        if f.dtype != fdt:
            raise ValueError(
                f"clip {clip.clip_id!r}: features[{layer}] dtype {f.dtype} != {fdt} required by FeatureSpec.dtype "
                f"{spec.dtype!r} (encode with geovr.shared.features.encode_features)"
            )
        frame[feat_name(layer)] = np.ascontiguousarray(f)
        if spec.dtype == "int8":
            if layer not in clip.feature_scales:
                raise ValueError(f"clip {clip.clip_id!r}: int8 features[{layer}] without feature_scales[{layer}]")
            per_clip[scale_name(layer)] = np.ascontiguousarray(clip.feature_scales[layer], dtype=np.float32)
        if spec.pca_dims:
            if layer not in clip.feature_pca_basis or f.shape[-1] != spec.pca_dims:
                raise ValueError(f"clip {clip.clip_id!r}: features[{layer}] must be {spec.pca_dims}-dim PCA codes with "
                                 f"their basis (FeatureSpec.pca_dims), got shape {f.shape}")
            mean_name, basis_name = pca_names(layer)
            per_clip[mean_name] = np.ascontiguousarray(clip.feature_pca_mean[layer], dtype=np.float32)
            per_clip[basis_name] = np.ascontiguousarray(clip.feature_pca_basis[layer], dtype=np.float16)
        elif layer in clip.feature_pca_basis:
            raise ValueError(f"clip {clip.clip_id!r}: PCA-reduced features in a store without FeatureSpec.pca_dims")
    return clip.meta_dict(), frame, per_clip


def frame_shapes(frame_arrays: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """Per-frame shape (shape without the leading ``S``) of each array."""
    return {k: tuple(v.shape[1:]) for k, v in frame_arrays.items()}


def clip_from_parts(
    meta: dict[str, Any], arrays: dict[str, np.ndarray], frames: list[bytes], header: StoreHeader, where: str
) -> ClipTargets:
    """Rebuild a ``ClipTargets`` from stored parts; ``where`` names the shard/clip in errors."""
    try:
        ms = meta.get("metric_scale")
        features, scales, pca_mean, pca_basis = {}, {}, {}, {}
        for layer in header.features.layers:
            features[layer] = arrays[feat_name(layer)]
            if header.features.dtype == "int8":
                scales[layer] = arrays[scale_name(layer)]
            if header.features.pca_dims:
                mean_name, basis_name = pca_names(layer)
                pca_mean[layer] = np.asarray(arrays[mean_name], dtype=np.float32)
                pca_basis[layer] = np.asarray(arrays[basis_name], dtype=np.float16)
        clip = ClipTargets(
            clip_id=str(meta["clip_id"]),
            video=VideoRef.from_dict(meta["video"]),
            frame_indices=np.asarray(meta["frame_indices"], dtype=np.int64),
            timestamps=np.asarray(meta["timestamps"], dtype=np.float64),
            resize=ResizeSpec.from_dict(meta["resize"]),
            frames=list(frames),
            pose_enc=arrays["pose_enc"],
            extrinsics=arrays["extrinsics"],
            intrinsics=arrays["intrinsics"],
            depth=arrays["depth"],
            depth_conf=arrays["depth_conf"],
            metric_scale=math.nan if ms is None else float(ms),
            scale_source=str(meta["scale_source"]),
            features=features,
            feature_scales=scales,
            scale_model=str(meta.get("scale_model", "")),
            scale_sky_masked=bool(meta.get("scale_sky_masked", False)),
            feature_pca_mean=pca_mean,
            feature_pca_basis=pca_basis,
            teacher_input=ResizeSpec.from_dict(meta["teacher_input"]) if meta.get("teacher_input") else None,
            teacher_mode=str((meta.get("teacher_input") or {}).get("mode", "")),
            start_frame=int(meta.get("start_frame", 0)),
            end_frame=None if meta.get("end_frame") is None else int(meta["end_frame"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CorruptStoreError(f"{where}: incomplete clip record ({type(e).__name__}: {e})") from e
    try:
        clip.validate()
    except ValueError as e:
        raise CorruptStoreError(f"{where}: {e}") from e
    return clip
