"""Qwen3.5 (``model_type`` ``qwen3_5``, dense): Qwen3-VL's video layout and rope index (one
``<t seconds><|vision_start|>...<|vision_end|>`` block per temporal group, the same ``Qwen3VLProcessor``,
patch 16, merge 2, temporal patch 2) in front of a hybrid decoder: gated-delta-net linear-attention
layers and full-attention layers (``text_config.layer_types``; the released checkpoints repeat
3 linear + 1 full). The vision tower has no deepstack mergers; its ``merger`` trains (GeoVR's rule).

The layer map is GeoVR's ``round((l+1)/T * L)`` over the decoder's ``hidden_states`` like every family;
``full_attention_layers`` says which ``hidden_states`` indices are outputs of full-attention layers
(docs/qwen35.md measures a full-attention-preferring map against the default)."""

from __future__ import annotations

from geovr.train.student.adapters.base import StudentAdapter


class Qwen35Adapter(StudentAdapter):
    """Qwen3.5 0.8B / 2B / 4B / 9B / 27B (transformers ``Qwen3_5ForConditionalGeneration``)."""

    model_type = "qwen3_5"
    trainable_vision = ("merger.",)
    rope_inputs = ("image_grid_thw", "video_grid_thw")

    def full_attention_layers(self) -> list[int]:
        """``hidden_states`` indices (1..L) whose decoder layer is a full-attention layer."""
        types = self.config.get_text_config().layer_types
        return [i + 1 for i, kind in enumerate(types) if kind == "full_attention"]
