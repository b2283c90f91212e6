"""Loading real VGGT weights (local .pt/.safetensors or hub id) and the ``Teacher`` adapter."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from geovr.extract.teachers.base import ClipContext, TeacherOutput, reduce_features
from geovr.extract.teachers.vggt.model import VGGT, VGGTConfig
from geovr.shared.geometry import pose_enc_to_extri_intri
from geovr.shared.schema import TeacherInfo

if TYPE_CHECKING:
    from geovr.shared.features import FeatureSpec

DROPPED_PREFIXES = ("point_head.", "track_head.")
"""Official checkpoint parts the teacher never runs; dropped before the strict load."""


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch.load(path, map_location="cpu", weights_only=True)
    return obj.get("model", obj) if isinstance(obj, dict) and "model" in obj else obj


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def resolve_weights(weights: str) -> Path:
    """A local file, or ``repo_id`` / ``repo_id:filename`` on the Hugging Face hub (cached download)."""
    p = Path(weights)
    if p.is_file():
        return p
    if p.exists() or weights.startswith((".", "/")):
        raise FileNotFoundError(f"{weights}: VGGT weights file not found")
    from huggingface_hub import hf_hub_download

    repo, _, name = weights.partition(":")
    return Path(hf_hub_download(repo, name or "model.safetensors"))


def load_vggt(weights: str | Path | None, config: VGGTConfig) -> tuple[VGGT, str]:
    """``(model, weights_sha256)``; strict load after dropping ``point_head.*`` / ``track_head.*``."""
    model = VGGT(config)
    if weights is None:
        return model, ""
    path = resolve_weights(str(weights))
    sd = {k: v for k, v in _read_state_dict(path).items() if not k.startswith(DROPPED_PREFIXES)}
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    wrong = [k for k in set(own) & set(sd) if own[k].shape != sd[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"{path}: not a checkpoint of this VGGT config: missing {missing[:5]}, unexpected "
                         f"{unexpected[:5]}, wrong shapes {[(k, tuple(sd[k].shape), tuple(own[k].shape)) for k in wrong[:3]]}")
    model.load_state_dict(sd, strict=True)
    return model, _sha256(path)


class VGGTTeacher:
    """VGGT behind the ``Teacher`` protocol (frozen, inference mode)."""

    def __init__(self, model: VGGT, version: str, weights_sha256: str, device: str, layers: Sequence[int],
                 random_init: bool = False) -> None:
        self.model = model.to(device).eval().requires_grad_(False)
        self.device = device
        self.patch_size = model.cfg.patch_size
        self.info = TeacherInfo(name="vggt", version=version, weights_sha256=weights_sha256,
                                feature_layers=tuple(layers), num_layers=model.cfg.depth, random_init=random_init)

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor, layers: Sequence[int], context: ClipContext | None = None,
                 spec: FeatureSpec | None = None) -> TeacherOutput:
        """Features: full float32 ``[S, h, w, 2C]``, or with ``spec`` reduced on the device before the copy to
        the host (channel half, pooling, cast: ~8-16x less traffic than the full layers)."""
        s, _, h, w = frames.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"frame size {h}x{w} is not a multiple of VGGT's patch size {self.patch_size}")
        out = self.model(frames.to(self.device)[None], layers=tuple(layers))
        pose = out["pose_enc"][0].float().cpu()
        # FoV leaves VGGT through a ReLU and can be 0 (untrained weights): clamp so intrinsics stay finite
        fov_safe = torch.cat([pose[:, :7], pose[:, 7:].clamp(min=1e-3)], -1)
        e, k = pose_enc_to_extri_intri(fov_safe.numpy(), (h, w))
        return TeacherOutput(
            pose_enc=pose, extrinsics=torch.from_numpy(e).float(), intrinsics=torch.from_numpy(k).float(),
            depth=out["depth"][0].float().cpu(), depth_conf=out["depth_conf"][0].float().cpu(),
            features={i: (reduce_features(f[0], spec) if spec is not None else f[0].float()).cpu()
                      for i, f in out["features"].items()},
            features_spec=spec,
        )


def build(weights: str | None = None, config: str | VGGTConfig = "vggt_1b", device: str | None = None,
          seed: int = 0, layers: Sequence[int] = (4, 11, 17, 23), random_init: bool = False,
          **_: object) -> VGGTTeacher:
    """Registry factory. Without ``weights`` it refuses unless ``random_init=True`` (a seeded random model for
    tests, demos and benchmarks, recorded as ``TeacherInfo.random_init``)."""
    if weights is None and not random_init:
        raise ValueError("VGGT needs weights (a checkpoint file or hub id); pass random_init=True to run an "
                         "untrained model on purpose")
    if weights is not None and random_init:
        raise ValueError("weights and random_init=True exclude each other")
    cfg = config if isinstance(config, VGGTConfig) else getattr(VGGTConfig, config)()
    if isinstance(config, str) and config == "tiny":
        layers = tuple(i for i in layers if i < cfg.depth) or tuple(range(cfg.depth))
    torch.manual_seed(seed)
    model, sha = load_vggt(weights, cfg)
    name = config if isinstance(config, str) else "custom"
    version = f"{name}-random-seed{seed}" if weights is None else f"{name}:{Path(str(weights)).name}"
    return VGGTTeacher(model, version, sha, device or ("cuda" if torch.cuda.is_available() else "cpu"), layers,
                       random_init=weights is None)
