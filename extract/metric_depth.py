"""Metric depth models for the metric-scale target of clips without ground-truth depth
(``scale_source = "metric_teacher"``). ``load_metric_depth(spec)`` picks one:

- ``da3:<folder or hub id>`` (e.g. ``da3:depth-anything/DA3METRIC-LARGE``, the paper's): Depth Anything 3
  metric through the official ``depth-anything-3`` package (``DA3MetricDepth``; install: docs/vggt.md).
  As the official GeoVR code: metres = focal * output / 300 with the focal (mean of fx, fy) of the
  teacher's predicted intrinsics at the teacher's input size, and its sky head gives the sky mask
  (sky probability >= 0.3) that the scale fit leaves out.
- anything else: a transformers depth-estimation checkpoint (``MetricDepthModel``, no sky output).

Every model is called as ``model(frames, intrinsics) -> MetricDepth``.

Any checkpoint ``AutoModelForDepthEstimation`` loads and whose output is in metres works, e.g.
Depth Anything V2 Metric (``depth-anything/Depth-Anything-V2-Metric-Indoor-Large-hf``: DPT head
with ``depth_estimation_type="metric"``, ``max_depth`` 20 m indoor / 80 m outdoor) or DepthPro
(``apple/DepthPro-hf``). Pre- and post-processing are the checkpoint's own image processor: its
resize/normalisation on the way in, ``post_process_depth_estimation`` back to the frame size.

``write_random_depth_anything`` writes a seeded random Depth Anything folder of any width and
depth (tests and benchmarks; the real loading path is the same ``from_pretrained``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from geovr.shared.stores.fsio import write_folder_once


@dataclass
class MetricDepth:
    """A metric depth model's prediction for ``S`` frames of ``H x W``."""

    depth: torch.Tensor
    """float32 ``[S, H, W]``: z-depth in metres."""
    sky: torch.Tensor | None = None
    """bool ``[S, H, W]``: True where the model sees sky (left out of the scale fit); None if it cannot tell."""


class MetricDepthModel:
    """A frozen transformers metric depth model: ``model(frames [S, 3, H, W] in [0, 1]) -> MetricDepth`` (no sky)."""

    def __init__(self, model: str, device: str | None = None, batch_size: int = 8) -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.name = str(model)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = int(batch_size)
        try:
            self.processor = AutoImageProcessor.from_pretrained(model)
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
            self.model = AutoModelForDepthEstimation.from_pretrained(model, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{model}: cannot load a metric depth model ({exc})") from exc
        cfg = self.model.config
        if getattr(cfg, "depth_estimation_type", "metric") != "metric":
            raise ValueError(f"{model}: a relative-depth checkpoint (depth_estimation_type="
                             f"{cfg.depth_estimation_type!r}); the scale target needs a metric model")
        self.model.to(self.device).eval().requires_grad_(False)

    def __call__(self, frames: torch.Tensor, intrinsics: torch.Tensor | None = None) -> MetricDepth:
        """Metric z-depth for ``frames`` float32 ``[S, 3, H, W]`` in ``[0, 1]`` (``intrinsics`` unused)."""
        return MetricDepth(depth=self.depth(frames))

    @torch.inference_mode()
    def depth(self, frames: torch.Tensor) -> torch.Tensor:
        """Metric z-depth float32 ``[S, H, W]`` in metres for ``frames`` float32 ``[S, 3, H, W]`` in ``[0, 1]``."""
        s, _, h, w = frames.shape
        out = []
        for i in range(0, s, self.batch_size):
            chunk = frames[i : i + self.batch_size]
            inputs = self.processor(images=list(chunk.float().cpu()), do_rescale=False, return_tensors="pt")
            pixel_values = inputs["pixel_values"].to(self.device, self.model.dtype)
            pred = self.model(pixel_values=pixel_values)
            pred.predicted_depth = pred.predicted_depth.float()
            post = self.processor.post_process_depth_estimation(pred, target_sizes=[(h, w)] * len(chunk))
            out += [p["predicted_depth"].float().cpu() for p in post]
        return torch.stack(out)


def write_random_depth_anything(out_dir: str | Path, hidden: int = 32, layers: int = 4, heads: int = 2,
                                image_size: int = 56, max_depth: int = 20, seed: int = 0) -> Path:
    """A seeded random metric Depth Anything V2 folder (config, weights, processor) built from a config.

    The real ViT-L model is ``hidden=1024, layers=24, heads=16, image_size=518``.
    """
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    q = layers // 4
    backbone = Dinov2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=4 * hidden, image_size=image_size, patch_size=14,
                            out_indices=[q, 2 * q, 3 * q, layers], reshape_hidden_states=False)
    neck = [max(hidden // 8, 4), max(hidden // 4, 4), max(hidden // 2, 4), hidden]
    cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=hidden, neck_hidden_sizes=neck,
                              fusion_hidden_size=max(hidden // 2, 8), head_hidden_size=max(hidden // 8, 4),
                              depth_estimation_type="metric", max_depth=max_depth)
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(cfg).eval()
    proc = DPTImageProcessor(size={"height": image_size, "width": image_size}, keep_aspect_ratio=True,
                             ensure_multiple_of=14, do_pad=False,
                             image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])

    def write(tmp: str) -> None:
        model.save_pretrained(tmp)
        proc.save_pretrained(tmp)

    return Path(write_folder_once(str(out), write, "config.json"))


DA3_FOCAL_DIVISOR = 300.0
"""DA3 metric output is ``depth * 300 / focal``: metres = focal * output / 300 (official ``apply_metric_scaling``)."""
DA3_SKY_THRESHOLD = 0.3
"""Sky where the DA3 sky output is >= this (official ``compute_sky_mask``)."""


class DA3MetricDepth:
    """Depth Anything 3 metric (official package) as a metric depth model with a sky mask.

    ``net`` is the package's ``DepthAnything3Net``; it sees the teacher's input frames as they are, in
    ``[0, 1]`` and at the teacher's size, as the official GeoVR code feeds them (no ImageNet normalisation
    there; ``normalize=True`` applies the package's own API normalisation instead). On CUDA it runs under
    bf16 autocast (as the package's API), on CPU in fp32.
    """

    def __init__(self, net: torch.nn.Module, name: str, device: str | None = None, normalize: bool = False,
                 batch_size: int = 32) -> None:
        self.name = name
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.normalize = normalize
        self.batch_size = int(batch_size)

    @classmethod
    def from_pretrained(cls, source: str, device: str | None = None, **kwargs: object) -> DA3MetricDepth:
        """A folder or hub id holding the package's ``config.json`` (``{"model_name": "da3metric-large"}``,
        optional geovr ``"overrides"`` for test-size models) and ``model.safetensors`` (keys ``model.*``)."""
        from geovr.extract.teachers.da3 import load_da3

        net, name, _ = load_da3(source)
        if "metric" not in name:
            raise ValueError(f"{source}: {name!r} is not a metric Depth Anything 3 model")
        return cls(net, f"da3:{source}", device=device, **kwargs)

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor, intrinsics: torch.Tensor | None = None) -> MetricDepth:
        """``frames`` float32 ``[S, 3, H, W]`` in ``[0, 1]``; ``intrinsics`` ``[S, 3, 3]`` (pixels of ``H x W``, the
        teacher's prediction) give the focal that turns DA3's output into metres."""
        if intrinsics is None:
            raise ValueError("Depth Anything 3 metric needs the teacher's intrinsics for its focal rescale")
        s = frames.shape[0]
        focal = (intrinsics[:, 0, 0] + intrinsics[:, 1, 1]).float() / 2  # [S]
        depth, sky = [], []
        use_bf16 = self.device.startswith("cuda")
        for i in range(0, s, self.batch_size):
            x = frames[i : i + self.batch_size].to(self.device).float()
            if self.normalize:
                mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
                std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
                x = (x - mean) / std
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_bf16):
                out = self.net(x[None])
            depth.append(out["depth"][0].float().cpu())
            sky.append(out["sky"][0].float().cpu() >= DA3_SKY_THRESHOLD)
        raw = torch.cat(depth)
        return MetricDepth(depth=raw * focal.cpu()[:, None, None] / DA3_FOCAL_DIVISOR, sky=torch.cat(sky))


def load_metric_depth(spec: str, device: str | None = None):
    """``da3:<folder or hub id>`` -> ``DA3MetricDepth``; anything else -> transformers ``MetricDepthModel``."""
    if spec.startswith("da3:"):
        return DA3MetricDepth.from_pretrained(spec[4:], device=device)
    return MetricDepthModel(spec, device=device)


def write_random_da3_metric(out_dir: str | Path, seed: int = 0) -> Path:
    """A seeded random Depth Anything 3 metric folder at the smallest size the package builds (ViT-S backbone,
    narrow DPT head; ~22 M parameters), written as the real checkpoint is laid out (tests)."""
    from safetensors.torch import save_file

    from geovr.extract.teachers.da3 import da3_net

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    overrides = {"net": {"name": "vits", "out_layers": [2, 5, 8, 11]},
                 "head": {"dim_in": 384, "features": 32, "out_channels": [16, 32, 64, 64]}}
    torch.manual_seed(seed)
    net = da3_net("da3metric-large", overrides)

    def write(tmp: str) -> None:
        import json

        save_file({f"model.{k}": v.contiguous() for k, v in net.state_dict().items()}, f"{tmp}/model.safetensors")
        Path(tmp, "config.json").write_text(json.dumps({"model_name": "da3metric-large", "overrides": overrides}))

    return Path(write_folder_once(str(out), write, "config.json"))
