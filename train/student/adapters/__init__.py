"""Student family adapters, chosen by the HF config's ``model_type``.

Adding a family = one module with a ``StudentAdapter`` subclass + one line in ``ADAPTERS``.
"""

from __future__ import annotations

from typing import Any

from geovr.train.student.adapters.base import IGNORE, StudentAdapter, layer_map
from geovr.train.student.adapters.qwen2_5_vl import Qwen25VLAdapter
from geovr.train.student.adapters.qwen3_5 import Qwen35Adapter
from geovr.train.student.adapters.qwen3_vl import Qwen3VLAdapter

ADAPTERS: dict[str, type[StudentAdapter]] = {
    "qwen2_5_vl": Qwen25VLAdapter,
    "qwen3_vl": Qwen3VLAdapter,
    "qwen3_5": Qwen35Adapter,
}
"""``model_type`` -> adapter class."""


def adapter_for(processor: Any, hf_config: Any) -> StudentAdapter:
    """The adapter of ``hf_config.model_type`` bound to ``processor``; ``ValueError`` names the known families."""
    kind = getattr(hf_config, "model_type", None)
    if kind not in ADAPTERS:
        raise ValueError(f"student model_type {kind!r} has no adapter; known: {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[kind](processor, hf_config)


__all__ = ["ADAPTERS", "IGNORE", "StudentAdapter", "adapter_for", "layer_map"]
