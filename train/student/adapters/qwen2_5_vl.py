"""Qwen2.5-VL (``model_type`` ``qwen2_5_vl``): one contiguous video run; temporal M-RoPE positions are
spaced by ``second_per_grid_ts`` (so the rope index also reads it). Camera placeholders sit after each
temporal group inside the run: positions come from the rope index of the run without them, so the
run's M-RoPE is exactly the unmodified model's."""

from __future__ import annotations

from geovr.train.student.adapters.base import StudentAdapter


class Qwen25VLAdapter(StudentAdapter):
    """Qwen2.5-VL 3B / 7B (transformers ``Qwen2_5_VLForConditionalGeneration``)."""

    model_type = "qwen2_5_vl"
    trainable_vision = ("merger.",)
    rope_inputs = ("image_grid_thw", "video_grid_thw", "second_per_grid_ts")
