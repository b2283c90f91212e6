"""Stage one end to end on the synthetic corpus with the oracle teacher."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from geovr.cli import app
from geovr.extract.runner import ExtractConfig, run_extract
from geovr.extract.teachers.oracle import resample_nearest
from geovr.shared.geometry import crop_resize_intrinsics, relative_to_first
from geovr.shared.sampling import SamplingConfig
from geovr.shared.stores import StoreReader, finalize_store, verify_store

SAMPLING = SamplingConfig(num_frames=4, longest_edge=112)


def _extract(corpus, out, fmt="zarr", **kw):
    cfg = ExtractConfig(corpus=str(corpus / "corpus.parquet"), out=str(out), teacher="oracle", format=fmt,
                        sampling=SAMPLING, clips_per_shard=1, progress=False, **{"workers": 0, **kw})
    return run_extract(cfg)


@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_oracle_extraction_equals_ground_truth(synth_corpus, tmp_path, fmt):
    res = _extract(synth_corpus, tmp_path / "store", fmt)
    assert res.stored == 2 and not res.failed
    finalize_store(tmp_path / "store")
    reader = StoreReader(tmp_path / "store", verify=True)
    assert sorted(reader.clip_ids) == ["synth_0000", "synth_0001"]
    for cid in reader.clip_ids:
        clip = reader[cid]
        gt = synth_corpus / "gt" / cid
        idx = clip.frame_indices
        e_gt = relative_to_first(np.load(gt / "extrinsics.npy")[idx])
        np.testing.assert_allclose(clip.extrinsics, e_gt, atol=1e-5)
        np.testing.assert_allclose(clip.extrinsics[0], np.eye(3, 4), atol=1e-6)
        view = clip.teacher_view  # source -> teacher input: the pixels every target refers to
        k_gt = crop_resize_intrinsics(np.load(gt / "intrinsics.npy")[idx], view.crop_box, view.out_hw)
        np.testing.assert_allclose(clip.intrinsics, k_gt, rtol=1e-5)
        d_gt = resample_nearest(np.load(gt / "depth.npy")[idx], view.crop_box, view.out_hw)
        np.testing.assert_allclose(clip.depth.astype(np.float32), d_gt, rtol=1e-3)  # fp16 storage
        assert clip.metric_scale == 1.0 and clip.scale_source == "oracle"
        assert clip.teacher_input.out_hw[1] == 112 and clip.teacher_input.out_hw[0] % 28 == 0
        assert clip.resize.out_hw[0] % 32 == 0 and clip.resize.out_hw[1] % 32 == 0  # student frames, Qwen3-VL
        assert len(clip.frames) == 4 and clip.features[4].shape[:3] == (4, clip.teacher_input.out_hw[0] // 28, 4)


def test_corrupt_and_empty_videos_are_recorded_and_the_rest_stored(synth_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(synth_corpus, corpus)
    (corpus / "videos" / "empty.mp4").write_bytes(b"")
    good = (corpus / "videos" / "synth_0000.mp4").read_bytes()
    (corpus / "videos" / "corrupt.mp4").write_bytes(good[:48] + os.urandom(4096))
    table = pq.read_table(corpus / "corpus.parquet").to_pylist()
    table += [{**table[0], "clip_id": "empty", "uri": "videos/empty.mp4"},
              {**table[0], "clip_id": "corrupt", "uri": "videos/corrupt.mp4"}]
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(table), corpus / "corpus.parquet")
    res = CliRunner().invoke(app, ["extract", "--corpus", str(corpus / "corpus.parquet"), "--teacher", "oracle",
                                   "--out", str(tmp_path / "store"), "--num-frames", "4", "--longest-edge", "112",
                                   "--workers", "0", "--clips-per-shard", "2"])
    assert res.exit_code == 1, res.output
    assert "FAILED empty" in res.output and "zero-length" in res.output and "FAILED corrupt" in res.output
    clips = {r["clip_id"]: r for r in pq.read_table(tmp_path / "store" / "clips.parquet").to_pylist()}
    assert clips["empty"]["status"] == "failed" and "zero-length" in clips["empty"]["reason"]
    assert clips["corrupt"]["status"] == "failed" and clips["synth_0001"]["status"] == "ok"
    assert sorted(StoreReader(tmp_path / "store").clip_ids) == ["synth_0000", "synth_0001"]


def build_nan_oracle(**kwargs):
    """The oracle teacher, but its depth for clip ``synth_0001`` has a NaN (a diverged teacher)."""
    from geovr.extract.teachers.oracle import build

    oracle = build(**kwargs)

    class NanOracle:
        info, patch_size = oracle.info, oracle.patch_size

        def __call__(self, frames, layers, context=None, spec=None):
            out = oracle(frames, layers, context, spec)
            if context.clip_id == "synth_0001":
                out.depth[0, 0, 0] = float("nan")
            return out

    return NanOracle()


def test_non_finite_teacher_output_fails_that_clip_only(synth_corpus, tmp_path, monkeypatch):
    import dataclasses

    from geovr.extract.teachers import REGISTRY

    monkeypatch.setitem(REGISTRY, "oracle", dataclasses.replace(REGISTRY["oracle"], factory=f"{__name__}:build_nan_oracle"))
    res = _extract(synth_corpus, tmp_path / "store")
    assert res.stored == 1 and [cid for cid, _ in res.failed] == ["synth_0001"]
    assert "non-finite teacher depth" in res.failed[0][1]
    finalize_store(tmp_path / "store")
    clips = {r["clip_id"]: r for r in pq.read_table(tmp_path / "store" / "clips.parquet").to_pylist()}
    assert clips["synth_0001"]["status"] == "failed" and "non-finite" in clips["synth_0001"]["reason"]
    assert StoreReader(tmp_path / "store").clip_ids == ["synth_0000"]


def test_sigkill_then_rerun_stores_every_clip_exactly_once(tmp_path):
    from geovr.synth.config import SynthConfig
    from geovr.synth.corpus import render_corpus

    corpus = tmp_path / "corpus"
    render_corpus(corpus, SynthConfig(clips=6, seed=1, frames=8, height=56, width=84), progress=False)
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "geovr", "extract", "--corpus", str(corpus / "corpus.parquet"), "--teacher",
           "oracle", "--out", str(store), "--num-frames", "4", "--longest-edge", "84", "--workers", "0",
           "--clips-per-shard", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((store / "shards").glob("*.json")) if store.exists() else []) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (store / "shards").glob("*.json")}
    assert 2 <= len(committed) < 6, "kill must land mid-run for this test to mean anything"
    assert not (store / "index.json").exists()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(committed)} already done" in rerun.stdout
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (store / "shards").glob("*.json")}
    assert all(after[name] == stat for name, stat in committed.items())  # finished shards untouched
    reader = StoreReader(store)
    assert sorted(reader.clip_ids) == [f"synth_{i:04d}" for i in range(6)]
    assert verify_store(str(store)) == []


def test_two_ranks_merge_to_the_one_rank_result(synth_corpus, tmp_path):
    _extract(synth_corpus, tmp_path / "one")
    finalize_store(tmp_path / "one")
    procs = [
        subprocess.Popen([sys.executable, "-m", "geovr", "extract", "--corpus", str(synth_corpus / "corpus.parquet"),
                          "--teacher", "oracle", "--out", str(tmp_path / "two"), "--num-frames", "4",
                          "--longest-edge", "112", "--workers", "0", "--clips-per-shard", "1"],
                         env={**os.environ, "RANK": str(r), "WORLD_SIZE": "2"}, stdout=subprocess.PIPE, text=True)
        for r in range(2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert not (tmp_path / "two" / "index.json").exists()
    res = CliRunner().invoke(app, ["extract", "--finalize", "--out", str(tmp_path / "two")])
    assert res.exit_code == 0, res.output
    one, two = StoreReader(tmp_path / "one"), StoreReader(tmp_path / "two", verify=True)
    assert sorted(one.clip_ids) == sorted(two.clip_ids)
    assert {s.name.split("-")[0] for s in two.manifest.shards} == {"r000", "r001"}
    for cid in one.clip_ids:
        a, b = one[cid], two[cid]
        for name in ("frame_indices", "pose_enc", "extrinsics", "intrinsics", "depth", "depth_conf"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        for layer in a.features:
            np.testing.assert_array_equal(a.features[layer], b.features[layer])
        assert a.frames == b.frames


def test_plan_prints_a_storage_estimate_without_writing(synth_corpus, tmp_path):
    res = CliRunner().invoke(app, ["extract", "--corpus", str(synth_corpus / "corpus.parquet"), "--teacher", "vggt",
                                   "--out", str(tmp_path / "s"), "--plan"])
    assert res.exit_code == 0, res.output
    assert "KB/frame" in res.output and "total" in res.output and not Path(tmp_path / "s").exists()


def test_tiny_vggt_extraction_runs_end_to_end(synth_corpus, tmp_path):
    cfg = ExtractConfig(corpus=str(synth_corpus / "corpus.parquet"), out=str(tmp_path / "v"), teacher="vggt",
                        teacher_kwargs={"config": "tiny", "device": "cpu", "random_init": True}, format="wds", sampling=SAMPLING,
                        clips_per_shard=2, workers=0, progress=False)
    res = run_extract(cfg)
    assert res.stored == 2 and not res.failed
    finalize_store(tmp_path / "v")
    reader = StoreReader(tmp_path / "v", verify=True)
    clip = reader["synth_0000"]
    assert reader.header.teacher.name == "vggt" and list(reader.header.features.layers) == [0, 1, 2, 3]
    assert reader.header.teacher.random_init and reader.header.teacher.num_layers == 4
    info = CliRunner().invoke(app, ["shards", "info", str(tmp_path / "v")])
    assert info.exit_code == 0 and info.output.startswith("WARNING: RANDOM-INIT TEACHER"), info.output
    assert clip.scale_source == "ground_truth" and clip.metric_scale > 0  # least squares against GT depth
    assert clip.features[0].shape[-1] == 32 and clip.depth.shape == (4, *clip.teacher_input.out_hw)


@pytest.mark.parametrize("how", ["process", "thread"])
def test_a_failing_shard_writer_stops_the_job_with_its_error(synth_corpus, tmp_path, monkeypatch, how):
    from geovr.shared.stores import StoreWriter

    def broken(self, clips, failures=()):
        raise OSError("disk full")

    monkeypatch.setattr(StoreWriter, "write_shard", broken)  # a forked writer inherits the patch
    with pytest.raises(RuntimeError, match="shard writer failed: disk full") as info:
        _extract(synth_corpus, tmp_path / "store", shard_writer=how)
    assert isinstance(info.value.__cause__, OSError)  # the writer's own error, carried over from the child


def test_a_killed_writer_process_stops_the_job_and_the_store_resumes(synth_corpus, tmp_path, monkeypatch):
    from geovr.shared.stores import StoreWriter

    real = StoreWriter.write_shard

    def dies_on_the_second(self, clips, failures=()):
        if any(c.clip_id == "synth_0001" for c in clips):
            os.kill(os.getpid(), signal.SIGKILL)  # the writer process (forked), never the test's
        return real(self, clips, failures)

    monkeypatch.setattr(StoreWriter, "write_shard", dies_on_the_second)
    with pytest.raises(RuntimeError, match=r"shard writer failed: the shard writer process exited \(code -9\)"):
        _extract(synth_corpus, tmp_path / "store")
    monkeypatch.setattr(StoreWriter, "write_shard", real)
    res = _extract(synth_corpus, tmp_path / "store")  # the lock is free again and the first shard is kept
    assert (res.skipped, res.stored, res.failed) == (1, 1, [])
    finalize_store(tmp_path / "store")
    assert verify_store(str(tmp_path / "store")) == []
    assert sorted(StoreReader(tmp_path / "store").clip_ids) == ["synth_0000", "synth_0001"]


_ENOSPC_JOB = """
import errno, sys
from geovr.cli import main
from geovr.shared.stores import StoreWriter

def full(self, clips, failures=()):
    raise OSError(errno.ENOSPC, "No space left on device", self.shards_dir)

StoreWriter.write_shard = full
sys.exit(main(sys.argv[1:]))
"""


def test_disk_full_in_the_writer_process_exits_3_with_one_line(synth_corpus, tmp_path):
    cmd = [sys.executable, "-c", _ENOSPC_JOB, "extract", "--corpus", str(synth_corpus / "corpus.parquet"),
           "--teacher", "oracle", "--out", str(tmp_path / "store"), "--num-frames", "4", "--longest-edge", "56",
           "--workers", "0", "--no-progress"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, run.stderr
    err = run.stderr.strip()
    assert err.startswith("error: No space left on device writing") and "\n" not in err, err


def test_a_job_refused_after_its_helpers_started_leaves_none_behind(synth_corpus, tmp_path):
    """Decoding workers and the writer process start before the teacher and the store's header check:
    a refusal there (different header) stops them all and frees the lock."""
    import multiprocessing

    from geovr.shared.safety import IncompatibleStoreError

    _extract(synth_corpus, tmp_path / "store", fmt="wds")
    before = {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(IncompatibleStoreError, match="format"):
        _extract(synth_corpus, tmp_path / "store", fmt="zarr", workers=2)
    assert {p.pid for p in multiprocessing.active_children()} == before
    assert not list((tmp_path / "store").glob(".lock-*"))  # released: another job may start at once
    assert _extract(synth_corpus, tmp_path / "store", fmt="wds").skipped == 2


class _Unsendable:
    """A queue item the writer process cannot be sent (pickling fails in the queue's feeder thread)."""

    def __reduce__(self):
        raise MemoryError("no memory to pickle this item")


def test_an_item_that_cannot_reach_the_writer_process_fails_the_job(tmp_path):
    """multiprocessing's queue pickles in a feeder thread and only prints what fails there: the clip would be
    counted as stored, never written, and the job would end with exit 0."""
    from geovr.extract.shardwriter import start_shard_writer
    from geovr.shared.stores import ClipFailure, StoreWriter
    from geovr.shared.stores.testing import make_header

    writer = StoreWriter(tmp_path / "store", make_header("zarr", "fp16"))
    sw = start_shard_writer(1, "process", "zarr")
    try:
        sw.open(writer)
        sw.put(("failure", ClipFailure(clip_id="a", uri="a.mp4", reason="r")))
        sw.put(("failure", _Unsendable()))
        deadline = time.monotonic() + 10
        while sw.q.feed_error is None and time.monotonic() < deadline:  # the feeder thread has dropped it
            time.sleep(0.01)
        outcome: list = []

        def finish():
            try:
                outcome.append(sw.finish())
            except RuntimeError as exc:
                outcome.append(exc)

        t = threading.Thread(target=finish, daemon=True)
        t.start()
        t.join(15)  # finish must not wait for a child that was never told the job ended
        assert outcome and isinstance(outcome[0], RuntimeError), outcome
        assert "shard writer failed: no memory to pickle" in str(outcome[0])
        assert isinstance(outcome[0].__cause__, MemoryError)
        assert not sw.proc.is_alive()
    finally:
        sw.abort()
        writer.close()


def test_a_job_failing_as_it_opens_the_store_frees_the_lock(synth_corpus, tmp_path, monkeypatch):
    """The job's own StoreWriter holds the prefix lock too: a failure between its creation and the loop
    (cleaning leftovers, handing the store to the writer) must close it, or the lock stays held."""
    from geovr.shared.stores import StoreWriter

    def broken(self):
        raise PermissionError(13, "Permission denied", self.shards_dir)

    monkeypatch.setattr(StoreWriter, "clean", broken)
    with pytest.raises(PermissionError) as info:
        _extract(synth_corpus, tmp_path / "store")
    # released by the job itself, not by the writer's __del__ once the traceback (held here) is dropped
    assert info.value.errno == 13 and not list((tmp_path / "store").glob(".lock-*"))


def test_a_failing_job_stops_its_writer_thread(synth_corpus, tmp_path, monkeypatch):
    """Thread mode: a job that fails outside the writer (a bug, Ctrl-C) stops the writer thread before it
    frees the prefix lock, as the process mode kills its child; the thread never lingers on the queue."""
    import geovr.extract.teachers as teachers

    real, calls = teachers.ClipContext, []

    def context(**kw):
        calls.append(1)
        if len(calls) == 2:
            raise TypeError("a bug in the job")
        return real(**kw)

    monkeypatch.setattr(teachers, "ClipContext", context)
    with pytest.raises(TypeError, match="a bug in the job"):
        _extract(synth_corpus, tmp_path / "store", shard_writer="thread")
    assert not [t for t in threading.enumerate() if t.name == "geovr-shard-writer"]


def test_a_remote_or_file_url_output_is_handled_before_anything_loads(synth_corpus, tmp_path, monkeypatch):
    """--out is a local folder: a remote URL is a usage error before the teacher loads (not a folder named
    's3:' under the working directory), and a file:// URL is that folder."""
    from geovr.shared.errors import UsageError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="s3://bucket/store"):
        _extract(synth_corpus, "s3://bucket/store")
    assert not (tmp_path / "s3:").exists()
    res = _extract(synth_corpus, f"file://{tmp_path}/local")
    assert res.stored == 2 and not (tmp_path / "file:").exists()
    assert len(list((tmp_path / "local" / "shards").glob("r000-*.json"))) == 2
