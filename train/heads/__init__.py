"""Geometry heads read out of the student's hidden states (dropped at inference)."""

from geovr.train.heads.camera import CameraHead
from geovr.train.heads.depth import DepthHead, build_depth_head
from geovr.train.heads.distill import DistillHead
from geovr.train.heads.scale import ScaleHead

__all__ = ["CameraHead", "DepthHead", "DistillHead", "ScaleHead", "build_depth_head"]
