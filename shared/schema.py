"""Target schema v2: what one clip's cached teacher targets are.

This is the contract between stage one (``geovr extract`` writes it), stage two (``geovr
train`` reads it), the stores (Zarr / WebDataset hold exactly these fields) and other labs
(who read the stores with plain zarr / webdataset). ``shared`` imports neither stage.

Conventions (all fields):

- ``S`` frames per clip. Two resolutions (schema 2.0): the **stored frames** are the frames the
  *student* sees, at the student's resolution (``ClipTargets.resize.out_hw``, both sides multiples
  of the student's merged patch); the **teacher input** ``H x W`` (``ClipTargets.teacher_input.out_hw``)
  was derived from exactly those frames by the store's ``sampling.teacher_mode``
  (``geovr.shared.sampling``). ``h x w`` is a feature grid.
- **Every target refers to the teacher input pixels**: intrinsics (principal point included),
  depth and depth confidence (at ``H x W``, or ``H // d x W // d`` with the header's
  ``depth_downsample``) and the feature grid (``H / 14 / pool`` x ``W / 14 / pool`` for VGGT). A
  consumer that needs them on the stored frames maps them back with ``teacher_input`` (a crop box
  in stored-frame pixels, then a resize).
- Extrinsics are **OpenCV camera-from-world** ``[R | t]`` (x right, y down, z forward),
  with **frame 0 = world** (``extrinsics[0] == [I | 0]``).
- Intrinsics are in **pixels of the teacher input** (``teacher_input.out_hw``), principal point
  included, pixel centres at integer coordinates.
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

SCHEMA_VERSION = "2.0"
"""Target schema version, ``MAJOR.MINOR``. A reader refuses any other major, warns on a newer minor.
2.0: stored frames are the student's (``resize``), the teacher input is recorded separately
(``teacher_input``) and every target refers to it; clips record their source range."""

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


def _num(x: Any) -> int | float:
    """An integral value as ``int``, else ``float`` (crop boxes keep their JSON form stable)."""
    f = float(x)
    return int(f) if f.is_integer() else f


@dataclass(frozen=True)
class ResizeSpec:
    """One crop + resize: ``crop_box`` of the input (pixel-edge coordinates, maybe fractional), resized to ``out_hw``.

    Used twice per clip: ``ClipTargets.resize`` (decoded source -> stored student frames, whole
    frame) and ``ClipTargets.teacher_input`` (stored frames -> teacher input). A fractional box is
    resampled as PIL's ``resize(box=...)`` does, i.e. the same pixels as resizing the whole input
    and cropping an integer box of the result (VGGT's ``crop`` mode).
    """

    src_hw: tuple[int, int]
    """Input frame size ``(height, width)`` in pixels."""
    crop_box: tuple[float, float, float, float]
    """``(top, left, height, width)`` of the region kept, in input pixels (full frame if no crop)."""
    out_hw: tuple[int, int]
    """Output frame size ``(height, width)`` in pixels."""
    interpolation: str = "bicubic"
    """Resampling filter used for the resize (``bicubic`` as in VGGT's preprocessing)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "src_hw": list(self.src_hw),
            "crop_box": [_num(x) for x in self.crop_box],
            "out_hw": list(self.out_hw),
            "interpolation": self.interpolation,
        }

    def then(self, second: ResizeSpec) -> ResizeSpec:
        """One crop + resize equal to this one followed by ``second`` (``second.src_hw`` must be ``out_hw``).

        Exact in the pixel-edge convention of ``geovr.shared.geometry.crop_resize_intrinsics``: each
        hop is the affine map ``x -> (x - box_start) * out / box_size``, and so is their chain.
        """
        if tuple(second.src_hw) != tuple(self.out_hw):
            raise ValueError(f"cannot chain resizes: {tuple(self.out_hw)} output into a {tuple(second.src_hw)} input")
        t1, l1, h1, w1 = self.crop_box
        t2, l2, h2, w2 = second.crop_box
        sy, sx = h1 / self.out_hw[0], w1 / self.out_hw[1]  # input pixels per intermediate pixel
        box = (t1 + t2 * sy, l1 + l2 * sx, h2 * sy, w2 * sx)
        return ResizeSpec(src_hw=tuple(self.src_hw), crop_box=tuple(_num(v) for v in box),  # type: ignore[arg-type]
                          out_hw=tuple(second.out_hw), interpolation=second.interpolation)  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResizeSpec:
        return cls(
            src_hw=tuple(int(x) for x in d["src_hw"]),  # type: ignore[arg-type]
            crop_box=tuple(_num(x) for x in d["crop_box"]),  # type: ignore[arg-type]
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
    """Decoded source -> stored frames: the student's resolution (``out_hw``), whole frame."""
    frames: list[bytes]
    """``S`` encoded images (JPEG or PNG bytes) of the frames the student sees, at ``resize.out_hw``;
    the teacher's input is ``teacher_input`` applied to exactly these frames (before encoding)."""
    pose_enc: np.ndarray
    """float32 ``[S, 9]``: ``absT_quaR_FoV`` (t xyz, quaternion xyzw, fov_h, fov_w in radians)."""
    extrinsics: np.ndarray
    """float32 ``[S, 3, 4]``: OpenCV camera-from-world, frame 0 = world, translation in depth units."""
    intrinsics: np.ndarray
    """float32 ``[S, 3, 3]``: pinhole intrinsics in pixels of the teacher input (``teacher_input.out_hw``)."""
    depth: np.ndarray
    """float16/float32 ``[S, Hd, Wd]``: z-depth in teacher units (``metres = metric_scale * depth``) on the teacher
    input's pixel grid (``Hd = H // depth_downsample``); 0 = invalid."""
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
    teacher_input: ResizeSpec | None = None
    """Stored (student) frames -> teacher input (``src_hw == resize.out_hw``, ``out_hw`` = ``H x W`` every target
    refers to); None only for hand-built clips whose teacher saw the stored frames unchanged."""
    teacher_mode: str = ""
    """``geovr.shared.sampling.SamplingConfig.teacher_mode`` that made ``teacher_input`` (``stretch`` ...)."""
    start_frame: int = 0
    """First source frame of the clip's range (inclusive; the corpus row's ``start_frame``)."""
    end_frame: int | None = None
    """End of the clip's source range (exclusive), resolved against ``video.num_frames``; None = the source's end."""

    @property
    def teacher_view(self) -> ResizeSpec:
        """Decoded source -> teacher input in one crop + resize (the pixels every target refers to)."""
        return self.resize if self.teacher_input is None else self.resize.then(self.teacher_input)

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
        if self.teacher_input is not None and tuple(self.teacher_input.src_hw) != tuple(self.resize.out_hw):
            raise bad(f"teacher_input starts from {tuple(self.teacher_input.src_hw)} frames, but the stored frames are "
                      f"{tuple(self.resize.out_hw)}")
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
            "teacher_input": None if self.teacher_input is None else {**self.teacher_input.to_dict(),
                                                                      "mode": self.teacher_mode},
            "start_frame": int(self.start_frame),
            "end_frame": None if self.end_frame is None else int(self.end_frame),
            "metric_scale": None if math.isnan(self.metric_scale) else float(self.metric_scale),
            "scale_source": self.scale_source,
            "scale_model": self.scale_model,
            "scale_sky_masked": bool(self.scale_sky_masked),
        }
