"""Target schema v1: what one clip's cached teacher targets are.

This is the contract between stage one (``geovr extract`` writes it), stage two (``geovr
train`` reads it), the stores (Zarr / WebDataset hold exactly these fields) and other labs
(who read the stores with plain zarr / webdataset). ``shared`` imports neither stage.

Conventions (all fields):

- ``S`` frames per clip, ``H x W`` the teacher input resolution in pixels (the resolution
  depth is stored at unless ``depth_hw`` says otherwise), ``h x w`` a feature grid.
- Extrinsics are **OpenCV camera-from-world** ``[R | t]`` (x right, y down, z forward),
  with **frame 0 = world** (``extrinsics[0] == [I | 0]``).
- Intrinsics are in **pixels of the stored frames** (``frame_hw``), principal point included.
- ``pose_enc`` is VGGT's ``absT_quaR_FoV``: ``[tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]``,
  quaternion scalar-last, FoV in radians, translation in the same units as ``depth``.
- ``depth`` is z-depth along the optical axis in the **teacher's scale** (VGGT: normalised so
  that the mean point distance from camera 0 is ~1; the oracle teacher: metres).
  ``metric_scale`` ``s`` turns it into metres: ``metres = s * depth``. ``NaN`` means unknown.
- Features are teacher tokens reshaped to their patch grid, ``[S, h, w, C]``, stored in the
  dtype named by ``FeatureSpec.dtype`` (see ``geovr.shared.features`` for the codecs).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA_VERSION = "1.0"
"""Target schema version, ``MAJOR.MINOR``. A reader refuses a newer major, warns on a newer minor."""

SCALE_SOURCES = ("ground_truth", "metric_teacher", "oracle", "none")
"""Allowed ``ClipTargets.scale_source`` values (``metric_teacher`` carries the model in ``scale_model``)."""


@dataclass(frozen=True)
class TeacherInfo:
    """Which teacher produced a store's targets (provenance; part of the compatibility key)."""

    name: str
    """Teacher family, e.g. ``"vggt"`` or ``"oracle"``."""
    version: str
    """Architecture / release tag, e.g. ``"VGGT-1B"`` or ``"tiny"``."""
    weights_sha256: str = ""
    """sha256 of the weights file the teacher was loaded from (empty for weight-free teachers)."""
    feature_layers: tuple[int, ...] = ()
    """Teacher layers the features were taken from, e.g. ``(4, 11, 17, 23)``."""
    num_layers: int = 0
    """Teacher depth (layers the ``feature_layers`` index into; VGGT-1B: 24), so stage two can map teacher
    layer ``l`` onto student layer ``round((l + 1) / num_layers * L)``. 0: unknown (older stores)."""
    random_init: bool = False
    """True when the teacher ran with untrained (seeded random) weights: the targets are not a real teacher's."""

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "feature_layers": list(self.feature_layers)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TeacherInfo:
        return cls(
            name=str(d["name"]),
            version=str(d["version"]),
            weights_sha256=str(d.get("weights_sha256", "")),
            feature_layers=tuple(int(x) for x in d.get("feature_layers", ())),
            num_layers=int(d.get("num_layers", 0)),
            random_init=bool(d.get("random_init", False)),
        )


@dataclass(frozen=True)
class ResizeSpec:
    """How the decoded source frames were turned into the stored frames.

    Order: centre-crop the source to ``crop_box`` (in source pixels), then resize to
    ``out_hw`` with ``interpolation``. Intrinsics refer to the output pixels.
    """

    src_hw: tuple[int, int]
    """Decoded source frame size ``(height, width)`` in pixels."""
    crop_box: tuple[int, int, int, int]
    """``(top, left, height, width)`` of the region kept, in source pixels (full frame if no crop)."""
    out_hw: tuple[int, int]
    """Stored frame size ``(height, width)`` in pixels (the teacher input size)."""
    interpolation: str = "bicubic"
    """Resampling filter used for the resize (``bicubic`` as in VGGT's preprocessing)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "src_hw": list(self.src_hw),
            "crop_box": list(self.crop_box),
            "out_hw": list(self.out_hw),
            "interpolation": self.interpolation,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResizeSpec:
        return cls(
            src_hw=tuple(int(x) for x in d["src_hw"]),  # type: ignore[arg-type]
            crop_box=tuple(int(x) for x in d["crop_box"]),  # type: ignore[arg-type]
            out_hw=tuple(int(x) for x in d["out_hw"]),  # type: ignore[arg-type]
            interpolation=str(d.get("interpolation", "bicubic")),
        )


@dataclass(frozen=True)
class VideoRef:
    """The source a clip came from."""

    uri: str
    """Path or URL of the video file or image folder, as written in the corpus manifest."""
    sha256: str
    """sha256 of the video file's bytes (of the sorted frame files, for image folders)."""
    fps: float
    """Native frame rate of the source in frames/second (``NaN`` if unknown)."""
    num_frames: int
    """Number of decodable frames in the source."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoRef:
        return cls(uri=str(d["uri"]), sha256=str(d["sha256"]), fps=float(d["fps"]), num_frames=int(d["num_frames"]))


@dataclass
class ClipTargets:
    """One clip's cached targets (the unit a store writes and a reader returns).

    Array fields are numpy arrays; ``features`` maps teacher layer index to an encoded array
    (see ``geovr.shared.features``: bf16 is stored as its uint16 bit pattern, int8 comes with
    per-channel float32 scales in ``feature_scales``).
    """

    clip_id: str
    """Unique, dot-free clip key, e.g. ``"scene0001/00000"`` (WebDataset splits keys at dots)."""
    video: VideoRef
    """Source video reference and content hash."""
    frame_indices: np.ndarray
    """int64 ``[S]``: indices of the sampled frames in the decoded source, strictly increasing."""
    timestamps: np.ndarray
    """float64 ``[S]``: presentation time of each sampled frame, seconds from the source start."""
    resize: ResizeSpec
    """Crop and resize applied to every sampled frame."""
    frames: list[bytes]
    """``S`` encoded images (JPEG or PNG bytes) of exactly the frames the teacher saw, at ``resize.out_hw``."""
    pose_enc: np.ndarray
    """float32 ``[S, 9]``: ``absT_quaR_FoV`` (t xyz, quaternion xyzw, fov_h, fov_w in radians)."""
    extrinsics: np.ndarray
    """float32 ``[S, 3, 4]``: OpenCV camera-from-world, frame 0 = world, translation in depth units."""
    intrinsics: np.ndarray
    """float32 ``[S, 3, 3]``: pinhole intrinsics in pixels of the stored frames."""
    depth: np.ndarray
    """float16/float32 ``[S, Hd, Wd]``: z-depth in teacher units (``metres = metric_scale * depth``); 0 = invalid."""
    depth_conf: np.ndarray
    """float16/float32 ``[S, Hd, Wd]``: teacher confidence (VGGT: ``1 + exp(c)`` >= 1; oracle: 1 valid / 0 invalid)."""
    metric_scale: float
    """Scalar ``s`` with ``metric_depth ~= s * depth`` (least squares over confident pixels); NaN if unknown."""
    scale_source: str
    """Where ``metric_scale`` came from: one of ``SCALE_SOURCES``."""
    features: dict[int, np.ndarray] = field(default_factory=dict)
    """Teacher layer -> encoded feature array ``[S, h, w, C]`` (dtype per ``FeatureSpec``)."""
    feature_scales: dict[int, np.ndarray] = field(default_factory=dict)
    """For int8 features only: teacher layer -> float32 ``[C]`` dequantisation scales."""
    scale_model: str = ""
    """The metric-depth model behind ``metric_scale`` when ``scale_source == "metric_teacher"``."""
    scale_sky_masked: bool = False
    """True when sky pixels (the metric model's own sky prediction) were left out of the scale fit."""
    feature_pca_mean: dict[int, np.ndarray] = field(default_factory=dict)
    """For PCA-reduced features only: teacher layer -> float32 ``[C]`` mean of the clip's tokens."""
    feature_pca_basis: dict[int, np.ndarray] = field(default_factory=dict)
    """For PCA-reduced features only: teacher layer -> float16 ``[k, C]`` orthonormal basis (stored ``k``-dim codes)."""

    def decoded_features(self, dtype: str) -> dict[int, np.ndarray]:
        """Teacher layer -> float32 ``[S, h, w, C]`` features in the teacher's channel space
        (undoing the ``dtype`` encoding and, when present, the PCA)."""
        from geovr.shared.features import decode_features, pca_decode

        out = {}
        for layer, a in self.features.items():
            x = decode_features(a, dtype, self.feature_scales.get(layer))
            if layer in self.feature_pca_basis:
                x = pca_decode(x, self.feature_pca_mean[layer], self.feature_pca_basis[layer])
            out[layer] = x
        return out

    @property
    def num_frames(self) -> int:
        return int(self.frame_indices.shape[0])

    def validate(self) -> None:
        """Check shapes, dtypes and finiteness; raise ``ValueError`` naming the clip and field."""
        s = self.num_frames

        def bad(msg: str) -> ValueError:
            return ValueError(f"clip {self.clip_id!r}: {msg}")

        if "." in self.clip_id or not self.clip_id:
            raise bad("clip_id must be non-empty and contain no '.' (WebDataset key rule)")
        if s < 1:
            raise bad("no frames")
        expect = {
            "timestamps": (s,),
            "pose_enc": (s, 9),
            "extrinsics": (s, 3, 4),
            "intrinsics": (s, 3, 3),
        }
        for name, shape in expect.items():
            arr = getattr(self, name)
            if tuple(arr.shape) != shape:
                raise bad(f"{name} has shape {tuple(arr.shape)}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                raise bad(f"{name} has non-finite values")
        if np.any(np.diff(self.frame_indices) <= 0):
            raise bad("frame_indices must be strictly increasing")
        if len(self.frames) != s:
            raise bad(f"{len(self.frames)} encoded frames for {s} frame indices")
        if self.depth.ndim != 3 or self.depth.shape[0] != s:
            raise bad(f"depth has shape {tuple(self.depth.shape)}, expected [S={s}, H, W]")
        if self.depth_conf.shape != self.depth.shape:
            raise bad(f"depth_conf shape {tuple(self.depth_conf.shape)} != depth shape {tuple(self.depth.shape)}")
        if not np.all(np.isfinite(self.depth)):
            raise bad("depth has non-finite values")
        if self.scale_source not in SCALE_SOURCES:
            raise bad(f"scale_source {self.scale_source!r} not in {SCALE_SOURCES}")
        if self.scale_source != "none" and not (math.isfinite(self.metric_scale) and self.metric_scale > 0):
            raise bad(f"metric_scale {self.metric_scale} must be finite and > 0 when scale_source != 'none'")
        for layer, feat in self.features.items():
            if feat.ndim != 4 or feat.shape[0] != s:
                raise bad(f"features[{layer}] has shape {tuple(feat.shape)}, expected [S={s}, h, w, C]")
            if layer in self.feature_scales and self.feature_scales[layer].shape != (feat.shape[-1],):
                raise bad(f"feature_scales[{layer}] must have shape [C={feat.shape[-1]}]")
            if (layer in self.feature_pca_basis) != (layer in self.feature_pca_mean):
                raise bad(f"features[{layer}]: PCA basis and mean must come together")
            if layer in self.feature_pca_basis:
                basis, mean = self.feature_pca_basis[layer], self.feature_pca_mean[layer]
                if basis.ndim != 2 or basis.shape[0] != feat.shape[-1] or mean.shape != (basis.shape[1],):
                    raise bad(f"features[{layer}]: PCA basis {tuple(basis.shape)} / mean {tuple(mean.shape)} do not "
                              f"fit {feat.shape[-1]}-dim codes")

    def meta_dict(self) -> dict[str, Any]:
        """The non-array, JSON-serialisable part of the clip (stored as per-clip metadata)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "clip_id": self.clip_id,
            "video": self.video.to_dict(),
            "frame_indices": [int(i) for i in self.frame_indices],
            "timestamps": [float(t) for t in self.timestamps],
            "resize": self.resize.to_dict(),
            "metric_scale": None if math.isnan(self.metric_scale) else float(self.metric_scale),
            "scale_source": self.scale_source,
            "scale_model": self.scale_model,
            "scale_sky_masked": bool(self.scale_sky_masked),
        }
