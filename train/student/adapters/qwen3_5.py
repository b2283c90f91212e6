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

    def full_attention_map(self, teacher_layers: list[int], teacher_num_layers: int) -> list[int]:
        """GeoVR's map with each index moved to the nearest full-attention output (ties: the deeper one).

        Qwen3.5-2B (24 layers, full attention every 4th): [5, 12, 18, 24] -> [4, 12, 20, 24]. Use it via
        ``StudentConfig.layer_map``; docs/qwen35.md has the measured comparison with the default map.
        """
        full = self.full_attention_layers()
        if not full:
            raise ValueError(f"{self.model_type}: the config has no full-attention layer")
        return [min(full, key=lambda f: (abs(f - i), -f)) for i in self.layer_map(teacher_layers, teacher_num_layers)]
