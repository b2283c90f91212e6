"""Shared helpers for the benchmark scripts (timing, tables, paper-shaped fake clips)."""

from __future__ import annotations

import io
import platform
import time
from collections.abc import Callable

import numpy as np

PAPER = {
    "frames": 32,  # frames per clip (paper: up to 32 at 2 fps)
    "hw": (378, 504),  # teacher input, longest edge 504
    "feat_grid": (13, 18),  # 27x36 patch grid, 2x2 average-pooled (floor)
    "feat_layers": (4, 11, 17, 23),
    "feat_channels": 1024,  # frame-attention half of VGGT's 2048
    "global_batch_clips": 32,  # per optimizer step (2 per GPU x 4 accum x 4 GPUs)
}
"""The paper's target shapes (the official GeoVR code, WHB139426/GeoVR-MLLM: 504x378 VGGT input, layers 4/11/17/23, 2x2 pooling)."""


def machine() -> str:
    import os

    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {dev}, torch {torch.__version__}"


def timeit(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``repeat`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def table(rows: list[dict], cols: list[str]) -> str:
    """A fixed-width text table."""
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols), "  ".join("-" * widths[c] for c in cols)]
    lines += ["  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def jpeg(img: np.ndarray, quality: int = 95) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
