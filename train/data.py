"""Training samples from target stores joined with instruction data, in a deterministic, resumable order.

An *item* is ``(clip_id, messages or None)``: every QA row whose clip is cached, plus (with
``data.mix_clips_without_qa``) every cached clip without QA. Global position ``p`` maps to epoch ``p // N`` and
item ``perm(seed, epoch)[p % N]``; step ``k`` of a run with ``W`` ranks and ``A`` accumulation
micro-batches reads positions ``k*W*A + a*W + rank``, so the order depends only on (seed, step)
and resuming at step ``k`` is exact.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from geovr.shared.errors import UsageError
from geovr.shared.sampling import SamplingConfig, SamplingMismatch, check_clip_matches, check_student_patch
from geovr.train.config import PAPER_PROMPT_STRIP, DataConfig
from geovr.train.order import EpochOrder
from geovr.train.student.collate import StudentSample


def instruction_messages(conversations: list[dict], strip: list[str] | tuple[str, ...] = PAPER_PROMPT_STRIP,
                         first_exchange: bool = True) -> list[dict]:
    """``[{"role", "content"}]`` of one LLaVA-style ``conversations`` list, as GeoVR's loaders build the chat.

    ``dataset/vsi_590k.py`` / ``dataset/vlm3r.py`` (``get_item``): the user turn is ``conversations[0]`` with
    every ``"<image>\\n"`` and then every ``"These are frames of a video.\\n"`` removed (``str.replace``, in
    that order, nothing else: ``<video>`` stays), the answer is ``conversations[1]``, later turns are not used.
    ``first_exchange=False`` keeps every turn (roles from ``from``); ``strip`` applies to the first turn only.
    """
    roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
    text = conversations[0]["value"]
    for s in strip:
        text = text.replace(s, "")
    if first_exchange:
        return [{"role": "user", "content": text}, {"role": "assistant", "content": conversations[1]["value"]}]
    return [{"role": "user", "content": text}] + [{"role": roles[t["from"]], "content": t["value"]}
                                                   for t in conversations[1:]]


def read_instructions(path: str | Path, strip: list[str] | tuple[str, ...] = PAPER_PROMPT_STRIP,
                      first_exchange: bool = True) -> list[tuple[str, list[dict]]]:
    """``(clip_id, messages)`` from a LLaVA-style JSONL (``clip_id`` or ``video``, ``conversations``), each row's
    messages built by ``instruction_messages``."""
    out = []
    if not Path(path).is_file():
        raise UsageError(f"{path}: instructions file not found (data.instructions)")
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):  # e.g. a JSON array file (one JSON value per line is expected)
                raise TypeError(f"a JSON {type(row).__name__}, not an object")
            cid = row.get("clip_id") or Path(row["video"]).stem
            conv = row["conversations"]
            if len(conv) < (2 if first_exchange else 1):
                raise KeyError("conversations needs a question and an answer")
            msgs = instruction_messages(conv, strip, first_exchange)
        except (json.JSONDecodeError, KeyError, TypeError, IndexError) as exc:
            raise UsageError(f"{path}:{n}: not a conversation row with clip_id/video and conversations ({exc})") from exc
        out.append((str(cid), msgs))
    return out


class TrainData:
    """All items of a run and the samples they turn into."""

    def __init__(self, cfg: DataConfig, seed: int, check: bool = True) -> None:
        """``check=False`` (DataLoader workers) skips the sampling-contract check and the feature-width probe."""
        from geovr.shared.safety import CorruptStoreError
        from geovr.shared.stores import StoreReader

        for s in cfg.stores:
            if "://" not in s and not Path(s).is_dir():
                raise UsageError(f"{s}: no such store folder (data.stores)")
        if not cfg.stores:
            raise UsageError("data.stores is empty: give at least one target store")
        if cfg.on_bad_clip not in ("stop", "skip") or cfg.verify not in ("all", "lazy"):
            raise UsageError(f"data.on_bad_clip must be stop|skip and data.verify all|lazy, got "
                             f"{cfg.on_bad_clip!r} / {cfg.verify!r}")
        self.on_bad_clip = cfg.on_bad_clip
        self.bad: dict[str, str] = {}
        """``clip_id -> reason`` of clips found bad in this process (never trained on)."""
        self.readers = [StoreReader(s) for s in cfg.stores]
        self.where: dict[str, int] = {}
        for i, r in enumerate(self.readers):
            for cid in r.clip_ids:
                self.where.setdefault(cid, i)
        if check and cfg.verify == "all":
            for r in self.readers:
                for shard, why in r.verify_all_shards().items():
                    if self.on_bad_clip == "stop":
                        raise CorruptStoreError(f"{why}; training refused (data.on_bad_clip=stop)")
                    for cid in r.clips_in_shard(shard):
                        self._mark_bad(cid, why)
        if check:
            self._check_sampling(cfg)
        qa = [item for p in cfg.instructions for item in read_instructions(p, cfg.prompt_strip, cfg.first_exchange)]
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
        self._pca = bool(header.features.pca_dims)
        self.feature_dtype = header.features.dtype
        self.teacher_layers = list(header.features.layers)
        self.teacher_dim = 0
        """Feature width every clip must have (probed from the first good clip; 0 = not checked)."""
        if check:
            first = self._clip(0)[0]
            feats = first.decoded_features(self.feature_dtype) if first.features else {}
            self.teacher_dim = int(feats[self.teacher_layers[0]].shape[-1]) if feats else 0

    def _mark_bad(self, cid: str, why: str) -> None:
        if cid not in self.bad:
            self.bad[cid] = why
            print(f"warning: skipping bad clip {cid!r} (data.on_bad_clip=skip): {why}", file=sys.stderr)

    def _clip(self, position: int):
        """The ``ClipTargets`` and messages of the item at ``position``, or of the next good item when it is bad
        and ``on_bad_clip`` is ``skip``; a ``StoreError`` when it is bad and the switch is ``stop``."""
        from geovr.shared.safety import CorruptStoreError, StoreError

        for k in range(len(self.items)):
            cid, messages = self.item_at(position + k)
            if cid in self.bad:
                continue
            try:
                clip = self.readers[self.where[cid]][cid]
                if self.teacher_dim and clip.features:
                    layer = self.teacher_layers[0]
                    width = int((clip.feature_pca_basis if self._pca else clip.features)[layer].shape[-1])
                    if width != self.teacher_dim:
                        raise CorruptStoreError(f"clip {cid!r}: feature width {width}, the run's {self.teacher_dim}")
                return clip, messages
            except StoreError as e:
                if self.on_bad_clip == "stop":
                    raise
                self._mark_bad(cid, str(e))
        raise CorruptStoreError(f"every one of the {len(self.items)} training items is bad; see the warnings above")

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
            for meta in r.iter_meta(exclude=getattr(self, "bad", {})):
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
        """The sample at ``position`` (a bad clip is skipped or stops the run, per ``data.on_bad_clip``)."""
        from geovr.shared.safety import StoreError

        for _ in range(len(self.items)):
            clip, messages = self._clip(position)
            try:
                return clip_sample(clip, self.feature_dtype, messages)
            except StoreError as e:
                if self.on_bad_clip == "stop":
                    raise
                self._mark_bad(clip.clip_id, str(e))
        raise StoreError("no good training item left")


def clip_sample(clip, feature_dtype: str, messages: list[dict] | None = None, targets: bool = True) -> StudentSample:
    """A cached ``ClipTargets`` as a ``StudentSample``: decoded frames, true timestamps, float32 targets.

    The frames are already at the student's resolution (stage one sized them with the processor's own
    ``smart_resize``), so the sample is ``presized``: the processor must not resize them again."""
    from geovr.shared.stores.clipcheck import decode_frame

    frames = [decode_frame(b, clip.resize.out_hw, f"clip {clip.clip_id!r} frame {i}") for i, b in enumerate(clip.frames)]
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
