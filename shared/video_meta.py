"""Timestamps of already-sampled frames, told to the Qwen-VL processors.

Both stages hand the processors frames that were sampled before (``do_sample_frames=False``), so
the processor cannot know when they were taken. Without metadata transformers assumes 24 fps:
Qwen3-VL then writes wrong ``<t seconds>`` stamps into the prompt and Qwen2.5-VL gets a wrong
``second_per_grid_ts`` for its temporal M-RoPE. ``video_metadata`` encodes the true times:
frame indices in milliseconds at ``fps = 1000``, and a total frame count chosen so that
``VideoMetadata.sampled_fps`` (what Qwen2.5-VL reads) equals the real sampling rate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MS = 1000.0
"""Index unit: one index per millisecond."""


def video_metadata(timestamps: np.ndarray, sampled_fps: float) -> Any:
    """``transformers.video_utils.VideoMetadata`` for frames at ``timestamps`` (seconds, ``[T]``).

    ``sampled_fps``: frames per second of the frames as given (duplicated frames count twice).
    """
    from transformers.video_utils import VideoMetadata

    ts = np.asarray(timestamps, dtype=np.float64)
    if ts.ndim != 1 or not len(ts) or not np.isfinite(ts).all() or not (sampled_fps > 0):
        raise ValueError(f"need finite timestamps [T] and sampled_fps > 0, got shape {ts.shape}, fps {sampled_fps}")
    idx = [int(round(t * MS)) for t in ts]
    total = max(int(round(len(idx) * MS / sampled_fps)), max(idx) + 1)
    return VideoMetadata(total_num_frames=total, fps=MS, frames_indices=idx, duration=total / MS)
