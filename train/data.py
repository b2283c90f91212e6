"""Training samples from target stores joined with instruction data, in a deterministic, resumable order.

An *item* is ``(clip_id, messages or None)``: every QA row whose clip is cached, plus (with
``data.mix_clips_without_qa``) every cached clip without QA. Global position ``p`` maps to epoch ``p // N`` and
item ``perm(seed, epoch)[p % N]``; step ``k`` of a run with ``W`` ranks and ``A`` accumulation
micro-batches reads positions ``k*W*A + a*W + rank``, so the order depends only on (seed, step)
and resuming at step ``k`` is exact.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from geovr.shared.errors import UsageError
from geovr.shared.sampling import SamplingConfig, SamplingMismatch, check_clip_matches, check_student_patch
from geovr.train.config import DataConfig
from geovr.train.order import EpochOrder
from geovr.train.student.collate import StudentSample


def read_instructions(path: str | Path) -> list[tuple[str, list[dict]]]:
    """``(clip_id, messages)`` from a LLaVA-style JSONL (``clip_id`` or ``video``, ``conversations``)."""
    roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
    out = []
    if not Path(path).is_file():
        raise UsageError(f"{path}: instructions file not found (data.instructions)")
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cid = row.get("clip_id") or Path(row["video"]).stem
            msgs = [{"role": roles[t["from"]], "content": t["value"]} for t in row["conversations"]]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}:{n}: not a conversation row with clip_id/video and conversations ({exc})") from exc
        out.append((str(cid), msgs))
    return out


class TrainData:
    """All items of a run and the samples they turn into."""

    def __init__(self, cfg: DataConfig, seed: int, check: bool = True) -> None:
        """``check=False`` (DataLoader workers) skips the sampling-contract check and the feature-width probe."""
        from geovr.shared.stores import StoreReader

        for s in cfg.stores:
            if "://" not in s and not Path(s).is_dir():
                raise UsageError(f"{s}: no such store folder (data.stores)")
        if not cfg.stores:
            raise UsageError("data.stores is empty: give at least one target store")
        self.readers = [StoreReader(s) for s in cfg.stores]
        self.where: dict[str, int] = {}
        for i, r in enumerate(self.readers):
            for cid in r.clip_ids:
                self.where.setdefault(cid, i)
        if check:
            self._check_sampling(cfg)
        qa = [item for p in cfg.instructions for item in read_instructions(p)]
        missing = sorted({cid for cid, _ in qa if cid not in self.where})
        if missing:
            raise UsageError(f"{len(missing)} QA rows reference clips in no store (first: {missing[:5]}); "
                             "extract them first or drop those rows")
        asked = {cid for cid, _ in qa}
        geo = [(cid, None) for cid in sorted(self.where) if cid not in asked] if cfg.mix_clips_without_qa else []
        self.items: list[tuple[str, list[dict] | None]] = qa + geo
        if not self.items:
            raise UsageError("no training items: stores are empty and there is no QA")
        self.seed = seed
        self._order = EpochOrder(seed, len(self.items))
        header = self.readers[0].header
        self.feature_dtype = header.features.dtype
        self.teacher_layers = list(header.features.layers)
        self.teacher_dim = 0
        if check:
            first = self.readers[0][self.readers[0].clip_ids[0]]
            feats = first.decoded_features(self.feature_dtype) if first.features else {}
            self.teacher_dim = int(feats[self.teacher_layers[0]].shape[-1]) if feats else 0

    def _check_sampling(self, cfg: DataConfig) -> None:
        """Every store's sampling against the run's (``data.sampling``) or, without one, the stores' against
        each other. Reads per-clip metadata only (``StoreReader.iter_meta``), never arrays or frames."""
        samplings = {json.dumps(r.header.sampling, sort_keys=True) for r in self.readers}
        if cfg.sampling is None:
            if len(samplings) > 1:
                raise SamplingMismatch(f"stores were extracted with different sampling configs: {sorted(samplings)}")
            return
        want = SamplingConfig.from_dict(cfg.sampling)
        for r in self.readers:
            check_student_patch(r.header.sampling, want.student_patch, where=f"{r.url} (run data.sampling)")
            for meta in r.iter_meta():
                check_clip_matches(meta, want)

    def check_student(self, merged_patch: int) -> None:
        """Refuse stores whose frames were sized for another merged patch than the student's
        (``processor.video_processor.patch_size * merge_size``); the frames go in without a resize."""
        for r in self.readers:
            check_student_patch(r.header.sampling, merged_patch, where=str(r.url))

    def __len__(self) -> int:
        return len(self.items)

    def position(self, step: int, micro: int, rank: int, world: int, accum: int) -> int:
        return step * world * accum + micro * world + rank

    def item_at(self, position: int) -> tuple[str, list[dict] | None]:
        """Item at global ``position``: O(1) amortised (the epoch's permutation is cached, see ``train/order.py``)."""
        return self.items[self._order[position]]

    def sample(self, position: int) -> StudentSample:
        cid, messages = self.item_at(position)
        return clip_sample(self.readers[self.where[cid]][cid], self.feature_dtype, messages)


def clip_sample(clip, feature_dtype: str, messages: list[dict] | None = None, targets: bool = True) -> StudentSample:
    """A cached ``ClipTargets`` as a ``StudentSample``: decoded frames, true timestamps, float32 targets.

    The frames are already at the student's resolution (stage one sized them with the processor's own
    ``smart_resize``), so the sample is ``presized``: the processor must not resize them again."""
    from PIL import Image

    frames = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in clip.frames]
    tg: dict = {}
    if targets:
        tg = {"pose_enc": clip.pose_enc, "depth": clip.depth.astype(np.float32),
              "depth_conf": clip.depth_conf.astype(np.float32)}
        if clip.scale_source != "none" and math.isfinite(clip.metric_scale):
            tg["metric_scale"] = np.float32(clip.metric_scale)
        if clip.features:
            tg["features"] = clip.decoded_features(feature_dtype)
    fps = float(1.0 / np.median(np.diff(clip.timestamps))) if len(clip.timestamps) > 1 else 2.0
    return StudentSample(frames=frames, fps=fps, timestamps=np.asarray(clip.timestamps, np.float64),
                         messages=messages, targets=tg, presized=True)
