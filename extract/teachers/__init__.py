"""Teacher registry: name -> ``"module:factory"``, imported lazily so the CLI stays fast."""

from __future__ import annotations

import importlib
from typing import Any

from geovr.extract.teachers.base import ClipContext, Teacher, TeacherOutput, reduce_features

REGISTRY: dict[str, str] = {
    "vggt": "geovr.extract.teachers.vggt:build",
    "oracle": "geovr.extract.teachers.oracle:build",
    "da3": "geovr.extract.teachers.da3:build",
}
"""Teacher name -> factory path. A new teacher (VGGT-Omega, DA3, MapAnything, pi3) is one module + one line."""


def build_teacher(name: str, **kwargs: Any) -> Teacher:
    """Instantiate the teacher registered under ``name`` (kwargs go to its factory)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown teacher {name!r}; known: {sorted(REGISTRY)}")
    module_name, factory = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), factory)(**kwargs)


__all__ = ["REGISTRY", "ClipContext", "Teacher", "TeacherOutput", "build_teacher", "reduce_features"]
