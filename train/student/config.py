"""``StudentConfig``: which student and how it is wired to the teacher targets."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StudentConfig:
    """Which student and how it is wired to the teacher targets."""

    model: str = "tiny-qwen3vl"
    """Local folder or hub id of a checkpoint whose ``model_type`` has an adapter
    (``geovr.train.student.adapters.ADAPTERS``), or a tiny name of ``geovr.train.student.tiny.TINY_MODELS``."""
    frame_mode: str = "duplicate"
    """``duplicate`` (each frame twice: one temporal group per teacher frame) or ``pair``."""
    layer_map: list[int] | None = None
    """``hidden_states`` indices read for the teacher layers (distillation and depth head); None = GeoVR's
    ``round((l+1)/T * L)`` for teacher layer ``l`` of ``T`` (28 layers -> [6, 14, 21, 28], 36 -> [8, 18, 27, 36])."""
    teacher_num_layers: int = 24
    """``T``: layers of the teacher the features come from (VGGT: 24; set from the store header when it has it)."""
    token_init_std: float = 1.0
    """Std of the normal init of the camera/scale token embeddings (GeoVR: 1.0, ``nn.Embedding``'s default;
    geovr used 0.02 before). Tiny students with 64-d hidden states learn the camera faster at 0.02."""
    freeze_vision: bool = True
    """Freeze the vision tower except its final patch merger (GeoVR: only ``visual.merger`` trains)."""
    gradient_checkpointing: bool = False
    """Recompute LLM activations in backward."""
    attn_implementation: str = "sdpa"
    """transformers attention backend."""
    teacher_feature_dim: int = 1024
    """Channels of the cached teacher features (set from the store by the trainer)."""
    teacher_layers: list[int] = field(default_factory=lambda: [4, 11, 17, 23])
    """Teacher layers of the cached features, in order (set from the store by the trainer)."""
    camera_hidden: int = 1536
    """Hidden width of the camera head MLP (paper: 1536)."""
    scale_hidden: int = 512
    """Hidden width of the scale head MLP (paper: 512)."""
    distill_hidden: int | None = None
    """Hidden width of each distillation projector; None = the teacher's feature width (paper: 1024 = C)."""
    depth_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    """DPT projection widths per mapped layer (paper: 256, 512, 1024, 1024)."""
    depth_features: int = 32
    """DPT fusion width (paper: 256)."""
    tiny_cache: str = ""
    """Folder for building tiny students (default: ``$GEOVR_CACHE`` or ``~/.cache/geovr``)."""
