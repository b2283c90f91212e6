"""Turn a cached clip (+ optional conversation) into student inputs with placeholders and targets.

Family-independent: the processor call, labels, placeholders and their positions come from the
student's adapter (``geovr.train.student.adapters``). Samples are prepared one by one (clips
differ in frame count and resolution) and the model runs them as a list; a micro-batch is a
list of prepared samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from geovr.shared.video_meta import video_metadata
from geovr.train.student.adapters import StudentAdapter

GEOMETRY_PROMPT = "Describe the 3D layout of this scene."
"""User turn for clips without QA (no answer, so no LM loss)."""
FRAME_MODES = ("duplicate", "pair")
"""``duplicate``: every frame twice (one temporal group per frame); ``pair``: consecutive frames share a group."""


@dataclass
class StudentSample:
    """One training sample: the cached frames, an optional conversation and the cached targets."""

    frames: list[np.ndarray]
    """RGB uint8 ``[H, W, 3]`` frames exactly as cached in the store (what the teacher saw)."""
    fps: float = 2.0
    """Sampling rate of the frames (frames/second), for the processor's timestamps."""
    timestamps: np.ndarray | None = None
    """float64 ``[S]`` seconds of each frame in its source video (None: ``arange(S) / fps``)."""
    messages: list[dict] | None = None
    """``[{"role": "user", "content": str}, {"role": "assistant", "content": str}]``; None = geometry only."""
    targets: dict = field(default_factory=dict)
    """Optional ``pose_enc [S,9]``, ``depth [S,H,W]``, ``depth_conf [S,H,W]``, ``metric_scale ()``,
    ``features {layer: [S,h,w,C]}`` as float32 numpy arrays."""
    presized: bool = False
    """Frames are already at the student's final size (multiples of the merged patch, within its pixel
    budget; a store's frames): the processor gets ``do_resize=False`` (checked against
    the adapter's ``merged_patch``)."""


def to_chat(messages: list[dict] | None) -> list[dict]:
    """Processor chat format: the video first in the first turn, then that turn's text, as GeoVR's loaders build
    it (``dataset/vsi_590k.py``). The text is used as given: placeholder clean-up happens when instruction rows
    are read (``geovr.train.data.instruction_messages``)."""
    chat = []
    for i, m in enumerate(messages or [{"role": "user", "content": GEOMETRY_PROMPT}]):
        content = ([{"type": "video"}] if i == 0 else []) + [{"type": "text", "text": m["content"]}]
        chat.append({"role": m["role"], "content": content})
    return chat


def prepare_sample(adapter: StudentAdapter, sample: StudentSample, frame_mode: str = "duplicate",
                   train: bool = True) -> dict:
    """``{"inputs", "labels" [1, L], "targets"}`` for one sample (batch of 1).

    ``train=True`` inserts the camera/scale placeholders; ``False`` gives the unchanged inference prompt.
    """
    video = np.stack(sample.frames)
    times = sample.timestamps if sample.timestamps is not None else np.arange(len(video)) / sample.fps
    if frame_mode == "duplicate":  # both copies of a frame carry its time: one temporal group per frame
        video, times, fps = np.repeat(video, 2, axis=0), np.repeat(times, 2), sample.fps * 2
    elif frame_mode == "pair":
        if len(video) % 2:
            raise ValueError(f"frame_mode 'pair' needs an even frame count, got {len(video)}")
        fps = sample.fps
    else:
        raise ValueError(f"frame_mode {frame_mode!r} not in {FRAME_MODES}")
    chat = to_chat(sample.messages)
    inputs = adapter.process(chat, video, video_metadata(times, fps), sample.presized)
    labels = adapter.labels(inputs["input_ids"][0])
    if train:
        inputs, labels = adapter.insert_placeholders(inputs, labels)
    targets = {}
    for k, v in sample.targets.items():
        targets[k] = {layer: torch.from_numpy(np.asarray(a, np.float32)) for layer, a in v.items()} \
            if k == "features" else torch.as_tensor(np.asarray(v, np.float32))
    return {"inputs": dict(inputs), "labels": labels[None], "targets": targets}
