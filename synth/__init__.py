"""Synthetic indoor corpus with exact ground truth (``geovr synth``).

Procedural textured rooms with classed box objects, rendered by numpy ray casting into mp4 videos,
with OpenCV camera-from-world extrinsics, intrinsics, metric z-depth and a ``scene.json`` per clip.
"""

from .config import SynthConfig
from .corpus import clip_id, make_scene, render_corpus
from .scene import OBJECT_CLASSES, Room, Scene, SceneObject, load_scene

__all__ = [
    "OBJECT_CLASSES", "Room", "Scene", "SceneObject", "SynthConfig", "clip_id", "load_scene", "make_scene",
    "render_corpus",
]
