"""The ``geovr extract`` job: decode in DataLoader workers, run the teacher, encode and write
shards in a background writer (a forked process by default: ``shardwriter``), record every bad clip and go on.

Crash safety comes from the store: a shard counts only once its sidecar is committed, so after
a SIGKILL a re-run asks the writer which clips are ``done()`` and does the rest; committed
shards are never rewritten. Ranks (``--rank/--world-size``, torchrun's ``RANK``/``WORLD_SIZE`` or
SLURM's ``SLURM_PROCID``/``SLURM_NTASKS``) take clips ``i % world_size == rank`` and write their
own shard prefix ``r{rank:03d}``; ``finalize_store`` merges all ranks' sidecars.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any

from geovr.extract.config import PRESETS, SCALE_FROM, ExtractConfig  # noqa: F401  (re-exported)
from geovr.extract.corpus import CorpusRow, read_corpus
from geovr.shared.errors import environment_problem
from geovr.shared.features import FeatureSpec
from geovr.shared.sampling import SamplingConfig, plan_sampling
from geovr.shared.schema import VideoRef
from geovr.shared.video import VideoError, crop_resize, probe, read_frames


def rank_from_env(rank: int | None, world: int | None) -> tuple[int, int]:
    """Explicit values first, then torchrun (``RANK``/``WORLD_SIZE``), then SLURM, else (0, 1)."""
    env = os.environ
    r = rank if rank is not None else int(env.get("RANK", env.get("SLURM_PROCID", 0)))
    w = world if world is not None else int(env.get("WORLD_SIZE", env.get("SLURM_NTASKS", 1)))
    if not 0 <= r < w:
        from geovr.shared.errors import UsageError

        raise UsageError(f"rank {r} is not in [0, world_size={w})")
    return r, w


class _ClipSource:
    """Map-style dataset: decode + sample + crop/resize one clip; returns a failure dict instead of raising."""

    def __init__(self, rows: list[CorpusRow], sampling: SamplingConfig) -> None:
        self.rows, self.sampling = rows, sampling

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.rows[i]
        try:
            info = probe(row.uri)
            plan = plan_sampling(info.num_frames, info.fps, info.hw, self.sampling, row.start_frame, row.end_frame)
            frames = crop_resize(read_frames(row.uri, plan.indices, info.hw), plan.resize)  # the student's frames
            teacher_frames = crop_resize(frames, plan.teacher)  # derived from exactly those
        except (VideoError, ValueError, OSError) as exc:
            return {"row": row, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - any other decode failure fails this clip only
            return {"row": row, "error": f"{row.uri}: cannot decode ({type(exc).__name__}: {exc})"}
        video = VideoRef(uri=str(row.uri), sha256=info.sha256, fps=info.fps, num_frames=info.num_frames)
        return {"row": row, "plan": plan, "frames": frames, "teacher_frames": teacher_frames, "video": video}


def _identity(batch: list[Any]) -> Any:
    return batch[0]


@dataclass
class ExtractResult:
    """What one rank did."""

    stored: int
    """Clips stored in this run."""
    failed: list[tuple[str, str]]
    """``(clip_id, reason)`` recorded as failed in this run."""
    skipped: int
    """Clips already committed by an earlier run (not recomputed)."""
    seconds: float
    """Wall time."""
    frames: int
    """Frames run through the teacher."""


def make_header(cfg: ExtractConfig, teacher_info: Any, layers: tuple[int, ...], channels: str | None = None) -> Any:
    from geovr import __version__
    from geovr.shared.manifest import StoreHeader

    if cfg.preset not in PRESETS:
        raise ValueError(f"unknown preset {cfg.preset!r}; known: {sorted(PRESETS)}")
    preset = PRESETS[cfg.preset]
    pca = preset["pca_dims"] if cfg.pca_dims is None else (cfg.pca_dims or None)
    spec = FeatureSpec(layers=layers, channels=channels or cfg.channels, pool=cfg.pool, dtype=preset["dtype"], pca_dims=pca)
    return StoreHeader(format=cfg.format, teacher=teacher_info, sampling=cfg.sampling.to_dict(), features=spec,
                       depth_dtype="fp16", depth_downsample=preset["depth_downsample"],
                       jpeg_quality=cfg.jpeg_quality, created_by={"geovr": __version__})


def _lock_out(cfg: ExtractConfig) -> Any:
    """Take this rank's exclusive lock on the output folder before anything loads (a second job with the same
    rank is refused with ``UsageError``); with no other job running, remove temporaries a killed run left."""
    from geovr.shared.stores.finalize import remove_temporaries
    from geovr.shared.stores.lock import PrefixLock, held_locks

    out = os.path.abspath(cfg.out)
    os.makedirs(out, exist_ok=True)
    rank, _ = rank_from_env(cfg.rank, cfg.world_size)
    lock = PrefixLock(out, f"r{rank:03d}")
    if not held_locks(out):
        remove_temporaries(out)
    return lock


def run_extract(cfg: ExtractConfig) -> ExtractResult:
    """Extract every clip of this rank's share that is not committed yet.

    Raises ``UsageError`` (bad corpus manifest, another job holding this rank's lock), ``EnvironmentProblem``
    (disk full, quota, read-only file system) or ``StoreError`` (the output holds an incompatible store).
    """
    from geovr.extract.teachers import build_teacher
    from geovr.shared.stores import StoreWriter

    t0 = time.perf_counter()
    cfg.validate()
    rank, world = rank_from_env(cfg.rank, cfg.world_size)
    from geovr.shared.stores.fsio import resolve

    if "://" in str(cfg.out) and not str(cfg.out).startswith("file://"):  # refused before anything loads
        from geovr.shared.errors import UsageError

        raise UsageError(f"--out {cfg.out}: extraction writes a local folder; publish remote copies with "
                         "`geovr shards publish`")
    out = resolve(cfg.out)[1]  # a file:// URL is its folder
    cfg = dataclasses.replace(cfg, rank=rank, world_size=world, out=out)  # resolved once: lock, shards, share
    rows = read_corpus(cfg.corpus)
    try:
        lock = _lock_out(cfg)
    except OSError as exc:  # the first write into --out: a read-only or full file system is exit 3
        env = environment_problem(exc)
        if env is not None:
            raise env from exc
        raise
    batches: Any = None
    sw: Any = None
    writer: Any = None
    try:
        from geovr.extract.shardwriter import start_shard_writer
        from geovr.shared.stores.writer import committed_status

        done = committed_status(os.path.join(os.path.abspath(cfg.out), "shards"))
        mine = [r for i, r in enumerate(rows) if i % cfg.world_size == cfg.rank]
        todo = [r for r in mine if r.clip_id not in done]
        batches = _start_decoding(cfg, todo)  # the workers decode the first clips while the teacher loads
        sw = start_shard_writer(cfg.clips_per_shard, cfg.shard_writer, cfg.format)  # forked before it loads too
        teacher = build_teacher(cfg.teacher, **cfg.teacher_options())
        layers = tuple(teacher.info.feature_layers)  # a tiny teacher may map the requested layers onto its own depth
        # a teacher whose features are single-width (DA3) keeps all channels: there is no frame half to take
        header = make_header(cfg, teacher.info, layers, None if getattr(teacher, "feature_halves", True) else "both")
        metric_model = None
        if cfg.metric_depth and cfg.scale_from in ("auto", "metric_teacher"):
            from geovr.extract.metric_depth import load_metric_depth

            metric_model = load_metric_depth(cfg.metric_depth, device=cfg.device or cfg.teacher_kwargs.get("device"))
        writer = StoreWriter(cfg.out, header, shard_prefix=f"r{cfg.rank:03d}")  # shares this process's lock
        writer.clean()
        sw.open(writer)
    except BaseException as exc:
        if sw is not None:
            sw.abort()
        batches = None  # the last reference: the DataLoader shuts its workers down
        if writer is not None:  # it holds the prefix lock too
            writer.close()
        lock.release()
        env = environment_problem(exc) if isinstance(exc, (OSError, RuntimeError)) else None
        if env is not None:  # read-only store, full disk as it opens: exit 3 as in the loop below
            raise env from exc
        raise
    try:
        return _run(cfg, sw, batches, len(mine), len(todo), teacher, layers, header, metric_model, t0)
    except (OSError, RuntimeError) as exc:
        env = environment_problem(exc)  # disk full, quota, read-only: exit 3, not "some clips failed"
        if env is not None:
            raise env from exc
        raise
    finally:
        batches = None
        writer.close()
        lock.release()


def _start_decoding(cfg: ExtractConfig, todo: list[CorpusRow]) -> Any:
    """An iterator over the decoded clips of ``todo`` (``_ClipSource`` items, in order); with ``cfg.workers``
    its DataLoader workers are forked and start decoding at once (before the teacher exists, so they do not
    inherit its memory)."""
    import torch

    from geovr.shared.proc import die_with_parent

    loader = torch.utils.data.DataLoader(_ClipSource(todo, cfg.sampling), batch_size=1, num_workers=cfg.workers,
                                         collate_fn=_identity, worker_init_fn=die_with_parent if cfg.workers else None)
    return iter(loader)


def _run(cfg: ExtractConfig, sw: Any, batches: Any, n_mine: int, n_todo: int, teacher: Any,
         layers: tuple[int, ...], header: Any, metric_model: Any, t0: float) -> ExtractResult:
    try:
        return _loop(cfg, sw, batches, n_mine, n_todo, teacher, layers, header, metric_model, t0)
    except BaseException:
        sw.abort()
        raise


def _loop(cfg: ExtractConfig, sw: Any, batches: Any, n_mine: int, n_todo: int, teacher: Any,
          layers: tuple[int, ...], header: Any, metric_model: Any, t0: float) -> ExtractResult:  # noqa: C901
    import torch
    from tqdm import tqdm

    from geovr.extract.scale import metric_teacher_scale
    from geovr.extract.teachers import ClipContext
    from geovr.shared.stores import ClipFailure

    stored, frames_done, failed = 0, 0, []
    bar = tqdm(total=n_todo, desc=f"extract r{cfg.rank}", unit="clip", disable=not cfg.progress)

    def fail(row: CorpusRow, reason: str) -> None:
        failed.append((row.clip_id, reason))
        sw.put(("failure", ClipFailure(clip_id=row.clip_id, uri=str(row.uri), reason=reason)))

    def handle(item: dict[str, Any]) -> None:
        nonlocal stored, frames_done
        row = item["row"]
        if "error" in item:
            fail(row, item["error"])
            bar.update(1)
            return
        plan, frames = item["plan"], item["frames"]
        try:
            x = torch.from_numpy(item["teacher_frames"]).permute(0, 3, 1, 2).float().div(255.0)
            ctx = ClipContext(clip_id=row.clip_id, frame_indices=plan.indices, resize=plan.teacher_view,
                              gt_dir=row.gt_dir)
            out = teacher(x, layers, ctx, spec=header.features)  # features reduced on the teacher's device
            scale, source, scale_model, sky_masked, gt_scale = float("nan"), "none", "", False, None
            want = cfg.scale_from
            if out.metric_scale is not None and want == "auto":
                scale, source = float(out.metric_scale), "oracle"
            elif row.gt_dir is not None and want in ("auto", "ground_truth"):
                gt_scale = (row.gt_dir, plan.indices, plan.teacher_view)  # fit by the shard writer, off this thread
            elif metric_model is not None:
                scale, sky_masked = metric_teacher_scale(metric_model, x, out.depth.numpy(), out.depth_conf.numpy(),
                                                         out.intrinsics)
                source, scale_model = "metric_teacher", metric_model.name
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            fail(row, f"{type(exc).__name__}: {exc}")
            bar.update(1)
            return
        sw.put(("clip", dict(clip_id=row.clip_id, video=item["video"], frame_indices=plan.indices,
                             timestamps=plan.timestamps, resize=plan.resize, frames=frames, out=out,
                             teacher_input=plan.teacher, teacher_mode=plan.teacher_mode,
                             start_frame=plan.start_frame, end_frame=plan.end_frame,
                             header=header, metric_scale=scale, scale_source=source, scale_model=scale_model,
                             scale_sky_masked=sky_masked, gt_scale=gt_scale)))
        stored += 1
        frames_done += len(plan.indices)
        bar.update(1)
        bar.set_postfix(frames_per_s=f"{frames_done / max(bar.format_dict['elapsed'], 1e-9):.1f}")

    for seen, item in enumerate(batches, 1):
        if sw.error() is not None:
            break  # finish() raises it
        handle(item)
        if seen == n_todo:  # the writer starts on its last shard while the decoding workers shut down
            sw.end()
    build_failed = sw.finish()  # raises the writer's error
    bar.close()
    failed += build_failed
    stored -= len(build_failed)
    return ExtractResult(stored, failed, n_mine - n_todo, time.perf_counter() - t0, frames_done)


def summary(result: ExtractResult) -> str:
    """A short human summary of one rank's run."""
    lines = [f"stored {result.stored} clips ({result.frames} frames) in {result.seconds:.1f} s; "
             f"{result.skipped} already done; {len(result.failed)} failed"]
    lines += [f"  FAILED {cid}: {reason}" for cid, reason in result.failed]
    return "\n".join(lines)
