"""``GeoStudent``: a transformers video MLLM plus learned camera/scale tokens and geometry heads.

Family-independent: everything that depends on the student family (processor call, placeholder
tokens and their M-RoPE positions, hidden-state readout, layer map, frozen modules) is the
adapter's (``geovr.train.student.adapters``). ``forward`` returns per-sample **predictions**;
the loss terms are computed outside the model by ``geovr.train.objective``.

Token layout in training (inference is the unchanged HF model): after the video tokens of each
temporal group (= one teacher frame in ``duplicate`` mode) one **camera placeholder**, after the
last one a **scale placeholder**. They take the M-RoPE position of the video token before them
and move no other position; a forward hook on the input embedding swaps their embeddings for
learned vectors (camera: first-frame / other-frames, like VGGT's camera token; scale: one
vector; both initialised N(0, ``token_init_std``), GeoVR: N(0, 1)). Heads read the last hidden state
at those positions; the distillation and depth heads read the mapped layers' video-token grids.

``frame_mode``: ``duplicate`` (the paper's) repeats every frame twice so temporal group ``g``
covers exactly teacher frame ``g``; ``pair`` feeds frames as they are, group ``g`` covers frames
``2g, 2g+1`` and is supervised with frame ``2g``'s targets.
"""

from __future__ import annotations

import torch
from torch import nn

from geovr.train.heads import CameraHead, DistillHead, ScaleHead, build_depth_head
from geovr.train.student.adapters import IGNORE, StudentAdapter, adapter_for
from geovr.train.student.config import StudentConfig

HEADS = ("camera", "scale", "distill", "depth")
"""Geometry heads ``GeoStudent.forward`` can evaluate."""

__all__ = ["HEADS", "GeoStudent", "StudentConfig", "load_student", "resolve_model_path"]


def resolve_model_path(cfg: StudentConfig) -> str:
    """The folder/hub id to load; builds a tiny student folder for the special names."""
    from geovr.train.student.tiny import TINY_MODELS

    if cfg.model not in TINY_MODELS:
        return cfg.model
    import os
    from pathlib import Path

    from geovr.train.student.tiny import build_tiny_student_dir

    root = Path(cfg.tiny_cache or os.environ.get("GEOVR_CACHE", Path.home() / ".cache" / "geovr"))
    return str(build_tiny_student_dir(root / cfg.model, TINY_MODELS[cfg.model]))


class GeoStudent(nn.Module):
    """The trainable student. ``forward(samples, heads)`` returns one prediction dict per sample."""

    def __init__(self, hf_model: nn.Module, adapter: StudentAdapter, cfg: StudentConfig) -> None:
        super().__init__()
        self.hf_model, self.adapter, self.cfg = hf_model, adapter, cfg
        dim = adapter.hidden_size()
        self.layers = list(cfg.layer_map or adapter.layer_map(cfg.teacher_layers, cfg.teacher_num_layers))
        self.frame_step = 1 if cfg.frame_mode == "duplicate" else 2
        self.camera_embed = nn.Embedding(2, dim)
        self.scale_embed = nn.Embedding(1, dim)
        for emb in (self.camera_embed, self.scale_embed):  # GeoVR: N(0, 1), nn.Embedding's own init
            nn.init.normal_(emb.weight, std=cfg.token_init_std)
        self.camera_head = CameraHead(dim, cfg.camera_hidden)
        self.scale_head = ScaleHead(dim, cfg.scale_hidden)
        self.distill_heads = nn.ModuleList(
            DistillHead(dim, cfg.teacher_feature_dim, cfg.distill_hidden or cfg.teacher_feature_dim)
            for _ in cfg.teacher_layers
        )
        self.depth_head = build_depth_head(dim, cfg)
        hf_model.get_input_embeddings().register_forward_hook(self._swap_placeholders)
        adapter.freeze(hf_model, cfg.freeze_vision)
        if cfg.gradient_checkpointing:
            hf_model.gradient_checkpointing_enable()

    def _swap_placeholders(self, module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        ids = args[0]
        cam, sc = ids == self.adapter.camera_id, ids == self.adapter.scale_id
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
        """Parameters trained at the head learning rate (paper: 1e-4): heads and camera/scale embeddings."""
        return [p for n, p in self.named_parameters() if not n.startswith("hf_model.") and p.requires_grad]

    def student_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the MLLM itself (paper: 2e-5)."""
        return [p for p in self.hf_model.parameters() if p.requires_grad]

    def inference_model(self) -> nn.Module:
        return self.hf_model

    def forward(self, samples: list[dict], heads: tuple[str, ...] = HEADS) -> list[dict]:
        """Predictions of prepared samples (``prepare_sample``), one dict each:

        ``logits [K, V]`` only at the ``K`` positions whose next token is supervised (the LM head never projects
        the rest: at 32 frames x 300 tokens and a 151k-token vocabulary the full logits would take gigabytes),
        ``lm_labels [K]`` (those next tokens), ``groups`` (temporal groups ``t``), ``frame_step`` (frames per
        group: 1 ``duplicate``, 2 ``pair``), ``anchor`` (a zero carrying the graph), and for the requested
        ``heads``: ``pose_enc [t, 9]``, ``metric_scale [1]``, ``features`` (teacher layer -> ``[t, h, w, C]``
        at the sample's feature-target grid) and ``depth [t, H, W]`` (at its depth-target size).
        ``distill`` / ``depth`` need the sample's targets for their sizes and are skipped without them.
        """
        return [self._predict(s, heads) for s in samples]

    def _predict(self, s: dict, heads: tuple[str, ...], depth_hw: tuple[int, int] | None = None) -> dict:
        dev = self.camera_embed.weight.device
        inputs = {k: v.to(dev) for k, v in s["inputs"].items()}
        inputs["position_ids"] = self.adapter.position_ids(self.hf_model, inputs)
        labels = s["labels"][0].to(dev)
        keep = (labels[1:] != IGNORE).nonzero().flatten()  # position p predicts token p + 1
        out = self.hf_model(**inputs, output_hidden_states=True, use_cache=False, logits_to_keep=keep)
        ids, hs = inputs["input_ids"], out.hidden_states
        pred = {"logits": out.logits[0], "lm_labels": labels[keep + 1], "anchor": hs[-1].sum() * 0,
                "groups": int(inputs["video_grid_thw"][0, 0]), "frame_step": self.frame_step}
        # heads run in their own dtype (bf16 once DeepSpeed's bf16 mode casts the module; the adapter's states are
        # fp32) and hand fp32 predictions to the losses, as the targets are
        hd = self.camera_embed.weight.dtype
        cam, sc = (x.to(hd) for x in self.adapter.token_states(hs[-1], ids))
        if "camera" in heads:
            pred["pose_enc"] = self.camera_head(cam).float()
        if "scale" in heads:
            pred["metric_scale"] = self.scale_head(sc).reshape(-1).float()
        tg = s.get("targets", {})
        want_feats = "distill" in heads and "features" in tg
        depth_hw = tuple(tg["depth"].shape[1:]) if "depth" in tg and depth_hw is None else depth_hw
        want_depth = "depth" in heads and depth_hw is not None
        if want_feats or want_depth:
            grids = [g.to(hd) for g in self.adapter.video_grids(hs, ids, inputs["video_grid_thw"], self.layers)]
            if want_feats:
                sizes = [tuple(tg["features"][layer].shape[1:3]) for layer in self.cfg.teacher_layers]
                pred["features"] = {layer: head(g, hw).float() for layer, head, g, hw
                                    in zip(self.cfg.teacher_layers, self.distill_heads, grids, sizes, strict=True)}
            if want_depth:
                pred["depth"] = self.depth_head(grids, depth_hw).float()
        return pred

    @torch.no_grad()
    def predict(self, s: dict, depth_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        """Head readout of one sample prepared with ``train=True`` (placeholders present).

        Returns ``pose_enc [t, 9]``, ``depth [t, *depth_hw]`` (teacher units) and ``metric_scale``
        (scalar), one entry per temporal group ``t`` (= frames in ``duplicate`` mode, pairs in ``pair``).
        """
        pred = self._predict({**s, "targets": {}}, ("camera", "scale", "depth"), tuple(depth_hw))
        return {"pose_enc": pred["pose_enc"], "depth": pred["depth"], "metric_scale": pred["metric_scale"][0]}


def load_student(cfg: StudentConfig, dtype: torch.dtype = torch.float32) -> tuple[GeoStudent, StudentAdapter]:
    """``(GeoStudent, adapter)`` from a local folder, hub id, or tiny name; ``adapter.processor`` is the processor."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    path = resolve_model_path(cfg)
    adapter = adapter_for(AutoProcessor.from_pretrained(path), AutoConfig.from_pretrained(path))
    hf = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, attn_implementation=cfg.attn_implementation)
    return GeoStudent(hf, adapter, cfg), adapter
