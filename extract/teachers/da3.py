"""Depth Anything 3 (any-view, e.g. ``da3-large``) as the main teacher, through the official
``depth-anything-3`` package (optional; install: docs/vggt.md), as the official GeoVR code offers it.

Targets per clip: depth and confidence from DA3's DualDPT head, cameras from its camera decoder
(re-expressed with frame 0 = world and encoded as ``absT_quaR_FoV`` by geovr's own geometry), and
the requested layers' patch features (``export_feat_layers``: the normalised DINOv2 tokens of that
block, ``[S, h, w, C]``, single width: there is no frame/global split, so stores keep all channels).
Frames go in as the official GeoVR code feeds them: ``[0, 1]``, no ImageNet normalisation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from geovr.extract.teachers.base import ClipContext, TeacherOutput, reduce_features
from geovr.shared.geometry import extri_intri_to_pose_enc, relative_to_first
from geovr.shared.schema import TeacherInfo

if TYPE_CHECKING:
    from geovr.shared.features import FeatureSpec


def da3_net(model_name: str, overrides: dict | None = None) -> torch.nn.Module:
    """The official network for a ``depth_anything_3`` preset (``da3-large``, ``da3metric-large``...), built by
    the package from its own config (``overrides`` merged in: smaller test models)."""
    try:
        from depth_anything_3.cfg import create_object, load_config
        from depth_anything_3.registry import MODEL_REGISTRY
        from omegaconf import OmegaConf
    except ImportError as exc:
        raise ValueError(f"Depth Anything 3 needs the depth-anything-3 package (see docs/vggt.md): {exc}") from exc
    if model_name not in MODEL_REGISTRY:
        raise ValueError(f"unknown Depth Anything 3 preset {model_name!r}; known: {sorted(MODEL_REGISTRY)}")
    cfg = load_config(MODEL_REGISTRY[model_name])
    if overrides:
        cfg = OmegaConf.merge(cfg, overrides)
    return create_object(cfg)


def load_da3(source: str) -> tuple[torch.nn.Module, str, str]:
    """``(net, preset name, sha256 of the weights)`` from a folder or hub id holding the package's
    ``config.json`` (``{"model_name": ...}``, optional geovr ``"overrides"``) and ``model.safetensors``
    (keys ``model.*``, as the package's hub mixin writes them); strict load."""
    from safetensors.torch import load_file

    folder = Path(source)
    if not folder.is_dir():
        if source.startswith((".", "/")):
            raise ValueError(f"{source}: Depth Anything 3 folder not found")
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(source, allow_patterns=["config.json", "model.safetensors"]))
    try:
        cfg = json.loads((folder / "config.json").read_text())
        weights = folder / "model.safetensors"
        state = load_file(str(weights))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{source}: not a Depth Anything 3 checkpoint folder ({exc})") from exc
    name = str(cfg.get("model_name", ""))
    net = da3_net(name, cfg.get("overrides"))
    state = {k.removeprefix("model."): v for k, v in state.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{source}: weights do not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    h = hashlib.sha256()
    with open(weights, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return net, name, h.hexdigest()


class DA3Teacher:
    """DA3 behind the ``Teacher`` protocol (frozen; bf16 autocast on CUDA as the package's API, fp32 on CPU)."""

    patch_size = 14
    feature_halves = False
    """Features are single-width (no ``cat(frame, global)``): the store keeps ``channels="both"``."""

    def __init__(self, net: torch.nn.Module, version: str, weights_sha256: str, device: str,
                 layers: Sequence[int], random_init: bool = False) -> None:
        self.net = net.to(device).eval().requires_grad_(False)
        self.device = device
        depth = len(net.backbone.pretrained.blocks)
        self.info = TeacherInfo(name="da3", version=version, weights_sha256=weights_sha256,
                                feature_layers=tuple(layers), num_layers=depth, random_init=random_init)

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor, layers: Sequence[int], context: ClipContext | None = None,
                 spec: FeatureSpec | None = None) -> TeacherOutput:
        s, _, h, w = frames.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"frame size {h}x{w} is not a multiple of DA3's patch size {self.patch_size}")
        if spec is not None and spec.channels != "both":
            raise ValueError(f"DA3 features are single-width; the store must keep channels='both', not {spec.channels!r}")
        x = frames.to(self.device).float()[None]
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.is_cuda):
            out = self.net(x, export_feat_layers=list(layers))
        e = relative_to_first(out["extrinsics"][0].float().cpu().numpy())
        k = out["intrinsics"][0].float().cpu().numpy()
        pose = extri_intri_to_pose_enc(e, k, (h, w))
        feats = {}
        for i in layers:
            f = out["aux"][f"feat_layer_{i}"][0]
            feats[int(i)] = (reduce_features(f, spec) if spec is not None else f.float()).cpu()
        return TeacherOutput(
            pose_enc=torch.from_numpy(pose).float(), extrinsics=torch.from_numpy(e).float(),
            intrinsics=torch.from_numpy(k).float(), depth=out["depth"][0].float().cpu(),
            depth_conf=out["depth_conf"][0].float().cpu(), features=feats, features_spec=spec,
        )


def build(weights: str | None = None, preset: str = "da3-large", device: str | None = None, seed: int = 0,
          layers: Sequence[int] = (4, 11, 17, 23), random_init: bool = False, overrides: dict | None = None,
          **_: object) -> DA3Teacher:
    """Registry factory: ``weights`` = a DA3 folder or hub id (e.g. ``depth-anything/DA3-LARGE``); without it
    only with ``random_init=True`` (a seeded random ``preset``, optionally shrunk by ``overrides``)."""
    if weights is None and not random_init:
        raise ValueError("DA3 needs weights (a folder or hub id); pass random_init=True to run an untrained model")
    if weights is not None and random_init:
        raise ValueError("weights and random_init=True exclude each other")
    if weights is None:
        torch.manual_seed(seed)
        net, name, sha = da3_net(preset, overrides), f"{preset}-random-seed{seed}", ""
    else:
        net, model_name, sha = load_da3(str(weights))
        name = f"{model_name}:{weights}"
    if not hasattr(net, "cam_dec") or net.cam_dec is None:
        raise ValueError(f"{name}: a monocular DA3 (no camera decoder) cannot be the main teacher")
    depth = len(net.backbone.pretrained.blocks)
    bad = [i for i in layers if not 0 <= int(i) < depth]
    if bad:
        raise ValueError(f"layers {bad} outside DA3's {depth} blocks")
    return DA3Teacher(net, name, sha, device or ("cuda" if torch.cuda.is_available() else "cpu"), layers,
                      random_init=weights is None)
