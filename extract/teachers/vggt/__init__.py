"""geovr's VGGT teacher (checkpoint-compatible parameter names); see docs/vggt.md."""

from geovr.extract.teachers.vggt.model import VGGT, VGGTConfig
from geovr.extract.teachers.vggt.teacher import VGGTTeacher, build, load_vggt

__all__ = ["VGGT", "VGGTConfig", "VGGTTeacher", "build", "load_vggt"]
