"""What every Qwen-style video MLLM adapter does; a family module subclasses ``StudentAdapter``.

An adapter is the only place that knows a student family. It owns:

- the processor call (``process``), including frames cached at the student's final size
  (``presized``: no resize, sizes checked against ``merged_patch``);
- label masking (``labels``): GeoVR's rule, every assistant answer with its end-of-turn token
  and the token after it (``preprocess_qwen_visual``), found from the ``<|im_start|>assistant``
  role tokens of the tokenizer;
- camera/scale placeholder insertion (``insert_placeholders``) and their multimodal RoPE
  positions (``position_ids``): the family's own rope-index function runs on the sequence
  *without* placeholders, and each placeholder takes the position of the nearest video token
  before it (a frame's camera token: that frame's last patch; the scale token: the last
  frame's last patch), so no later position moves (GeoVR's ``get_rope_index``);
- the hidden-state readout (``video_grids``, ``token_states``) and the layer map (``layer_map``);
- which modules train (``freeze``).

Token layout in training: ``... <frame g patches> CAM ... <last frame patches> CAM SCALE ...``;
inference is the unchanged HF model on the same prompt without placeholders.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

IGNORE = -100
"""Label of positions without language-modelling loss."""


def layer_map(num_layers: int, teacher_layers: list[int], teacher_num_layers: int) -> list[int]:
    """Student ``hidden_states`` index for each teacher layer ``l`` (0-based of ``T``): ``round((l+1)/T * L)``.

    ``hidden_states`` has ``L + 1`` entries (0 = embeddings, ``L`` = last layer); GeoVR's code maps
    VGGT's DPT layers (4, 11, 17 and 23 of 24) to [6, 14, 21, 28] for 28 layers and [8, 18, 27, 36] for 36.
    """
    if teacher_num_layers < 1 or any(not 0 <= layer < teacher_num_layers for layer in teacher_layers):
        raise ValueError(f"teacher layers {teacher_layers} are not all in [0, {teacher_num_layers})")
    return [int(round((layer + 1) / teacher_num_layers * num_layers)) for layer in teacher_layers]


def _insert(seq: torch.Tensor, after: list[int], values: list[int]) -> torch.Tensor:
    """``seq [L]`` with ``values[i]`` inserted right after index ``after[i]`` (``after`` non-decreasing)."""
    out, prev = [], 0
    for pos, v in zip(after, values, strict=True):
        out += [seq[prev : pos + 1], torch.tensor([v], dtype=seq.dtype)]
        prev = pos + 1
    out.append(seq[prev:])
    return torch.cat(out)


class StudentAdapter:
    """One student family: processor call, placeholders and positions, labels, readout, layer map, freezing.

    Built with ``adapter_for(processor, hf_config)``; picklable (DataLoader workers prepare samples with it).
    """

    model_type: ClassVar[str] = ""
    """The HF config's ``model_type`` this adapter serves (the registry key)."""
    camera_token: ClassVar[str] = "<|box_start|>"
    """Camera placeholder after each temporal group (a token the video pipeline never emits)."""
    scale_token: ClassVar[str] = "<|box_end|>"
    """Scale placeholder after the last camera placeholder."""
    turn_start_token: ClassVar[str] = "<|im_start|>"
    """Token opening a chat turn (followed by the role)."""
    turn_end_token: ClassVar[str] = "<|im_end|>"
    """Token closing a chat turn (supervised after the answer, with the token after it)."""
    vision_tower: ClassVar[str] = "model.visual"
    """Attribute path of the vision tower inside the HF model."""
    trainable_vision: ClassVar[tuple[str, ...]] = ("merger.",)
    """Parameter-name prefixes (inside the vision tower) that stay trainable when it is frozen."""
    rope_inputs: ClassVar[tuple[str, ...]] = ("image_grid_thw", "video_grid_thw")
    """Processor outputs the family's rope-index function reads besides ids, mask and token types."""

    def __init__(self, processor: Any, hf_config: Any) -> None:
        self.processor = processor
        self.config = hf_config
        self.camera_id = self._token_id(self.camera_token)
        self.scale_id = self._token_id(self.scale_token)
        self.turn_end_id = self._token_id(self.turn_end_token)
        self.assistant_header = self.processor.tokenizer(self.turn_start_token + "assistant",
                                                         add_special_tokens=False)["input_ids"]
        """Token ids of ``<|im_start|>assistant`` (where an answer's role line starts)."""
        self.video_id = int(hf_config.video_token_id)
        self.merge_size = int(hf_config.vision_config.spatial_merge_size)
        self.patch_size = int(hf_config.vision_config.patch_size)

    def _token_id(self, token: str) -> int:
        tid = self.processor.tokenizer.convert_tokens_to_ids(token)
        if tid is None or tid == self.processor.tokenizer.unk_token_id:
            raise ValueError(f"{self.model_type}: tokenizer has no {token!r} token")
        return int(tid)

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def merged_patch(self) -> int:
        """Pixels per merged token side (``patch_size * merge_size``): presized frames are multiples of it."""
        return self.patch_size * self.merge_size

    def num_layers(self) -> int:
        """Decoder layers ``L`` of the language model (``hidden_states`` has ``L + 1`` entries)."""
        return int(self.config.get_text_config().num_hidden_layers)

    def hidden_size(self) -> int:
        """Width ``D`` of the language model's hidden states."""
        return int(self.config.get_text_config().hidden_size)

    def layer_map(self, teacher_layers: list[int], teacher_num_layers: int) -> list[int]:
        """``hidden_states`` indices read for ``teacher_layers`` (see ``layer_map``)."""
        return layer_map(self.num_layers(), teacher_layers, teacher_num_layers)

    # ---- processor ---------------------------------------------------------------------------
    def render(self, chat: list[dict]) -> str:
        """The chat as the checkpoint's template writes it (before the processor expands the video placeholder);
        a chat that does not end with an answer gets the generation prompt."""
        has_answer = chat[-1]["role"] == "assistant"
        return self.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=not has_answer)

    def process(self, chat: list[dict], video: np.ndarray, metadata: Any, presized: bool) -> dict:
        """Processor outputs (batch of 1) for a chat whose first turn holds the video ``[T, H, W, 3]`` uint8."""
        text = self.render(chat)
        extra: dict = {}
        if presized:
            h, w = video.shape[1:3]
            m = self.merged_patch
            if h % m or w % m:
                raise ValueError(f"presized frames {h}x{w} are not multiples of the student's merged patch {m}")
            extra["do_resize"] = False
        out = self.processor(text=[text], videos=[video], video_metadata=[metadata], do_sample_frames=False,
                             return_tensors="pt", **extra)
        return dict(out)

    # ---- labels ------------------------------------------------------------------------------
    def labels(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``[L]`` labels: every assistant answer, its end-of-turn token and the one token after that; the rest ``-100``.

        GeoVR's rule (``utils/preprocess.py`` ``preprocess_qwen_visual``): an answer starts one token after the
        assistant role token of ``<|im_start|>assistant`` (that token is the role line's newline) and runs to
        the next ``turn_end_token``; the label span also covers the turn end and the token after it (the
        template's ``\\n``). An answer with no turn end after it (a bare generation prompt) is not supervised.
        docs/recipe.md has the one place this differs from the official code.
        """
        labels = torch.full_like(input_ids, IGNORE)
        ids = input_ids.tolist()
        n, k = len(ids), len(self.assistant_header)
        pos = 0
        while pos + k <= n:
            if ids[pos : pos + k] != self.assistant_header:
                pos += 1
                continue
            start = pos + k + 1
            end = next((i for i in range(start, n) if ids[i] == self.turn_end_id), n)
            if end < n:
                labels[start : end + 2] = input_ids[start : end + 2]
            pos = end + 1
        return labels

    # ---- placeholders ------------------------------------------------------------------------
    def placeholder_anchors(self, input_ids: torch.Tensor, video_grid_thw: torch.Tensor) -> list[int]:
        """Indices after which the ``t`` camera placeholders and then the scale placeholder go.

        Camera ``g`` follows temporal group ``g``'s last video token; the scale placeholder follows
        the last camera placeholder (same anchor, inserted after it).
        """
        t, gh, gw = (int(x) for x in video_grid_thw[0])
        pos = (input_ids == self.video_id).nonzero().squeeze(-1)
        per = gh * gw // self.merge_size**2
        if len(pos) != t * per:
            raise ValueError(f"{self.model_type}: {len(pos)} video tokens, expected {t} groups x {per}")
        return [int(pos[(g + 1) * per - 1]) for g in range(t)] + [int(pos[-1])]

    def insert_placeholders(self, inputs: dict, labels: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """Inputs and labels ``[L]`` with one camera placeholder per temporal group and one scale placeholder."""
        ids = inputs["input_ids"][0]
        after = self.placeholder_anchors(ids, inputs["video_grid_thw"])
        values = [self.camera_id] * (len(after) - 1) + [self.scale_id]
        fills = {"input_ids": values, "attention_mask": [1] * len(values), "mm_token_type_ids": [0] * len(values)}
        new = {k: _insert(inputs[k][0], after, v)[None] for k, v in fills.items() if k in inputs}
        return {**inputs, **new}, _insert(labels, after, [IGNORE] * len(values))

    def position_ids(self, hf_model: nn.Module, inputs: dict) -> torch.Tensor:
        """``[3, 1, L]`` M-RoPE positions: the family's own rope index without placeholders, anchors' for them."""
        ids = inputs["input_ids"]
        ph = ((ids == self.camera_id) | (ids == self.scale_id))[0]
        keep = ~ph
        stripped = {k: inputs[k][:, keep] for k in ("input_ids", "attention_mask", "mm_token_type_ids")
                    if k in inputs}
        extra = {k: inputs[k] for k in self.rope_inputs if inputs.get(k) is not None}
        pos, _ = self._rope_index(hf_model)(**stripped, **extra)
        full = pos.new_zeros(3, 1, ids.shape[1])
        full[:, :, keep] = pos
        if ph.any():
            idx = torch.arange(ids.shape[1], device=ids.device)
            last_video = torch.where(ids[0] == self.video_id, idx, torch.full_like(idx, -1)).cummax(0).values
            anchor = last_video[ph]
            if (anchor < 0).any():
                raise ValueError(f"{self.model_type}: a camera/scale placeholder precedes every video token")
            full[:, :, ph] = full[:, :, anchor]
        return full

    def _rope_index(self, hf_model: nn.Module):
        """The family's multimodal rope-index function (transformers' own)."""
        return hf_model.model.get_rope_index

    # ---- readout -----------------------------------------------------------------------------
    def video_grids(self, hidden_states: tuple, input_ids: torch.Tensor, video_grid_thw: torch.Tensor,
                    layers: list[int]) -> list[torch.Tensor]:
        """Video-token states of ``hidden_states[l]`` for ``l`` in ``layers``: ``[t, gh, gw, D]`` float32 each."""
        t, gh, gw = (int(x) for x in video_grid_thw[0])
        m = self.merge_size
        vid = (input_ids[0] == self.video_id).nonzero().squeeze(-1)
        return [hidden_states[layer][0, vid].view(t, gh // m, gw // m, -1).float() for layer in layers]

    def token_states(self, hidden: torch.Tensor, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last-layer states ``[1, L, D]`` at the camera placeholders ``[t, D]`` and the scale placeholder ``[n, D]``."""
        ids = input_ids[0]
        return hidden[0, ids == self.camera_id].float(), hidden[0, ids == self.scale_id].float()

    # ---- training setup ----------------------------------------------------------------------
    def vision_module(self, hf_model: nn.Module) -> nn.Module:
        """The vision tower (``vision_tower`` attribute path)."""
        module = hf_model
        for part in self.vision_tower.split("."):
            module = getattr(module, part)
        return module

    def freeze(self, hf_model: nn.Module, freeze_vision: bool) -> None:
        """Freeze the vision tower except ``trainable_vision`` (GeoVR: only ``visual.merger`` trains)."""
        for name, p in self.vision_module(hf_model).named_parameters():
            p.requires_grad = not freeze_vision or name.startswith(self.trainable_vision)
