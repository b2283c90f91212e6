"""The oracle teacher: the synthetic corpus's exact ground truth in the teacher schema.

It needs no weights and proves the pipeline end to end: poses re-expressed with frame 0 = world,
intrinsics after the source -> teacher-input crop/resize (``ClipContext.resize``: the student resize
and the teacher-input mode chained, any ``SamplingConfig.teacher_mode``), metric depth resampled
(nearest) to the teacher input, the
valid mask as confidence, metric scale 1 (depth is already in metres). Features are a **fixed
random projection** of each 14x14 pixel patch (seeded per layer, ``tanh``), so they are
deterministic, image-dependent and learnable by the student's distillation head.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from geovr.extract.teachers.base import ClipContext, TeacherOutput
from geovr.shared.geometry import crop_resize_intrinsics, extri_intri_to_pose_enc, relative_to_first
from geovr.shared.schema import TeacherInfo


def _load(gt_dir: Path, name: str) -> np.ndarray:
    path = gt_dir / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ground-truth file missing (the oracle teacher needs it)")
    return np.load(path, allow_pickle=False, mmap_mode="r")  # a long scan: read only the sampled frames


def resample_nearest(depth: np.ndarray, crop_box: tuple[float, float, float, float],
                     out_hw: tuple[int, int]) -> np.ndarray:
    """Resample ``[S, H, W]`` to ``out_hw``: output pixel centre ``i`` maps to source ``top + (i + 0.5) * h / oh``
    (pixel-edge coordinates, ``crop_box = (top, left, h, w)`` maybe fractional) and takes the pixel it falls in."""
    top, left, ch, cw = (float(x) for x in crop_box)
    oh, ow = out_hw
    rows = np.clip(np.floor(top + (np.arange(oh) + 0.5) * ch / oh), 0, depth.shape[1] - 1).astype(int)
    cols = np.clip(np.floor(left + (np.arange(ow) + 0.5) * cw / ow), 0, depth.shape[2] - 1).astype(int)
    return depth[:, rows][:, :, cols]


class OracleTeacher:
    """Ground truth behind the ``Teacher`` protocol (needs ``context.gt_dir``)."""

    patch_size = 14

    def __init__(self, feature_dim: int = 64, seed: int = 0, layers: Sequence[int] = (4, 11, 17, 23),
                 num_layers: int = 24) -> None:
        self.feature_dim = feature_dim
        self.seed = seed
        # layer indices mimic VGGT-1B's (24 layers) so stage two maps them the same way
        self.info = TeacherInfo(name="oracle", version=f"gt-randproj{feature_dim}-seed{seed}",
                                feature_layers=tuple(layers), num_layers=num_layers)

    def _projection(self, layer: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1000 + layer)
        d_in = 3 * self.patch_size**2
        return torch.randn(d_in, 2 * self.feature_dim, generator=g) / d_in**0.5 * 4.0

    def __call__(self, frames: torch.Tensor, layers: Sequence[int], context: ClipContext | None = None,
                 spec: object = None) -> TeacherOutput:
        """Ground truth for the sampled frames; ``spec`` is ignored (features are returned full, on the CPU)."""
        if context is None or context.gt_dir is None:
            raise ValueError("the oracle teacher needs ground truth: the corpus row has no gt_dir")
        s, _, h, w = frames.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"frame size {h}x{w} is not a multiple of the patch size {p}")
        idx = context.frame_indices
        extr = _load(context.gt_dir, "extrinsics.npy")
        intr = _load(context.gt_dir, "intrinsics.npy")
        depth = _load(context.gt_dir, "depth.npy")
        if idx.max() >= min(len(extr), len(intr), len(depth)):
            raise ValueError(f"{context.gt_dir}: ground truth has fewer frames than index {int(idx.max())}")
        e = relative_to_first(extr[idx])
        k = crop_resize_intrinsics(intr[idx], context.resize.crop_box, (h, w))
        d = resample_nearest(depth[idx].astype(np.float32), context.resize.crop_box, (h, w))
        pose = extri_intri_to_pose_enc(e, k, (h, w))
        patches = frames.unfold(2, p, p).unfold(3, p, p)  # [S, 3, h/p, w/p, p, p]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(s, h // p, w // p, -1)
        feats = {int(layer): torch.tanh(patches @ self._projection(int(layer))) for layer in layers}
        return TeacherOutput(
            pose_enc=torch.from_numpy(pose).float(), extrinsics=torch.from_numpy(e).float(),
            intrinsics=torch.from_numpy(k).float(), depth=torch.from_numpy(d).float(),
            depth_conf=torch.from_numpy((d > 0).astype(np.float32)), features=feats, metric_scale=1.0,
        )


def build(feature_dim: int = 64, seed: int = 0, layers: Sequence[int] = (4, 11, 17, 23), **_: object) -> OracleTeacher:
    """Registry factory (extra keyword arguments such as ``device`` are accepted and ignored)."""
    return OracleTeacher(feature_dim=feature_dim, seed=seed, layers=layers)
