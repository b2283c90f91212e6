"""Synthetic indoor corpus with exact ground truth (``geovr synth``).

Procedural textured rooms with classed box objects, rendered by numpy ray casting into mp4 videos,
with OpenCV camera-from-world extrinsics, intrinsics, metric z-depth and a ``scene.json`` per clip.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"SynthConfig": "config", "clip_id": "corpus", "make_scene": "corpus", "render_corpus": "corpus",
          "OBJECT_CLASSES": "scene", "Room": "scene", "Scene": "scene", "SceneObject": "scene", "load_scene": "scene"}
"""Public name -> submodule; imported on first use so ``geovr --help`` (which imports ``synth.cli``) needs no numpy."""


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "OBJECT_CLASSES", "Room", "Scene", "SceneObject", "SynthConfig", "clip_id", "load_scene", "make_scene",
    "render_corpus",
]
