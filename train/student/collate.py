"""Turn a cached clip (+ optional conversation) into student inputs with placeholders and targets.

Samples are prepared one by one (clips differ in frame count and resolution) and the model runs
them as a list; a micro-batch is a list of prepared samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from geovr.shared.video_meta import video_metadata
from geovr.train.student.model import CAMERA_TOKEN, SCALE_TOKEN

GEOMETRY_PROMPT = "Describe the 3D layout of this scene."
"""User turn for clips without QA (no answer, so no LM loss)."""


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
    """Frames are already at the student's resolution (a store's frames): the processor gets ``do_resize=False``."""


def _insert(seq: torch.Tensor, after: list[int], values: list[int]) -> torch.Tensor:
    out, prev = [], 0
    for pos, v in zip(after, values, strict=True):
        out += [seq[prev : pos + 1], torch.tensor([v], dtype=seq.dtype)]
        prev = pos + 1
    out.append(seq[prev:])
    return torch.cat(out)


def prepare_sample(processor, sample: StudentSample, frame_mode: str = "duplicate", train: bool = True) -> dict:
    """Processor inputs (batch of 1) with camera/scale placeholders, labels on the answer only, targets as tensors."""
    video = np.stack(sample.frames)
    times = sample.timestamps if sample.timestamps is not None else np.arange(len(video)) / sample.fps
    if frame_mode == "duplicate":  # both copies of a frame carry its time: one temporal group per frame
        video, times, fps = np.repeat(video, 2, axis=0), np.repeat(times, 2), sample.fps * 2
    elif frame_mode == "pair":
        if len(video) % 2:
            raise ValueError(f"frame_mode 'pair' needs an even frame count, got {len(video)}")
        fps = sample.fps
    else:
        raise ValueError(f"frame_mode {frame_mode!r} not in ('duplicate', 'pair')")
    msgs = sample.messages or [{"role": "user", "content": GEOMETRY_PROMPT}]
    chat = []
    for i, m in enumerate(msgs):
        text = m["content"].replace("<video>\n", "").replace("<video>", "")
        content = ([{"type": "video"}] if i == 0 else []) + [{"type": "text", "text": text}]
        chat.append({"role": m["role"], "content": content})
    has_answer = chat[-1]["role"] == "assistant"
    text = processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=not has_answer)
    inputs = processor(text=[text], videos=[video], video_metadata=[video_metadata(times, fps)],
                       do_sample_frames=False, return_tensors="pt")
    ids = inputs["input_ids"][0]
    tok = processor.tokenizer
    labels = torch.full_like(ids, -100)
    if has_answer:
        start = tok.convert_tokens_to_ids("<|im_start|>")
        last = int((ids == start).nonzero().max())
        labels[last + 3 :] = ids[last + 3 :]  # after "<|im_start|>assistant\n": the answer and <|im_end|>
        labels[-1:] = -100 if int(ids[-1]) != tok.convert_tokens_to_ids("<|im_end|>") else ids[-1:]
    if train:
        video_id = tok.convert_tokens_to_ids("<|video_pad|>")
        t = int(inputs["video_grid_thw"][0, 0])
        pos = (ids == video_id).nonzero().squeeze(-1)
        per = len(pos) // t
        if "Qwen2_5" in type(processor).__name__:
            # Qwen2.5-VL's M-RoPE expects one contiguous video run: all camera tokens follow the video
            after = [int(pos[-1])] * (t + 1)
        else:  # Qwen3-VL: one run per temporal group, the camera token closes each group
            after = [int(pos[(g + 1) * per - 1]) for g in range(t)] + [int(pos[-1])]
        values = [tok.convert_tokens_to_ids(CAMERA_TOKEN)] * t + [tok.convert_tokens_to_ids(SCALE_TOKEN)]
        # the scale token follows the last camera token: insert it at the same anchor, after it
        new = {}
        for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
            if key in inputs:
                fill = values if key == "input_ids" else [1 if key == "attention_mask" else 0] * len(values)
                new[key] = _insert(inputs[key][0], after, fill)[None]
        labels = _insert(labels, after, [-100] * len(values))
        inputs = {**inputs, **new}
    targets = {}
    for k, v in sample.targets.items():
        targets[k] = {layer: torch.from_numpy(np.asarray(a, np.float32)) for layer, a in v.items()} \
            if k == "features" else torch.as_tensor(np.asarray(v, np.float32))
    return {"inputs": dict(inputs), "labels": labels[None], "targets": targets}
