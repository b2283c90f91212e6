"""Qwen3-VL (``model_type`` ``qwen3_vl``): one ``<t seconds><|vision_start|>...<|vision_end|>`` block per
temporal group; the vision tower's ``merger`` trains, its ``deepstack_merger_list`` stays frozen (GeoVR)."""

from __future__ import annotations

from geovr.train.student.adapters.base import StudentAdapter


class Qwen3VLAdapter(StudentAdapter):
    """Qwen3-VL 2B / 4B / 8B (transformers ``Qwen3VLForConditionalGeneration``)."""

    model_type = "qwen3_vl"
    trainable_vision = ("merger.",)
    rope_inputs = ("image_grid_thw", "video_grid_thw")
