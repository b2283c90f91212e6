"""The frame-sampling contract shared by both stages.

One pure, deterministic function, :func:`plan_sampling`, maps a source video (frame count, fps,
size) and a :class:`SamplingConfig` to the exact frame indices, timestamps, the **student frames**
(what the MLLM sees; these are the frames a store caches) and the **teacher input** derived from
exactly those frames. Stage one records its result per clip; stage two re-derives it with
:func:`check_clip_matches` and refuses a clip whose cached sampling differs from the run's.

Two resizes, as in the GeoVR reference code (``utils/preprocess.py``,
``utils/video_processing_qwen3_vl.py``, ``scripts/train.sh``):

1. **Source -> student frames** (:func:`student_size`): the official Qwen-VL processor's
   ``smart_resize`` for the configured pixel budget; whole frame, no crop, both sides multiples of
   the merged patch (``student_patch``: 32 px for Qwen3-VL = 16 px patch x 2 merge, 28 for
   Qwen2.5-VL). ``student_budget = "clip"`` is the Qwen3-VL video processor the paper runs: the
   budget ``max_frames * student_tokens * patch^2`` pixels is shared by the clip's ``S`` frames
   (``video_max_pixels = 32 * 300 * 32 * 32`` in ``train.sh``, so 32 frames get at most 300
   merged tokens each; fewer frames may get more), ``min_frames * student_min_tokens * patch^2``
   is the floor. ``"frame"`` is transformers' Qwen2-VL / Qwen2.5-VL video processor: the same
   rule per frame with ``student_tokens * patch^2``. The paper duplicates every frame for the
   student afterwards with a doubled budget, which keeps this size (see docs/architecture.md).
2. **Student frames -> teacher input** (:func:`teacher_resize`), by ``teacher_mode``:

   - ``stretch`` (paper): the longest edge becomes ``longest_edge`` (504), the other side
     ``round(side * longest_edge / long_side / multiple) * multiple`` (Python rounding, the
     reference's expression), the whole frame resized: nothing cropped, the aspect ratio slightly
     stretched;
   - ``center_crop`` (geovr <= 0.x): same output size, the frame first centre-cropped to exactly
     the output's aspect ratio (no stretch, a sliver of field of view lost);
   - ``vggt_crop`` (VGGT's demo ``load_and_preprocess_images(mode="crop")``): width becomes
     ``longest_edge`` (518), height ``round(h * 518 / w / 14) * 14``, then rows centre-cropped to
     518 if taller (crop start ``(h' - 518) // 2`` in resized pixels).

Every resize is described as a :class:`~geovr.shared.schema.ResizeSpec` (a crop box, possibly
fractional, in input pixels, then a resize of that box), so intrinsics follow exactly
(``geovr.shared.geometry.crop_resize_intrinsics``) and :func:`compose` chains both hops into the
source -> teacher-input map a teacher's ground truth is resampled with.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from geovr.shared.schema import ResizeSpec

TEACHER_MODES = ("stretch", "center_crop", "vggt_crop")
"""Allowed ``SamplingConfig.teacher_mode`` values."""
STUDENT_BUDGETS = ("clip", "frame")
"""Allowed ``SamplingConfig.student_budget`` values."""
INDEX_RULES = ("uniform", "linspace")
"""Allowed ``SamplingConfig.index_rule`` values."""
_MODE_DEFAULTS = {"stretch": (504, 28), "center_crop": (504, 28), "vggt_crop": (518, 14)}
"""``teacher_mode -> (longest_edge, multiple)`` used when those fields are 0."""


class SamplingMismatch(ValueError):
    """A cached clip was sampled differently from what the current configuration would do."""


@dataclass(frozen=True)
class SamplingConfig:
    """How frames are chosen from a source clip and resized for the student and the teacher."""

    fps: float = 2.0
    """Target sampling rate in frames/second (paper: 2); ignored when ``num_frames > 0``."""
    num_frames: int = 0
    """If > 0, exactly this many frames spread uniformly over the clip (overrides ``fps``)."""
    min_frames: int = 4
    """Fewest frames per clip; a shorter source is refused (paper: 4)."""
    max_frames: int = 32
    """Most frames per clip; longer clips are subsampled uniformly (paper: 32)."""
    even: bool = True
    """Round the count down to an even number (Qwen-VL's temporal_patch_size = 2; the paper's code does not,
    it duplicates every frame instead)."""
    index_rule: str = "uniform"
    """Which frames: ``uniform`` = the centre of each of ``S`` equal bins of the clip range; ``linspace`` =
    ``round(linspace(start, end - 1, S))``, the Qwen3-VL video processor's ``sample_frames`` (what the paper's
    code runs on the raw video)."""
    student_tokens: int = 300
    """Student pixel budget in merged tokens per frame at ``max_frames`` frames (paper: 300, i.e.
    ``video_max_pixels = max_frames * 300 * 32 * 32``)."""
    student_min_tokens: int = 16
    """Student pixel floor in merged tokens per frame at ``min_frames`` frames (paper: 16, i.e.
    ``video_min_pixels = min_frames * 16 * 32 * 32``)."""
    student_patch: int = 32
    """Merged patch of the student in pixels = vision patch x spatial merge (Qwen3-VL: 16 x 2 = 32;
    Qwen2.5-VL: 14 x 2 = 28). Student frame sides are multiples of it."""
    student_budget: str = "clip"
    """``clip``: the budget is shared by the clip's frames (Qwen3-VL video processor, the paper's);
    ``frame``: per frame (transformers' Qwen2-VL / Qwen2.5-VL video processor)."""
    teacher_mode: str = "stretch"
    """Teacher input geometry from the student frames: ``stretch`` (paper), ``center_crop`` or
    ``vggt_crop`` (see the module docstring)."""
    longest_edge: int = 0
    """Teacher input longest edge in pixels (``vggt_crop``: the width); 0 = the mode's default
    (504 for ``stretch``/``center_crop``, 518 for ``vggt_crop``)."""
    multiple: int = 0
    """Teacher input sides are multiples of this; 0 = the mode's default (28 = 2 x VGGT's 14-px patch
    for ``stretch``/``center_crop``, as the paper; 14 for ``vggt_crop``)."""
    interpolation: str = "bicubic"
    """Resize filter of both resizes (``bicubic`` as the Qwen processor and VGGT's preprocessing)."""

    def __post_init__(self) -> None:
        if self.teacher_mode not in TEACHER_MODES:
            raise ValueError(f"SamplingConfig.teacher_mode {self.teacher_mode!r} not in {TEACHER_MODES}")
        if self.index_rule not in INDEX_RULES:
            raise ValueError(f"SamplingConfig.index_rule {self.index_rule!r} not in {INDEX_RULES}")
        if self.student_budget not in STUDENT_BUDGETS:
            raise ValueError(f"SamplingConfig.student_budget {self.student_budget!r} not in {STUDENT_BUDGETS}")
        le, mul = _MODE_DEFAULTS[self.teacher_mode]
        if self.longest_edge == 0:
            object.__setattr__(self, "longest_edge", le)  # resolved, so headers record the real value
        if self.multiple == 0:
            object.__setattr__(self, "multiple", mul)
        if self.num_frames < 0 or self.min_frames < 1 or self.max_frames < self.min_frames:
            raise ValueError(f"bad frame limits in {self}")
        if self.num_frames == 0 and not self.fps > 0:
            raise ValueError(f"SamplingConfig.fps must be > 0 when num_frames == 0, got {self.fps}")
        if self.longest_edge < self.multiple or self.multiple < 1:
            raise ValueError(f"longest_edge {self.longest_edge} must be >= multiple {self.multiple} >= 1")
        if self.student_patch < 1 or self.student_tokens < 1 or self.student_min_tokens < 0:
            raise ValueError(f"student_patch / student_tokens must be >= 1 and student_min_tokens >= 0 in {self}")
        if self.interpolation not in ("bicubic", "bilinear", "nearest"):
            raise ValueError(f"SamplingConfig.interpolation {self.interpolation!r} not in bicubic|bilinear|nearest")

    @property
    def video_max_pixels(self) -> int:
        """The student processor's pixel ceiling (``size["longest_edge"]``) this config models."""
        per = self.student_tokens * self.student_patch**2
        return per * self.max_frames if self.student_budget == "clip" else per

    @property
    def video_min_pixels(self) -> int:
        """The student processor's pixel floor (``size["shortest_edge"]``) this config models."""
        per = self.student_min_tokens * self.student_patch**2
        return per * self.min_frames if self.student_budget == "clip" else per

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
    """Source -> student frames (the stored frames): whole frame, ``out_hw`` = student frame size."""
    teacher: ResizeSpec
    """Student frames -> teacher input (``src_hw`` = student size, ``out_hw`` = teacher input size)."""
    teacher_mode: str = "stretch"
    """The ``SamplingConfig.teacher_mode`` that produced ``teacher``."""
    start_frame: int = 0
    """First source frame of the clip range (inclusive)."""
    end_frame: int = 0
    """End of the clip range (exclusive), resolved against the source length."""

    @property
    def teacher_view(self) -> ResizeSpec:
        """Source -> teacher input in one crop + resize (what ground truth is resampled with)."""
        return compose(self.resize, self.teacher)


def _round_half_even(x: float) -> int:
    return int(round(x))


def student_size(src_hw: tuple[int, int], num_frames: int, cfg: SamplingConfig) -> tuple[int, int]:
    """Student frame ``(H, W)``: the official Qwen-VL processor's ``smart_resize`` for ``cfg``'s budget.

    ``clip`` budget (Qwen3-VL video processor as vendored by the GeoVR code): with ``f`` the merged
    patch and ``T = ceil(S / 2) * 2``, start from ``round(H / f) * f`` x ``round(W / f) * f``; if
    ``T * H' * W'`` exceeds ``video_max_pixels``, ``beta = sqrt(S * H * W / max)`` and each side
    becomes ``max(f, floor(side / beta / f) * f)``; below ``video_min_pixels`` each side becomes
    ``ceil(side * beta / f) * f`` with ``beta = sqrt(min / (S * H * W))``. ``frame`` budget: the same
    with ``S = T = 1`` (Qwen2-VL's image ``smart_resize``). Raises ``ValueError`` for a side below
    ``f`` or an aspect ratio above 200 (as the processor does).
    """
    h, w = int(src_hw[0]), int(src_hw[1])
    f = cfg.student_patch
    if h < f or w < f:
        raise ValueError(f"source frame {h}x{w} is smaller than the student's merged patch {f}")
    if max(h, w) / min(h, w) > 200:
        raise ValueError(f"source frame {h}x{w}: aspect ratio above 200")
    if cfg.student_budget == "clip":
        n, t = int(num_frames), math.ceil(num_frames / 2) * 2
    else:
        n, t = 1, 1
    max_px, min_px = cfg.video_max_pixels, cfg.video_min_pixels
    h_bar, w_bar = _round_half_even(h / f) * f, _round_half_even(w / f) * f
    if t * h_bar * w_bar > max_px:
        beta = math.sqrt((n * h * w) / max_px)
        h_bar = max(f, math.floor(h / beta / f) * f)
        w_bar = max(f, math.floor(w / beta / f) * f)
    elif t * h_bar * w_bar < min_px:
        beta = math.sqrt(min_px / (n * h * w))
        h_bar = math.ceil(h * beta / f) * f
        w_bar = math.ceil(w * beta / f) * f
    return h_bar, w_bar


def student_tokens_per_frame(student_hw: tuple[int, int], cfg: SamplingConfig) -> int:
    """Merged visual tokens the student spends on one frame of ``student_hw``."""
    return (student_hw[0] // cfg.student_patch) * (student_hw[1] // cfg.student_patch)


def output_size(src_hw: tuple[int, int], cfg: SamplingConfig) -> tuple[int, int]:
    """Teacher input ``(H, W)`` of a ``src_hw`` frame (the student frame) under ``cfg.teacher_mode``."""
    return teacher_resize(src_hw, cfg).out_hw


def centre_crop(src_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Largest centred ``(top, left, height, width)`` box of the source with the output's aspect ratio."""
    h, w = src_hw
    oh, ow = out_hw
    if h * ow > w * oh:  # source is taller than the output aspect: crop rows
        ch, cw = int(round(w * oh / ow)), w
    else:
        ch, cw = h, int(round(h * ow / oh))
    return ((h - ch) // 2, (w - cw) // 2, ch, cw)


def _long_edge_size(h: int, w: int, target: int, m: int) -> tuple[int, int]:
    # the reference's expression and float order: round(side * (target / long) / m) * m
    if w >= h:
        return max(m, _round_half_even(h * (target / w) / m) * m), target
    return target, max(m, _round_half_even(w * (target / h) / m) * m)


def teacher_resize(student_hw: tuple[int, int], cfg: SamplingConfig) -> ResizeSpec:
    """Student frame -> teacher input as a crop box (student pixels, maybe fractional) + resize."""
    h, w = int(student_hw[0]), int(student_hw[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"frame size {student_hw} must be positive")
    m = cfg.multiple
    target = cfg.longest_edge - cfg.longest_edge % m
    full = (0, 0, h, w)
    if cfg.teacher_mode == "stretch":
        out = _long_edge_size(h, w, target, m)
        box: tuple = full
    elif cfg.teacher_mode == "center_crop":
        out = _long_edge_size(h, w, target, m)
        box = centre_crop((h, w), out)
    else:  # vggt_crop: width = target, height rounded, rows centre-cropped to target
        nh = max(m, _round_half_even(h * (target / w) / m) * m)
        if nh > target:
            start = (nh - target) // 2
            box = (start * h / nh, 0, target * h / nh, w)
            out = (target, target)
        else:
            box, out = full, (nh, target)
    return ResizeSpec(src_hw=(h, w), crop_box=tuple(box), out_hw=tuple(out), interpolation=cfg.interpolation)


def compose(first: ResizeSpec, second: ResizeSpec) -> ResizeSpec:
    """One crop + resize equal to ``first`` then ``second`` (see :meth:`ResizeSpec.then`)."""
    return first.then(second)


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
    """Frames, student size and teacher input for the clip ``[start, end)`` of a source.

    Raises ``ValueError`` if the clip is too short or its frames too small for the student.
    """
    end = num_source_frames if end is None else min(end, num_source_frames)
    n_available = end - start
    if start < 0 or n_available <= 0:
        raise ValueError(f"empty clip range [{start}, {end}) of a {num_source_frames}-frame source")
    n = frame_count(n_available, source_fps, cfg)
    if n < cfg.min_frames:
        raise ValueError(f"clip has {n_available} frames; at least {cfg.min_frames} (even: {cfg.even}) are required")
    if cfg.index_rule == "linspace":  # the Qwen3-VL processor's rule; n <= n_available keeps it duplicate-free
        idx = start + np.round(np.linspace(0, n_available - 1, n)).astype(np.int64)
    else:  # uniform over the clip, centred in each of n equal bins: deterministic and duplicate-free
        idx = start + np.floor((np.arange(n) + 0.5) * n_available / n).astype(np.int64)
    fps = source_fps if math.isfinite(source_fps) and source_fps > 0 else 30.0
    src = (int(source_hw[0]), int(source_hw[1]))
    student = student_size(src, n, cfg)
    resize = ResizeSpec(src_hw=src, crop_box=(0, 0, src[0], src[1]), out_hw=student,
                        interpolation=cfg.interpolation)
    return FrameSampling(indices=idx, timestamps=idx / fps, resize=resize, teacher=teacher_resize(student, cfg),
                         teacher_mode=cfg.teacher_mode, start_frame=int(start), end_frame=int(end))


def check_student_patch(store_sampling: dict[str, Any], merged_patch: int, where: str = "store") -> None:
    """Refuse (``SamplingMismatch``) a store whose frames were sized for another merged patch.

    ``merged_patch`` is the student's ``patch_size * merge_size`` (its processor's); the store's is
    ``sampling.student_patch`` of its header.
    """
    stored = int(store_sampling.get("student_patch", 0))
    if stored != int(merged_patch):
        raise SamplingMismatch(
            f"{where}: frames were sized for a {stored}-px merged patch (sampling.student_patch), but this student's "
            f"processor merges to {merged_patch} px (patch_size x merge_size); re-extract with "
            f"--student-patch {merged_patch}"
        )


def check_clip_matches(meta: dict[str, Any], cfg: SamplingConfig, start: int | None = None,
                       end: int | None = None) -> None:
    """Refuse (``SamplingMismatch``) a cached clip whose frames, sizes or teacher input differ from ``cfg``'s plan.

    ``meta`` is ``ClipTargets.meta_dict()`` (as stored per clip); the clip's source range comes from
    its ``start_frame`` / ``end_frame`` unless ``start`` / ``end`` are given.
    """
    video = meta["video"]
    src_hw = tuple(meta["resize"]["src_hw"])
    start = int(meta.get("start_frame", 0)) if start is None else start
    if end is None:
        end = meta.get("end_frame")
        end = None if end is None else int(end)
    cid = meta["clip_id"]
    try:
        plan = plan_sampling(int(video["num_frames"]), float(video["fps"]), src_hw, cfg, start, end)
    except ValueError as exc:
        raise SamplingMismatch(f"clip {cid!r}: cannot be sampled under {cfg}: {exc}") from exc
    cached = np.asarray(meta["frame_indices"], dtype=np.int64)
    if not np.array_equal(cached, plan.indices):
        raise SamplingMismatch(
            f"clip {cid!r}: cached frame indices {cached.tolist()} differ from this run's sampling "
            f"{plan.indices.tolist()} (config {cfg}); re-extract the store with this sampling config or train "
            "with the store's (see its header.json 'sampling')"
        )
    stored = ResizeSpec.from_dict(meta["resize"])
    if tuple(stored.out_hw) != tuple(plan.resize.out_hw):
        raise SamplingMismatch(
            f"clip {cid!r}: stored student frames are {stored.out_hw[0]}x{stored.out_hw[1]} but this run's budget "
            f"({cfg.student_tokens} tokens of {cfg.student_patch} px, {cfg.student_budget} budget) gives "
            f"{plan.resize.out_hw[0]}x{plan.resize.out_hw[1]}"
        )
    if stored != plan.resize:
        raise SamplingMismatch(
            f"clip {cid!r}: cached resize {meta['resize']} differs from this run's {plan.resize.to_dict()}"
        )
    ti = meta.get("teacher_input") or {}
    mode = ti.get("mode")
    cached_t = ResizeSpec.from_dict(ti) if ti else None
    if mode != plan.teacher_mode or cached_t != plan.teacher:
        got = f"{mode} {cached_t.out_hw[0]}x{cached_t.out_hw[1]}" if cached_t else "none"
        raise SamplingMismatch(
            f"clip {cid!r}: stored teacher input ({got}) differs from this run's ({plan.teacher_mode} "
            f"{plan.teacher.out_hw[0]}x{plan.teacher.out_hw[1]}): {ti} != {plan.teacher.to_dict()}"
        )
