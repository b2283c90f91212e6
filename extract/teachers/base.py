"""The teacher protocol: what every 3D teacher (VGGT, the oracle, future ones) returns per clip.

A new teacher is one module exposing a factory ``build(**kwargs) -> Teacher`` and one line in
``geovr.extract.teachers.REGISTRY``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np
    import torch

    from geovr.shared.features import FeatureSpec
    from geovr.shared.schema import ResizeSpec, TeacherInfo


@dataclass
class ClipContext:
    """What a teacher may know about the clip besides its pixels (only the oracle uses it)."""

    clip_id: str
    """Clip key from the corpus manifest."""
    frame_indices: np.ndarray
    """int64 ``[S]``: the sampled source frame indices."""
    resize: ResizeSpec
    """Crop + resize that produced the teacher input from the source frames."""
    gt_dir: Path | None = None
    """Ground-truth folder of the clip (corpus manifest ``gt_dir``), if any."""


@dataclass
class TeacherOutput:
    """Per-clip teacher predictions on the ``S`` input frames of size ``H x W``.

    Extrinsics are OpenCV camera-from-world with frame 0 = world; depth and translation share
    the teacher's scale (VGGT: normalised scene scale; oracle: metres).
    """

    pose_enc: torch.Tensor
    """float32 ``[S, 9]``: absT_quaR_FoV (t xyz, quaternion xyzw, fov_h, fov_w radians)."""
    extrinsics: torch.Tensor
    """float32 ``[S, 3, 4]``: camera-from-world, frame 0 = world."""
    intrinsics: torch.Tensor
    """float32 ``[S, 3, 3]``: pixels of the ``H x W`` input frames."""
    depth: torch.Tensor
    """float32 ``[S, H, W]``: z-depth in teacher units, 0 where invalid."""
    depth_conf: torch.Tensor
    """float32 ``[S, H, W]``: confidence (higher is better)."""
    features: dict[int, torch.Tensor] = field(default_factory=dict)
    """Layer -> float32 ``[S, h, w, C]`` patch-token features on the patch grid (special tokens dropped).
    For VGGT ``C = 2 * embed_dim``: channels ``[:embed_dim]`` are the frame-attention half.
    If ``features_spec`` is set they are already reduced as that spec says (see ``reduce_features``)."""
    features_spec: FeatureSpec | None = None
    """The ``FeatureSpec`` the teacher already applied to ``features`` on its device (channel slice, pooling,
    cast), or None for full float32 layer outputs."""
    metric_scale: float | None = None
    """Set only by teachers that know metric scale themselves (the oracle: 1.0 for a metric corpus)."""


@runtime_checkable
class Teacher(Protocol):
    """A frozen 3D teacher. Implementations run under ``torch.inference_mode``."""

    info: TeacherInfo
    """Name, version, weights hash and the feature layers this instance returns."""
    patch_size: int
    """Input ``H`` and ``W`` must be multiples of this (VGGT: 14)."""

    def __call__(
        self, frames: torch.Tensor, layers: Sequence[int], context: ClipContext | None = None,
        spec: FeatureSpec | None = None,
    ) -> TeacherOutput:
        """Run on ``frames`` float32 ``[S, 3, H, W]`` in ``[0, 1]``; return features for ``layers``.

        With ``spec`` a teacher may reduce the features on its device (``reduce_features``) and say so in
        ``TeacherOutput.features_spec``; a teacher that ignores it returns full features."""
        ...


def reduce_features(x: torch.Tensor, spec: FeatureSpec) -> torch.Tensor:
    """Device-side feature reduction, the same arithmetic as ``geovr.extract.targets.feature_target`` + the cast
    of ``encode_features``: ``[S, h, w, 2C]`` -> channel slice -> grid floored to a multiple of ``pool`` ->
    ``pool x pool`` mean in float32 -> bfloat16 / float16 when the store keeps that dtype without PCA (the
    cast rounds to nearest even, as the numpy encoder), else float32."""
    import torch

    c2 = x.shape[-1]
    if spec.channels != "both" and c2 % 2:
        raise ValueError(f"channel slice {spec.channels!r} needs an even channel count, got {c2}")
    x = {"frame": x[..., : c2 // 2], "global": x[..., c2 // 2:]}.get(spec.channels, x).float()
    s, h, w, c = x.shape
    p = int(spec.pool)
    if p > 1:
        x = x[:, : h - h % p, : w - w % p].reshape(s, h // p, p, w // p, p, c)
        acc = x[:, :, 0, :, 0]
        for k in range(1, p * p):  # row-major sequential sum, then one division: numpy's float32 mean order
            acc = acc + x[:, :, k // p, :, k % p]
        x = acc / (p * p)
    cast = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(spec.dtype) if not spec.pca_dims else None
    return x.to(cast) if cast is not None else x.contiguous()
