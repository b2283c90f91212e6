"""``GeoStudent``: a transformers Qwen-VL model plus camera/scale tokens and geometry heads.

Token layout in training (inference is the unchanged HF model): after the video tokens of each
temporal group (Qwen3-VL; Qwen2.5-VL's M-RoPE needs one contiguous video run, so there all camera
placeholders follow the video, in frame order) (= one teacher frame in ``duplicate`` mode) one **camera placeholder**
(``<|box_start|>``, a token the video pipeline never emits), and after the last group one
**scale placeholder** (``<|box_end|>``). Both are ordinary text positions for M-RoPE
(``mm_token_type_ids`` 0, label -100); a forward hook on the input embedding swaps their
embeddings for learned vectors (camera: first-frame / other-frames, like VGGT's camera token;
scale: one vector). Heads read the last hidden state at those positions.

``frame_mode``: ``duplicate`` (the paper's) repeats every frame twice so temporal group ``g``
covers exactly teacher frame ``g``; ``pair`` feeds frames as they are, group ``g`` covers frames
``2g, 2g+1`` and is supervised with frame ``2g``'s targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from geovr.shared.teacher_layers import VGGT_DPT_LAYERS
from geovr.train.heads import CameraHead, DepthHead, DistillHead, ScaleHead
from geovr.train.losses import LossConfig, camera_loss, depth_loss, distill_loss, scale_loss

CAMERA_TOKEN = "<|box_start|>"
"""Placeholder token after each frame group (never produced by the video pipeline)."""
SCALE_TOKEN = "<|box_end|>"
"""Placeholder token after the video."""
TINY_MODELS = {"tiny-qwen3vl": "qwen3_vl", "tiny-qwen25vl": "qwen2_5_vl"}
"""Special model names that build a tiny random student (tests, demo, benchmarks)."""


@dataclass
class StudentConfig:
    """Which student and how it is wired to the teacher targets."""

    model: str = "tiny-qwen3vl"
    """Local folder or hub id of a Qwen3-VL / Qwen2.5-VL checkpoint, or ``tiny-qwen3vl`` / ``tiny-qwen25vl``."""
    frame_mode: str = "duplicate"
    """``duplicate`` (each frame twice: one temporal group per teacher frame) or ``pair``."""
    layer_map: list[int] | None = None
    """hidden_states indices read for the teacher layer groups; None = ``round((g+1)/G * L)``."""
    freeze_vision: bool = True
    """Freeze the vision tower (the merger stays trainable)."""
    gradient_checkpointing: bool = False
    """Recompute LLM activations in backward."""
    attn_implementation: str = "sdpa"
    """transformers attention backend."""
    teacher_feature_dim: int = 1024
    """Channels of the cached teacher features (set from the store by the trainer)."""
    teacher_layers: list[int] = field(default_factory=lambda: list(VGGT_DPT_LAYERS))
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


def layer_map(num_layers: int, groups: int) -> list[int]:
    """Student hidden_states index for teacher group ``g``: ``round((g+1)/G * L)`` (28 -> [6, 14, 21, 28])."""
    return [int(round((g + 1) / groups * num_layers + 1e-9)) for g in range(groups)]


def resolve_model_path(cfg: StudentConfig) -> str:
    """The folder/hub id to load; builds a tiny student folder for the special names."""
    if cfg.model not in TINY_MODELS:
        return cfg.model
    import os
    from pathlib import Path

    from geovr.train.student.tiny import build_tiny_student_dir

    root = Path(cfg.tiny_cache or os.environ.get("GEOVR_CACHE", Path.home() / ".cache" / "geovr"))
    return str(build_tiny_student_dir(root / cfg.model, TINY_MODELS[cfg.model]))


class GeoStudent(nn.Module):
    """The trainable student. ``forward(samples)`` returns named loss terms (means over samples)."""

    def __init__(self, hf_model: nn.Module, tokenizer, cfg: StudentConfig, loss: LossConfig) -> None:
        super().__init__()
        self.hf_model, self.cfg, self.loss_cfg = hf_model, cfg, loss
        text_cfg = hf_model.config.get_text_config()
        dim, n_layers = text_cfg.hidden_size, text_cfg.num_hidden_layers
        self.layers = cfg.layer_map or layer_map(n_layers, len(cfg.teacher_layers))
        self.camera_id = tokenizer.convert_tokens_to_ids(CAMERA_TOKEN)
        self.scale_id = tokenizer.convert_tokens_to_ids(SCALE_TOKEN)
        self.video_id = hf_model.config.video_token_id
        self.camera_embed = nn.Embedding(2, dim)
        self.scale_embed = nn.Embedding(1, dim)
        nn.init.normal_(self.camera_embed.weight, std=0.02)
        nn.init.normal_(self.scale_embed.weight, std=0.02)
        self.camera_head = CameraHead(dim, cfg.camera_hidden)
        self.scale_head = ScaleHead(dim, cfg.scale_hidden)
        self.distill_heads = nn.ModuleList(
            DistillHead(dim, cfg.teacher_feature_dim, cfg.distill_hidden or cfg.teacher_feature_dim)
            for _ in cfg.teacher_layers
        )
        self.depth_head = DepthHead(dim, tuple(cfg.depth_channels), cfg.depth_features)
        hf_model.get_input_embeddings().register_forward_hook(self._swap_placeholders)
        if cfg.freeze_vision:
            for name, p in hf_model.model.visual.named_parameters():
                p.requires_grad = "merger" in name
        if cfg.gradient_checkpointing:
            hf_model.gradient_checkpointing_enable()

    def _swap_placeholders(self, module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        ids = args[0]
        cam, sc = ids == self.camera_id, ids == self.scale_id
        if not (cam.any() or sc.any()):
            return out
        out = out.clone()
        if cam.any():
            kind = (cam.cumsum(-1) > 1).long()  # 0 for a row's first camera token, 1 for the rest
            out[cam] = self.camera_embed(kind[cam]).to(out.dtype)
        if sc.any():
            out[sc] = self.scale_embed(torch.zeros_like(ids[sc])).to(out.dtype)
        return out

    def head_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at the head learning rate (paper: 1e-4)."""
        return [p for n, p in self.named_parameters() if not n.startswith("hf_model.") and p.requires_grad]

    def student_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the MLLM itself (paper: 2e-5)."""
        return [p for p in self.hf_model.parameters() if p.requires_grad]

    def inference_model(self) -> nn.Module:
        return self.hf_model

    def forward(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        terms = [self._one(s) for s in samples]
        return {k: torch.stack([t[k] for t in terms]).mean() for k in terms[0]}

    def _run(self, s: dict) -> tuple:
        """HF forward of one prepared sample: ``(out, ids [L], hidden states per layer [L, D], t, gh, gw)``."""
        dev = next(self.parameters()).device
        inputs = {k: v.to(dev) for k, v in s["inputs"].items()}
        out = self.hf_model(**inputs, output_hidden_states=True, use_cache=False)
        t, gh, gw = (int(x) for x in inputs["video_grid_thw"][0])
        return out, inputs["input_ids"][0], [h[0] for h in out.hidden_states], t, gh // 2, gw // 2

    def _grids(self, ids: torch.Tensor, hs: list[torch.Tensor], t: int, gh: int, gw: int) -> list[torch.Tensor]:
        """Video-token states of the mapped layers, ``[t, gh, gw, D]`` each."""
        vid_pos = (ids == self.video_id).nonzero().squeeze(-1)
        return [hs[layer][vid_pos].view(t, gh, gw, -1).float() for layer in self.layers]

    @torch.no_grad()
    def predict(self, s: dict, depth_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Head readout of one sample prepared with ``train=True`` (placeholders present).

        Returns ``pose_enc [t, 9]``, ``depth [t, *depth_hw]`` (teacher units) and ``metric_scale``
        (scalar), one entry per temporal group ``t`` (= frames in ``duplicate`` mode, pairs in ``pair``).
        """
        out, ids, hs, t, gh, gw = self._run(s)
        return {"pose_enc": self.camera_head(hs[-1][ids == self.camera_id].float()),
                "depth": self.depth_head(self._grids(ids, hs, t, gh, gw), tuple(depth_hw)),
                "metric_scale": self.scale_head(hs[-1][ids == self.scale_id].float()).reshape(())}

    def _one(self, s: dict) -> dict[str, torch.Tensor]:
        out, ids, hs, t, gh, gw = self._run(s)
        dev = hs[-1].device
        zero = hs[-1].sum() * 0
        terms = {k: zero for k in ("lm", "camera", "camera_t", "camera_quat", "camera_fov", "depth", "depth_l1",
                                   "depth_grad", "scale", "distill")}
        labels = s["labels"].to(dev)[0]
        if self.loss_cfg.lm and (labels != -100).any():
            terms["lm"] = F.cross_entropy(out.logits[0, :-1].float(), labels[1:], ignore_index=-100)
        step = 1 if self.cfg.frame_mode == "duplicate" else 2
        tg = s["targets"]
        if self.loss_cfg.camera and "pose_enc" in tg:
            pred = self.camera_head(hs[-1][ids == self.camera_id].float())
            terms.update(camera_loss(pred, tg["pose_enc"][::step].to(dev)[:t], self.loss_cfg))
        if self.loss_cfg.scale and "metric_scale" in tg:
            pred = self.scale_head(hs[-1][ids == self.scale_id].float())
            terms["scale"] = scale_loss(pred, tg["metric_scale"].to(dev).reshape(1))
        grids = self._grids(ids, hs, t, gh, gw)
        if self.loss_cfg.distill and "features" in tg:
            feats = [tg["features"][layer][::step].to(dev)[:t] for layer in self.cfg.teacher_layers]
            preds = [head(g, f.shape[1:3]) for head, g, f in zip(self.distill_heads, grids, feats, strict=True)]
            terms["distill"] = distill_loss(preds, feats)
        if self.loss_cfg.depth and "depth" in tg:
            target = tg["depth"][::step].to(dev)[:t]
            conf = tg.get("depth_conf", torch.ones_like(tg["depth"]))[::step].to(dev)[:t]
            terms.update(depth_loss(self.depth_head(grids, target.shape[1:]), target, conf, self.loss_cfg))
        c = self.loss_cfg
        # (ZeRO-3 partitioned parameters, marked ``ds_status``, are tracked by DeepSpeed's own hooks)
        # every trainable parameter gets a (possibly zero) gradient on every rank: ZeRO reduces gradients
        # bucket by bucket, and a head unused by one rank's sample (no QA, no scale...) would desynchronise it
        maybe_unused = [*self.head_parameters(), *self.hf_model.get_output_embeddings().parameters()]
        touch = sum(p.sum() for p in maybe_unused if p.requires_grad and not hasattr(p, "ds_status")) * 0.0
        terms["loss"] = (c.lm * terms["lm"] + c.camera * terms["camera"] + c.depth * terms["depth"]
                         + c.scale * terms["scale"] + c.distill * terms["distill"] + touch)
        return terms


def load_student(cfg: StudentConfig, loss: LossConfig, dtype: torch.dtype = torch.float32):
    """``(GeoStudent, processor)`` from a local folder, hub id, or tiny name."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = resolve_model_path(cfg)
    hf = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, attn_implementation=cfg.attn_implementation)
    processor = AutoProcessor.from_pretrained(path)
    return GeoStudent(hf, processor.tokenizer, cfg, loss), processor
