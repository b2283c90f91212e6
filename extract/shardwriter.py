"""The extraction job's shard writer: builds each clip's targets (feature/depth encoding, JPEG frames),
buffers them per shape group and writes whole shards while the teacher runs on.

Two ways to run it, one interface (``open``, ``put``, ``error``, ``end``, ``finish``, ``abort``):

- ``process`` (default where ``fork`` exists): a child process forked from the job. Its CPU work and its
  threads (Zarr's event loop and I/O pool, the concurrent fsyncs) do not share the teacher's GIL; on a
  2-core machine the teacher keeps one core to itself (issue #15: a writer *thread* cost the teacher
  ~2-5 % by GIL hand-offs, far more on a loaded machine). The child dies with the job (SIGKILL
  included) and ignores Ctrl-C (the job stops it); it writes under the job's inherited prefix lock and
  never releases it. Teacher outputs cross as host numpy arrays (no CUDA in the child).
- ``thread``: a thread in the job's process (the fallback where ``fork`` is missing).

Crash safety is the store's: a shard counts once its sidecar is committed, so a killed writer leaves at
most temporaries that the next run removes. A writer error stops the job: ``finish`` (or ``put`` once
the writer is gone) raises ``RuntimeError("shard writer failed: ...")`` chained to the original error, so a
full disk still maps to exit 3. A clip whose targets cannot be built (non-finite output, missing
ground-truth depth) fails alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import multiprocessing
import multiprocessing.queues
import pickle
import queue
import signal
import threading
from typing import Any

import numpy as np

from geovr.extract.config import SHARD_WRITERS
from geovr.extract.scale import ground_truth_scale
from geovr.extract.targets import build_targets

__all__ = ["SHARD_WRITERS", "ShardAssembler", "start_shard_writer"]

class ShardAssembler:
    """Turns queue items into shards: ``("clip", kwargs of build_targets)``, ``("failure", ClipFailure)``.

    A clip item may add ``gt_scale=(gt_dir, frame_indices, teacher_view)``: its metric scale is then fit here
    against the corpus's ground-truth depth (``extract.scale.ground_truth_scale``), off the teacher's thread.

    Clips are grouped by per-frame shapes (a Zarr shard needs one shape); a group is written once it holds
    ``clips_per_shard`` clips, and failures ride along with the next shard written."""

    def __init__(self, writer: Any, clips_per_shard: int) -> None:
        self.writer, self.n = writer, clips_per_shard
        self.groups: dict[tuple, list] = {}
        self.failures: list = []
        self.build_failed: list[tuple[str, str]] = []
        """``(clip_id, reason)`` of clips whose targets could not be built (recorded in the store as failed)."""

    @staticmethod
    def _key(clip: Any) -> tuple:
        teacher_hw = clip.teacher_input.out_hw if clip.teacher_input else None
        return (clip.resize.out_hw, teacher_hw, clip.depth.shape[1:],
                tuple(sorted((k, v.shape[1:]) for k, v in clip.features.items())))

    def _flush(self, key: tuple | None) -> None:
        clips = self.groups.pop(key, []) if key is not None else []
        if clips or self.failures:
            self.writer.write_shard(clips, self.failures)
            self.failures = []

    def add(self, item: tuple[str, Any]) -> None:
        """Take one queue item; writes a shard when a group is full (write errors propagate)."""
        kind, payload = item
        if kind == "failure":
            self.failures.append(payload)
            return
        try:
            gt = payload.pop("gt_scale", None)
            if gt is not None:  # (gt_dir, frame indices, teacher view): the scale against ground-truth depth
                out = payload["out"]
                payload["metric_scale"] = ground_truth_scale(*gt, out.depth.float().cpu().numpy(),
                                                             out.depth_conf.float().cpu().numpy())
                payload["scale_source"] = "ground_truth"
            clip = build_targets(**payload)
        except (ValueError, FileNotFoundError) as exc:  # non-finite output, no ground truth: this clip fails alone
            from geovr.shared.stores import ClipFailure

            reason = f"{type(exc).__name__}: {exc}"
            self.build_failed.append((payload["clip_id"], reason))
            self.failures.append(ClipFailure(clip_id=payload["clip_id"], uri=payload["video"].uri, reason=reason))
            return
        key = self._key(clip)
        self.groups.setdefault(key, []).append(clip)
        if len(self.groups[key]) >= self.n:
            self._flush(key)

    def finish(self) -> None:
        """Write every partial group and the remaining failures."""
        for key in list(self.groups):
            self._flush(key)
        self._flush(None)


def _failed(error: BaseException | None) -> RuntimeError:
    err = RuntimeError(f"shard writer failed: {error}")
    err.__cause__, err.__suppress_context__ = error, True  # as ``raise ... from error``: exit 3 on a full disk
    return err


class _ThreadWriter:
    """The assembler on a daemon thread of the job's process."""

    def __init__(self, clips_per_shard: int, fmt: str) -> None:
        if fmt == "zarr":
            import zarr  # noqa: F401  (imported here, not on the writer thread's first shard)
        self.n = clips_per_shard
        self.q: queue.Queue = queue.Queue(maxsize=2 * clips_per_shard)
        self._error: BaseException | None = None
        self._ended = False
        self._aborted = False
        self.thread = threading.Thread(target=self._run, daemon=True, name="geovr-shard-writer")

    def open(self, writer: Any) -> None:
        """Start writing shards with ``StoreWriter`` ``writer``."""
        self.asm = ShardAssembler(writer, self.n)
        self.thread.start()

    def _run(self) -> None:
        try:
            while (item := self.q.get()) is not None and not self._aborted:
                self.asm.add(item)
            if not self._aborted:
                self.asm.finish()
        except BaseException as exc:  # surfaced by the job's thread
            self._error = exc

    def error(self) -> BaseException | None:
        """The writer's error, if it has stopped on one (non-blocking)."""
        return self._error

    def put(self, item: tuple[str, Any]) -> None:
        """Queue ``item`` (blocks while the queue is full); raises if the writer has died."""
        while True:
            if self._error is not None or not self.thread.is_alive():
                raise _failed(self._error)
            try:
                self.q.put(item, timeout=1.0)
                return
            except queue.Full:
                continue

    def end(self) -> None:
        """No more items: the writer writes its last shards now (``finish`` waits for them)."""
        if not self._ended and self.thread.is_alive():
            self.put(None)  # type: ignore[arg-type]
        self._ended = True

    def finish(self) -> list[tuple[str, str]]:
        """Write what is buffered, wait, and return ``build_failed``; raises the writer's error."""
        self.end()
        self.thread.join()
        if self._error is not None:
            raise _failed(self._error)
        return self.asm.build_failed

    def abort(self) -> None:
        """Stop the thread after the shard it may be writing (the job is failing and frees the prefix lock
        next); what it had not written stays uncommitted."""
        self._aborted = True
        if self.thread.is_alive():
            with contextlib.suppress(queue.Full):  # wakes it on an empty queue; on a full one it sees the flag next
                self.q.put_nowait(None)
            self.thread.join()


def _to_host(t: Any) -> Any:
    """A torch tensor as ``("tensor", numpy array, dtype name)`` on the host (bf16 travels as int16 bits)."""
    import torch

    if not isinstance(t, torch.Tensor):
        return t
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return ("tensor", t.view(torch.int16).numpy(), "bfloat16")
    return ("tensor", t.numpy(), None)


def _from_host(x: Any) -> Any:
    import torch

    if isinstance(x, tuple) and len(x) == 3 and x[0] == "tensor" and isinstance(x[1], np.ndarray):
        t = torch.from_numpy(x[1])
        return t.view(torch.bfloat16) if x[2] == "bfloat16" else t
    return x


def _pack_output(out: Any) -> dict[str, Any]:
    fields = {}
    for f in dataclasses.fields(out):
        v = getattr(out, f.name)
        fields[f.name] = {k: _to_host(t) for k, t in v.items()} if isinstance(v, dict) else _to_host(v)
    return {"__type__": type(out), "fields": fields}


def _unpack_output(packed: dict[str, Any]) -> Any:
    fields = {k: ({kk: _from_host(t) for kk, t in v.items()} if isinstance(v, dict) else _from_host(v))
              for k, v in packed["fields"].items()}
    return packed["__type__"](**fields)


def _child_main(clips_per_shard: int, fmt: str, q: Any, conn: Any) -> None:
    """The writer process: take ``("open", (root, header, prefix))`` from ``q``, then items until ``None``; report
    ``("done", build_failed)`` or ``("error", pickled exception or None, text)`` on ``conn``.

    Its ``StoreWriter`` shares the job's prefix lock (inherited with the fork; releasing it here only drops
    this process's count of it, see ``shared/stores/lock.py``)."""
    from geovr.shared.proc import die_with_parent

    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the job decides
    gc.freeze()  # the garbage collector never walks the job's inherited objects (which would copy their pages)
    try:
        import torch

        torch.set_num_threads(1)
        if fmt == "zarr":
            import zarr  # noqa: F401  (while the job loads its teacher)
        first = q.get()
        if first is None:  # ended before it was opened
            conn.send(("done", []))
            return
        from geovr.shared.stores import StoreWriter

        root, header, prefix = first[1]
        asm = ShardAssembler(StoreWriter(root, header, shard_prefix=prefix), clips_per_shard)
        while (item := q.get()) is not None:
            kind, payload = item
            if kind == "clip":
                payload = {**payload, "out": _unpack_output(payload["out"])}
            asm.add((kind, payload))
        asm.finish()
        conn.send(("done", asm.build_failed))
    except BaseException as exc:  # reported to the job, which raises it
        try:
            blob: bytes | None = pickle.dumps(exc)
        except Exception:  # noqa: BLE001 - an exception that does not pickle still reports its text
            blob = None
        conn.send(("error", blob, f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


class _Queue(multiprocessing.queues.Queue):
    """A ``multiprocessing`` queue that keeps the first error of its feeder thread (an item that cannot be
    pickled, ``MemoryError``) instead of only printing it: the item never reaches the child."""

    feed_error: BaseException | None = None

    def _on_queue_feeder_error(self, e: BaseException, obj: Any) -> None:  # type: ignore[override]
        if self.feed_error is None:
            self.feed_error = e


class _ProcessWriter:
    """The assembler in a forked child process (see the module docstring)."""

    def __init__(self, clips_per_shard: int, fmt: str) -> None:
        ctx = multiprocessing.get_context("fork")
        self.q = _Queue(maxsize=2 * clips_per_shard, ctx=ctx)
        self._recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_child_main, args=(clips_per_shard, fmt, self.q, send),
                                name="geovr-shard-writer", daemon=True)
        self.proc.start()
        send.close()  # the child holds the only write end: its death reads as EOF here
        self._error: BaseException | None = None
        self._result: list[tuple[str, str]] | None = None
        self._gone = False
        self._ended = False

    def _take(self, timeout: float) -> bool:
        """Read the child's report if one is there within ``timeout`` s; True once the child is finished
        (or an item could not be sent to it: the job must stop, ``abort`` ends the child)."""
        if self.q.feed_error is not None and self._error is None:
            self._error = self.q.feed_error
        if self._gone or self._error is not None:
            return True
        if not self._recv.poll(timeout):
            return False
        try:
            msg = self._recv.recv()
        except (EOFError, OSError):
            self.proc.join(5.0)
            self._error = self._error or RuntimeError(
                f"the shard writer process exited (code {self.proc.exitcode}) without reporting")
        else:
            if msg[0] == "done":
                self._result = list(msg[1])
            else:
                _, blob, text = msg
                try:
                    self._error = pickle.loads(blob) if blob is not None else RuntimeError(text)
                except Exception:  # noqa: BLE001 - the text is enough
                    self._error = RuntimeError(text)
        self._gone = True
        return True

    def open(self, writer: Any) -> None:
        """Start writing shards into ``writer``'s store (the child opens its own ``StoreWriter`` of the same
        root, header and prefix)."""
        self.put(("open", (writer.root, writer.header, writer.prefix)))

    def error(self) -> BaseException | None:
        """The writer's error, if it has stopped on one (non-blocking)."""
        self._take(0)
        return self._error

    def put(self, item: tuple[str, Any]) -> None:
        """Queue ``item`` (blocks while the queue is full); raises if the writer has stopped."""
        if item is not None and item[0] == "clip":
            item = ("clip", {**item[1], "out": _pack_output(item[1]["out"])})
        while True:
            if self._take(0):
                raise _failed(self._error or RuntimeError("the shard writer process stopped early"))
            try:
                self.q.put(item, timeout=1.0)
                return
            except queue.Full:
                continue

    def end(self) -> None:
        """No more items: the writer writes its last shards now (``finish`` waits for them)."""
        if not self._ended and not self._take(0):
            self.put(None)  # type: ignore[arg-type]
        self._ended = True

    def finish(self) -> list[tuple[str, str]]:
        """Write what is buffered, wait for the child, and return ``build_failed``; raises the writer's error."""
        self.end()
        while not self._take(1.0):
            if not self.proc.is_alive():
                self._take(0.5)  # its report may still be in the pipe
                if not self._gone:
                    self._error = RuntimeError(f"the shard writer process exited (code {self.proc.exitcode})")
                    self._gone = True
        if not self._gone:  # an item never reached the child (it was not told the job ended): stop it
            self.proc.kill()
        self.proc.join()
        self.q.close()
        if self._error is not None:
            self.q.cancel_join_thread()
            raise _failed(self._error)
        self.q.join_thread()
        assert self._result is not None
        return self._result

    def abort(self) -> None:
        """Stop the child now (the job is failing): what it had not committed stays uncommitted."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.q.cancel_join_thread()
        self.q.close()


def start_shard_writer(clips_per_shard: int, how: str = "process", fmt: str = "zarr") -> Any:
    """Start a shard writer (``how``: ``process`` or ``thread``; ``process`` falls back to ``thread`` where
    ``fork`` is not available). A process is forked now, before the job loads its teacher (a smaller
    process to copy, and no CUDA context); it writes once ``open(store_writer)`` names the store."""
    if how not in SHARD_WRITERS:
        raise ValueError(f"shard writer {how!r} is not one of {SHARD_WRITERS}")
    if how == "process" and "fork" in multiprocessing.get_all_start_methods():
        return _ProcessWriter(clips_per_shard, fmt)
    return _ThreadWriter(clips_per_shard, fmt)
