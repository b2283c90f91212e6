"""The one definition of the teacher layers both stages default to (import-light: no numpy).

VGGT's DPT depth head reads aggregator layers 4, 11, 17 and 23; GeoVR caches the features of the
same layers. The teacher registry (``geovr.extract.teachers.REGISTRY``) names this list for the
VGGT-class teachers; the store header records the layers actually written, and stage two reads
them from there.
"""

from __future__ import annotations

VGGT_DPT_LAYERS: tuple[int, ...] = (4, 11, 17, 23)
"""Aggregator layers (0-based) VGGT-1B's DPT head reads, and whose features a store caches by default."""
