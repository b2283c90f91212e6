"""The frame-sampling contract shared by both stages.

One pure, deterministic function, :func:`plan_sampling`, maps a source video (frame count, fps,
size) and a :class:`SamplingConfig` to the exact frame indices, timestamps and crop/resize the
teacher saw. Stage one records its result per clip; stage two re-derives it with
:func:`check_clip_matches` and refuses a clip whose cached sampling differs from the run's.

Resize rule (VGGT / GeoVR teacher input): the longest edge becomes ``longest_edge`` (504), the
other side the nearest multiple of ``multiple`` (28, so both the teacher's 14-px and the
student's 28-px patch grids tile it); the source is first centre-cropped to exactly the output
aspect ratio so no pixel is stretched (the crop removes at most ``multiple / 2`` output pixels'
worth of field of view).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from geovr.shared.errors import UsageError

if TYPE_CHECKING:  # numpy and the schema load on first use, so the CLI can build flags from SamplingConfig
    import numpy as np

    from geovr.shared.schema import ResizeSpec


class SamplingMismatch(UsageError):
    """A cached clip was sampled differently from what the current configuration would do."""


@dataclass(frozen=True)
class SamplingConfig:
    """How frames are chosen from a source clip and resized for the teacher (and the student)."""

    fps: float = 2.0
    """Target sampling rate in frames/second (paper: 2); ignored when ``num_frames > 0``."""
    num_frames: int = 0
    """If > 0, exactly this many frames spread uniformly over the clip (overrides ``fps``)."""
    min_frames: int = 4
    """Fewest frames per clip; a shorter source is refused (paper: 4)."""
    max_frames: int = 32
    """Most frames per clip; longer clips are subsampled uniformly (paper: 32)."""
    even: bool = True
    """Round the count down to an even number (Qwen-VL's temporal_patch_size = 2)."""
    longest_edge: int = 504
    """Longest edge of the teacher input in pixels (VGGT: 504)."""
    multiple: int = 28
    """Both output sides are multiples of this (28 = 2 x VGGT's 14-px patch = Qwen2.5-VL's merged patch)."""
    interpolation: str = "bicubic"
    """Resize filter."""

    def __post_init__(self) -> None:
        if self.num_frames < 0 or self.min_frames < 1 or self.max_frames < self.min_frames:
            raise ValueError(f"bad frame limits in {self}")
        if self.num_frames == 0 and not self.fps > 0:
            raise ValueError(f"SamplingConfig.fps must be > 0 when num_frames == 0, got {self.fps}")
        if self.longest_edge < self.multiple or self.multiple < 1:
            raise ValueError(f"longest_edge {self.longest_edge} must be >= multiple {self.multiple} >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SamplingConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown sampling config keys {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class FrameSampling:
    """The result of :func:`plan_sampling` for one clip."""

    indices: np.ndarray
    """int64 ``[S]``: source frame indices, strictly increasing."""
    timestamps: np.ndarray
    """float64 ``[S]``: ``index / source_fps`` in seconds."""
    resize: ResizeSpec
    """Centre crop + resize to the teacher input."""


def output_size(src_hw: tuple[int, int], cfg: SamplingConfig) -> tuple[int, int]:
    """Teacher input ``(H, W)``: longest edge ``cfg.longest_edge``, other side a multiple of ``cfg.multiple``."""
    h, w = src_hw
    if h <= 0 or w <= 0:
        raise ValueError(f"source size {src_hw} must be positive")
    long_out = cfg.longest_edge - cfg.longest_edge % cfg.multiple
    short = min(h, w) * long_out / max(h, w)
    short_out = max(cfg.multiple, int(round(short / cfg.multiple)) * cfg.multiple)
    return (long_out, short_out) if h >= w else (short_out, long_out)


def centre_crop(src_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Largest centred ``(top, left, height, width)`` box of the source with the output's aspect ratio."""
    h, w = src_hw
    oh, ow = out_hw
    if h * ow > w * oh:  # source is taller than the output aspect: crop rows
        ch, cw = int(round(w * oh / ow)), w
    else:
        ch, cw = h, int(round(h * ow / oh))
    return ((h - ch) // 2, (w - cw) // 2, ch, cw)


def frame_count(n_available: int, source_fps: float, cfg: SamplingConfig) -> int:
    """How many frames a clip of ``n_available`` source frames gets."""
    if cfg.num_frames > 0:
        n = cfg.num_frames
    else:
        fps = source_fps if math.isfinite(source_fps) and source_fps > 0 else 30.0
        n = int(math.floor(n_available / fps * cfg.fps)) or 1
    n = min(max(n, cfg.min_frames), cfg.max_frames, n_available)
    if cfg.even and n % 2:
        n -= 1
    return n


def plan_sampling(
    num_source_frames: int,
    source_fps: float,
    source_hw: tuple[int, int],
    cfg: SamplingConfig,
    start: int = 0,
    end: int | None = None,
) -> FrameSampling:
    """Frames and resize for the clip ``[start, end)`` of a source; raises ``ValueError`` if too short."""
    end = num_source_frames if end is None else min(end, num_source_frames)
    n_available = end - start
    if start < 0 or n_available <= 0:
        raise ValueError(f"empty clip range [{start}, {end}) of a {num_source_frames}-frame source")
    n = frame_count(n_available, source_fps, cfg)
    if n < cfg.min_frames:
        raise ValueError(f"clip has {n_available} frames; at least {cfg.min_frames} (even: {cfg.even}) are required")
    import numpy as np

    from geovr.shared.schema import ResizeSpec

    # uniform over the clip, centred in each of n equal bins: deterministic and duplicate-free
    idx = start + np.floor((np.arange(n) + 0.5) * n_available / n).astype(np.int64)
    fps = source_fps if math.isfinite(source_fps) and source_fps > 0 else 30.0
    out_hw = output_size(source_hw, cfg)
    resize = ResizeSpec(src_hw=tuple(source_hw), crop_box=centre_crop(source_hw, out_hw), out_hw=out_hw,
                        interpolation=cfg.interpolation)
    return FrameSampling(indices=idx, timestamps=idx / fps, resize=resize)


def check_clip_matches(meta: dict[str, Any], cfg: SamplingConfig, start: int = 0, end: int | None = None) -> None:
    """Refuse (``SamplingMismatch``) a cached clip whose frames or resize differ from ``cfg``'s plan.

    ``meta`` is ``ClipTargets.meta_dict()`` (as stored per clip).
    """
    video = meta["video"]
    src_hw = tuple(meta["resize"]["src_hw"])
    try:
        plan = plan_sampling(int(video["num_frames"]), float(video["fps"]), src_hw, cfg, start, end)
    except ValueError as exc:
        raise SamplingMismatch(f"clip {meta['clip_id']!r}: cannot be sampled under {cfg}: {exc}") from exc
    import numpy as np

    from geovr.shared.schema import ResizeSpec

    cached = np.asarray(meta["frame_indices"], dtype=np.int64)
    if not np.array_equal(cached, plan.indices):
        raise SamplingMismatch(
            f"clip {meta['clip_id']!r}: cached frame indices {cached.tolist()} differ from this run's sampling "
            f"{plan.indices.tolist()} (config {cfg}); re-extract the store with this sampling config or train "
            "with the store's (see its header.json 'sampling')"
        )
    if ResizeSpec.from_dict(meta["resize"]) != plan.resize:
        raise SamplingMismatch(
            f"clip {meta['clip_id']!r}: cached resize {meta['resize']} differs from this run's {plan.resize.to_dict()}"
        )
