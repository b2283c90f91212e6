"""Metric monocular depth from a transformers depth-estimation model, for the metric-scale target
of clips without ground-truth depth (``scale_source = "metric_teacher"``).

Any checkpoint ``AutoModelForDepthEstimation`` loads and whose output is in metres works, e.g.
Depth Anything V2 Metric (``depth-anything/Depth-Anything-V2-Metric-Indoor-Large-hf``: DPT head
with ``depth_estimation_type="metric"``, ``max_depth`` 20 m indoor / 80 m outdoor) or DepthPro
(``apple/DepthPro-hf``). Pre- and post-processing are the checkpoint's own image processor: its
resize/normalisation on the way in, ``post_process_depth_estimation`` back to the frame size.

``write_random_depth_anything`` writes a seeded random Depth Anything folder of any width and
depth (tests and benchmarks; the real loading path is the same ``from_pretrained``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from geovr.shared.stores.fsio import write_folder_once


class MetricDepthModel:
    """A frozen metric depth model: ``model(frames [S, 3, H, W] in [0, 1]) -> depth [S, H, W]`` metres."""

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

    @torch.inference_mode()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
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
