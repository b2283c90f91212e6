"""Named VSI-Bench evaluation protocols: every setting that moves the score, in one record.

Published VSI-Bench numbers differ by several points from protocol alone (frames, decoding,
prompts, answer parsing). A run names its protocol (``--protocol``) and writes the resolved
settings, overrides included, into ``report.json``. Where each value comes from is in docs/eval.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from geovr.evaluate.prompts import PROMPT_STYLES
from geovr.evaluate.scorer import SCORINGS

FRAME_ROUNDINGS = ("floor", "round")
"""How ``linspace`` frame positions become indices (``Protocol.frame_rounding``)."""


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol."""

    name: str
    """Preset name (``--protocol``)."""
    num_frames: int
    """Frames per video, sampled uniformly at ``linspace(0, N - 1, k)`` (``frame_rounding`` turns them into indices)."""
    prompt_style: str
    """``official`` (VSI-Bench / lmms-eval ``vsibench_doc_to_text``) or ``geovr-paper`` (``eval_vsi.py``)."""
    do_sample: bool
    """Sampled decoding (else greedy)."""
    max_new_tokens: int
    """Generation length limit (tokens)."""
    scoring: str
    """Answer parsing and aggregation, one of ``geovr.evaluate.scorer.SCORINGS``."""
    temperature: float | None = None
    """Sampling temperature (sampled decoding only)."""
    top_p: float | None = None
    """Nucleus mass (sampled decoding only)."""
    top_k: int | None = None
    """Top-k cut (sampled decoding only)."""
    repetition_penalty: float | None = None
    """transformers repetition penalty (None = the model's generation config)."""
    seed: int | None = None
    """Seed of sampled decoding (``--seed`` overrides; each batch is seeded from it and its question ids)."""
    video_pixels_per_frame: dict[str, int] | None = None
    """Pixel budget per frame; overrides ``processor.video_processor.size``, times ``num_frames`` for a processor
    that reads it as the whole clip's budget (Qwen3-VL, Qwen3.5), as given for one that reads it per frame
    (Qwen2.5-VL). None = the processor's default."""
    frame_rounding: str = "floor"
    """``floor``: ``linspace(0, N - 1, k, dtype=int)`` (VSI-Bench's and lmms-eval's code); ``round``:
    ``linspace(0, N - 1, k).round()`` (the Qwen3-VL video processor's ``sample_frames``, which the GeoVR paper's
    ``eval_vsi.py`` lets pick the frames)."""
    enable_thinking: bool | None = None
    """Passed to the chat template (``enable_thinking``; matters for thinking templates such as Qwen3.5's, ignored
    by Qwen3-VL's / Qwen2.5-VL's); None = not passed (the template's default)."""
    source: str = ""
    """Where the settings come from."""
    overrides: tuple[str, ...] = field(default=())
    """Settings the command line changed from the preset."""

    def __post_init__(self) -> None:
        if self.prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt style {self.prompt_style!r} not in {PROMPT_STYLES}")
        if self.scoring not in SCORINGS:
            raise ValueError(f"scoring {self.scoring!r} not in {SCORINGS}")
        if self.frame_rounding not in FRAME_ROUNDINGS:
            raise ValueError(f"frame rounding {self.frame_rounding!r} not in {FRAME_ROUNDINGS}")
        if self.num_frames < 1 or self.max_new_tokens < 1:
            raise ValueError(f"need num_frames >= 1 and max_new_tokens >= 1, got {self.num_frames}, "
                             f"{self.max_new_tokens}")

    def frame_indices(self, count: int) -> np.ndarray:
        """int64 ``[num_frames]`` source indices of a ``count``-frame video (repeats when ``count < num_frames``)."""
        if count < 1:
            raise ValueError(f"a video needs at least one frame, got {count}")
        grid = np.linspace(0, count - 1, self.num_frames)
        return (grid.round() if self.frame_rounding == "round" else grid).astype(np.int64)

    def video_size(self, per_clip: bool = True) -> dict[str, int] | None:
        """The ``processor.video_processor.size`` to set, or None; ``per_clip``: the processor reads ``size`` as
        the whole clip's pixel budget (Qwen3-VL's), else per frame (Qwen2.5-VL's)."""
        if self.video_pixels_per_frame is None:
            return None
        return {k: v * (self.num_frames if per_clip else 1) for k, v in self.video_pixels_per_frame.items()}

    def generate_kwargs(self) -> dict:
        """Keyword arguments of ``model.generate`` (sampling knobs only when sampling)."""
        kw: dict = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            kw.update({k: v for k, v in (("temperature", self.temperature), ("top_p", self.top_p),
                                         ("top_k", self.top_k)) if v is not None})
        if self.repetition_penalty is not None:
            kw["repetition_penalty"] = self.repetition_penalty
        return kw


PRESETS: dict[str, Protocol] = {
    "official": Protocol(
        "official", num_frames=32, prompt_style="official", do_sample=False, max_new_tokens=16, scoring="official",
        source="vision-x-nyu/thinking-in-space: vsibench.yaml (greedy, 16 tokens), utils.py (scoring), "
               "evaluate_all_in_one.sh (32 frames for the open models)"),
    "lmms-eval": Protocol(
        "lmms-eval", num_frames=32, prompt_style="official", do_sample=False, max_new_tokens=16, scoring="lmms-eval",
        source="EvolvingLMMs-Lab/lmms-eval: tasks/vsibench (_default_template_yaml: greedy, 16 tokens; utils.py: "
               "extract_number scoring), models qwen2_5_vl / qwen3_vl (max_num_frames=32)"),
    "geovr-paper": Protocol(
        "geovr-paper", num_frames=128, prompt_style="geovr-paper", do_sample=True, max_new_tokens=32 * 1024,
        scoring="geovr-paper", temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.0, seed=42,
        video_pixels_per_frame={"longest_edge": 384 * 32 * 32, "shortest_edge": 4 * 32 * 32}, frame_rounding="round",
        enable_thinking=False,
        source="WHB139426/GeoVR-MLLM: scripts/eval.sh (NUM_FRAME=128), eval_vsi.py (prompts, sampling, processor "
               "size, enable_thinking=False, num_frames=128 with fps=None: the Qwen3-VL processor's rounded linspace, init_seeds(42)), "
               "metric_result.py (scoring)"),
}
"""The presets; the first is the default."""


def resolve(name: str, num_frames: int = 0, seed: int | None = None, max_new_tokens: int = 0) -> Protocol:
    """The preset ``name`` with the command line's overrides (0 / None = keep the preset's)."""
    if name not in PRESETS:
        raise ValueError(f"protocol {name!r} not in {tuple(PRESETS)}")
    base = PRESETS[name]
    changes = {k: v for k, v in (("num_frames", num_frames or None), ("seed", seed),
                                  ("max_new_tokens", max_new_tokens or None))
               if v is not None and v != getattr(base, k)}
    return dataclasses.replace(base, **changes, overrides=tuple(sorted(changes)))
