"""Teacher registry: name -> :class:`TeacherEntry`, whose factory is imported lazily so the CLI stays fast."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from geovr.extract.teachers.base import ClipContext, Teacher, TeacherOutput, reduce_features
from geovr.shared.errors import UsageError
from geovr.shared.teacher_layers import VGGT_DPT_LAYERS


@dataclass(frozen=True)
class TeacherEntry:
    """What the rest of geovr knows about a teacher without importing it (no torch)."""

    factory: str
    """``"module:function"`` building the teacher; keyword arguments come from :func:`build_teacher`."""
    layers: tuple[int, ...]
    """Layers whose features a store caches unless the extraction config names others."""
    feature_dims: dict[str, int] = field(default_factory=dict)
    """Stored feature channels per architecture preset (``ExtractConfig.vggt_config``; ``""`` = the only one),
    for ``geovr extract --plan``; a test checks them against the real model configs."""
    needs_weights: bool = False
    """The teacher refuses to run without ``--weights`` unless ``--random-init`` asks for untrained weights."""


REGISTRY: dict[str, TeacherEntry] = {
    "vggt": TeacherEntry("geovr.extract.teachers.vggt:build", VGGT_DPT_LAYERS, {"vggt_1b": 1024, "tiny": 32},
                         needs_weights=True),
    "oracle": TeacherEntry("geovr.extract.teachers.oracle:build", VGGT_DPT_LAYERS, {"": 64}),
    # DA3-LARGE: ViT-L blocks, single-width features (the store keeps channels=both)
    "da3": TeacherEntry("geovr.extract.teachers.da3:build", VGGT_DPT_LAYERS, {"": 1024}, needs_weights=True),
}
"""Teacher name -> entry. A new teacher (VGGT-Omega, DA3, MapAnything, pi3) is one module + one line."""


def teacher_entry(name: str) -> TeacherEntry:
    """The registry entry of ``name``; an unknown name is a usage error."""
    if name not in REGISTRY:
        raise UsageError(f"unknown teacher {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def build_teacher(name: str, **kwargs: Any) -> Teacher:
    """Instantiate the teacher registered under ``name`` (kwargs go to its factory)."""
    module_name, factory = teacher_entry(name).factory.split(":")
    return getattr(importlib.import_module(module_name), factory)(**kwargs)


__all__ = ["REGISTRY", "ClipContext", "Teacher", "TeacherEntry", "TeacherOutput", "build_teacher", "reduce_features",
           "teacher_entry"]
