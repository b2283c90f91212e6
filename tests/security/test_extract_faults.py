"""Issue #12 items 10-17: faults and bad input of ``geovr extract`` (locks, kills, disk full, decode, manifests)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geovr.extract.corpus import read_corpus
from geovr.extract.runner import ExtractConfig, _ClipSource, _lock_out, run_extract
from geovr.shared.errors import EnvironmentProblem, UsageError
from geovr.shared.sampling import SamplingConfig
from geovr.shared.stores import StoreReader, StoreWriter, finalize_store, verify_store
from geovr.shared.stores.testing import make_clip, make_header
from tests.security.test_stage_two import bomb_png

SAMPLING = SamplingConfig(num_frames=4, longest_edge=56)
REPO = Path(__file__).resolve().parents[2]


def folder(root: Path, sizes: list[tuple[int, int]]) -> Path:
    """An image-folder clip: one PNG per ``(h, w)``."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(root / f"{i:04d}.png")
    return root


def corpus(tmp: Path, rows: list[dict]) -> Path:
    path = tmp / "corpus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def build_flat(layers=(4,), **_):
    """A constant teacher (no weights, no ground truth): enough to drive the job end to end."""
    import torch

    from geovr.extract.teachers.base import TeacherOutput
    from geovr.shared.schema import TeacherInfo

    class Flat:
        info = TeacherInfo(name="flat", version="test", feature_layers=tuple(layers))
        patch_size = 14

        def __call__(self, frames, layers, context=None, spec=None):  # full features; the job reduces them
            s, _, h, w = frames.shape
            ext = torch.zeros(s, 3, 4)
            ext[:, :, :3] = torch.eye(3)
            k = torch.tensor([[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]]).expand(s, 3, 3).clone()
            pose = torch.cat([torch.zeros(s, 3), torch.tensor([0, 0, 0, 1.0]).expand(s, 4), torch.ones(s, 2)], 1)
            feats = {int(la): torch.zeros(s, h // 14, w // 14, 8) for la in layers}
            return TeacherOutput(pose, ext, k, torch.ones(s, h, w), torch.full((s, h, w), 2.0), feats, metric_scale=1.0)

    return Flat()


@pytest.fixture
def flat_teacher(monkeypatch):
    from geovr.extract.teachers import REGISTRY, TeacherEntry

    monkeypatch.setitem(REGISTRY, "flat", TeacherEntry(f"{__name__}:build_flat", (4,)))


def cfg(corpus_path: Path, out: Path, **kw) -> ExtractConfig:
    return ExtractConfig(corpus=str(corpus_path), out=str(out), teacher="flat", layers=(4,), sampling=SAMPLING,
                         clips_per_shard=1, workers=0, progress=False, **kw)


# ------------------------------------------------------------------ items 14, 15: per-clip decode isolation


@pytest.mark.parametrize(("name", "sizes", "bad_file", "message"), [
    ("first larger", [(64, 80)] + [(48, 60)] * 5, "0001.png", "is 60x48, the clip's first frame is 80x64"),  # item 14
    ("first smaller", [(48, 60)] + [(64, 80)] * 5, "0001.png", "is 80x64, the clip's first frame is 60x48"),  # item 15
    ("one frame differs", [(48, 60)] * 3 + [(50, 60)] + [(48, 60)] * 2, "0003.png", "is 60x50"),
])
def test_items14_15_frame_size_checked_per_frame(tmp_path, name, sizes, bad_file, message) -> None:
    rows = read_corpus(corpus(tmp_path, [{"clip_id": "bad", "uri": "bad"}, {"clip_id": "good", "uri": "good"}]))
    folder(tmp_path / "bad", sizes)
    folder(tmp_path / "good", [(48, 60)] * 6)
    src = _ClipSource(rows, SamplingConfig(num_frames=6, longest_edge=56))
    bad, good = src[0], src[1]
    assert bad_file in bad["error"] and message in bad["error"]
    assert "frames" not in bad  # nothing stored for it; the job goes on
    assert good["frames"].shape[0] == 6


@pytest.mark.parametrize("position", [0, 2])
def test_item14_decompression_bomb_fails_only_that_clip(tmp_path, position) -> None:
    rows = read_corpus(corpus(tmp_path, [{"clip_id": "bomb", "uri": "bomb"}, {"clip_id": "good", "uri": "good"}]))
    folder(tmp_path / "bomb", [(48, 60)] * 4)
    (tmp_path / "bomb" / f"{position:04d}.png").write_bytes(bomb_png(30000, 30000))
    folder(tmp_path / "good", [(48, 60)] * 4)
    src = _ClipSource(rows, SAMPLING)
    err = src[0]["error"]
    assert f"{position:04d}.png" in err and ("30000x30000" in err or "DecompressionBomb" in err)
    assert src[1]["frames"].shape[0] == 4


# ------------------------------------------------------------------ items 16, 17: corpus manifest


def test_item16_webdataset_key_collision_refused_up_front(tmp_path) -> None:
    path = corpus(tmp_path, [{"clip_id": "sc/x", "uri": "a"}, {"clip_id": "sc__x", "uri": "b"}])
    with pytest.raises(UsageError, match=r"row 2: clip_id 'sc__x' and 'sc/x' map to the same WebDataset key"):
        read_corpus(path)


@pytest.mark.parametrize(("rows", "message"), [
    ([{"clip_id": "a", "uri": "x"}, {"clip_id": "a", "uri": "y"}], r"row 2: clip_id 'a' is duplicated"),
    ([{"clip_id": "a"}], r"row 1 lacks required column\(s\) \['uri'\]"),
    ("{not json", r"corpus.jsonl:1: not valid JSON"),
    ([{"clip_id": "../a", "uri": "x"}], r"row 1: clip_id '../a' must be"),
    ([{"clip_id": "/abs", "uri": "x"}], r"row 1: clip_id '/abs' must be"),
    ([{"clip_id": "a", "uri": "x", "start_frame": "ten"}], r"row 1: start_frame 'ten' is not an integer"),
    ([{"clip_id": "a", "uri": "x", "start_frame": 1.5}], r"row 1: start_frame 1.5 is not a non-negative integer"),
    ([{"clip_id": "a", "uri": "x", "start_frame": 9, "end_frame": 3}], r"row 1: end_frame 3 <= start_frame 9"),
    ([[1, 2]], r"row 1: not a JSON object"),
])
def test_item17_corpus_errors_are_one_line_usage_errors(tmp_path, rows, message) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UsageError, match=message) as info:
        read_corpus(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_item17_missing_corpus_is_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="corpus manifest not found"):
        read_corpus(tmp_path / "nope.jsonl")


# ------------------------------------------------------------------ item 10: temporaries of killed runs


def test_item10_killed_header_or_finalize_leaves_nothing_behind(tmp_path) -> None:
    header = make_header("zarr")
    root = tmp_path / "store"
    with StoreWriter(root, header) as w:
        w.write_shard([make_clip("a/00000", header)])
    # what a SIGKILL during header creation / finalize leaves in the store root, and a killed shard write
    for name in (".tmp-header.json-1a2b3c4d", ".tmp-index.json-5e6f7a8b", ".tmp-clips.parquet-0badf00d"):
        (root / name).write_text("partial")
    (root / "shards" / ".tmp-r001-00000-77").mkdir()
    lock = _lock_out(ExtractConfig(corpus="unused", out=str(root)))  # the rerun's startup, no other job running
    lock.release()
    assert not [p.name for p in root.rglob(".tmp-*")]
    (root / ".tmp-index.json-99999999").write_text("partial")  # and finalize cleans up too
    finalize_store(root)
    assert verify_store(str(root)) == [] and StoreReader(root).clip_ids == ["a/00000"]


# ------------------------------------------------------------------ item 11: one job per rank


def test_item11_second_job_with_the_same_rank_is_refused(tmp_path, flat_teacher) -> None:
    folder(tmp_path / "v0", [(48, 60)] * 4)
    path = corpus(tmp_path, [{"clip_id": "v0", "uri": "v0"}])
    out = tmp_path / "store"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from geovr.shared.stores.lock import PrefixLock; "
         f"lock = PrefixLock({str(out)!r}, 'r000'); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    out.mkdir()
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UsageError, match=r"another job is writing shard prefix 'r000'.*\.lock-r000"):
            run_extract(cfg(path, out))
        assert not (out / "shards").exists() or not any((out / "shards").iterdir())  # nothing touched
        res = run_extract(cfg(path, out, rank=1, world_size=2))  # another rank is fine
        assert res.stored == 0 and res.skipped == 0  # (rank 1 has no clip here)
    finally:
        holder.stdin.close()
        holder.wait(10)
    res = run_extract(cfg(path, out))  # the first job is gone: the store is usable
    assert res.stored == 1
    finalize_store(out)
    assert verify_store(str(out)) == [] and StoreReader(out).clip_ids == ["v0"]


# ------------------------------------------------------------------ item 12: workers (and the writer) die with the job

_KILLED_JOB = """
import os, sys, time
from geovr.extract import runner
from geovr.shared.sampling import SamplingConfig

def slow(self, i):
    print("worker", os.getpid(), flush=True)
    time.sleep(600)

runner._ClipSource.__getitem__ = slow
runner.run_extract(runner.ExtractConfig(corpus=sys.argv[1], out=sys.argv[2], teacher="oracle", workers=2,
                                        progress=False, sampling=SamplingConfig(num_frames=4, longest_edge=56)))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _children(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.add(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks /proc")
def test_item12_dataloader_workers_die_after_sigkill_of_the_job(tmp_path) -> None:
    folder(tmp_path / "v0", [(48, 60)] * 4)
    folder(tmp_path / "v1", [(48, 60)] * 4)
    path = corpus(tmp_path, [{"clip_id": "v0", "uri": "v0"}, {"clip_id": "v1", "uri": "v1"}])
    job = subprocess.Popen([sys.executable, "-c", _KILLED_JOB, str(path), str(tmp_path / "store")],
                           stdout=subprocess.PIPE, text=True, cwd=REPO)
    workers = set()
    deadline = time.time() + 60
    while len(workers) < 2 and time.time() < deadline:
        line = job.stdout.readline()
        if line.startswith("worker"):
            workers.add(int(line.split()[1]))
    assert len(workers) == 2
    deadline = time.time() + 30
    while len(children := _children(job.pid)) < 3 and time.time() < deadline:
        time.sleep(0.05)  # the shard writer process is forked once the teacher is built
    assert workers < children and len(children) == 3, (workers, children)
    job.send_signal(signal.SIGKILL)
    job.wait()
    deadline = time.time() + 10
    while any(_alive(p) for p in children) and time.time() < deadline:
        time.sleep(0.05)
    left = [p for p in children if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"DataLoader workers / the shard writer {left} outlived the killed job"


# ------------------------------------------------------------------ item 13: disk full


def test_item13_disk_full_is_an_environment_problem(tmp_path, flat_teacher, monkeypatch) -> None:
    folder(tmp_path / "v0", [(48, 60)] * 4)
    folder(tmp_path / "v1", [(48, 60)] * 4)
    path = corpus(tmp_path, [{"clip_id": "v0", "uri": "v0"}, {"clip_id": "v1", "uri": "v1"}])
    out = tmp_path / "store"
    real = StoreWriter.write_shard
    calls = []

    def full(self, clips, failures=None):
        calls.append(1)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "shards" / ".tmp-r000-00001-1"))
        return real(self, clips, failures)

    monkeypatch.setattr(StoreWriter, "write_shard", full)
    with pytest.raises(EnvironmentProblem, match=r"No space left on device writing .*store/shards") as info:
        run_extract(cfg(path, out))
    assert "\n" not in str(info.value)
    monkeypatch.setattr(StoreWriter, "write_shard", real)
    res = run_extract(cfg(path, out))  # space freed: resume keeps the finished shard and does the rest
    assert res.skipped == 1 and res.stored == 1
    finalize_store(out)
    assert verify_store(str(out)) == [] and sorted(StoreReader(out).clip_ids) == ["v0", "v1"]


def test_read_only_store_while_the_job_starts_is_an_environment_problem(tmp_path, flat_teacher, monkeypatch) -> None:
    """The store is opened after the decoding workers, the writer process and the teacher started: an
    environment error there is exit 3 like one in the loop, not a traceback."""
    import geovr.shared.stores.writer as writer_mod

    folder(tmp_path / "v0", [(48, 60)] * 4)
    path = corpus(tmp_path, [{"clip_id": "v0", "uri": "v0"}])

    def read_only(root, header):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "store" / "header.json"))

    monkeypatch.setattr(writer_mod, "open_or_create_header", read_only)
    with pytest.raises(EnvironmentProblem, match=r"Read-only file system writing .*store/header.json"):
        run_extract(cfg(path, tmp_path / "store"))
    assert not list((tmp_path / "store").glob(".lock-*"))


def test_read_only_output_folder_is_an_environment_problem(tmp_path, flat_teacher, monkeypatch) -> None:
    """Taking the prefix lock is the job's first write into --out: a read-only file system there is exit 3."""
    import geovr.shared.stores.lock as lock_mod

    folder(tmp_path / "v0", [(48, 60)] * 4)
    path = corpus(tmp_path, [{"clip_id": "v0", "uri": "v0"}])

    def read_only(root, prefix):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "store" / f".lock-{prefix}"))

    monkeypatch.setattr(lock_mod, "PrefixLock", read_only)
    with pytest.raises(EnvironmentProblem, match=r"Read-only file system writing .*store/.lock-r000"):
        run_extract(cfg(path, tmp_path / "store"))


# ------------------------------------------------------------------ ground-truth scale, fit by the shard writer


def test_missing_ground_truth_depth_fails_that_clip_only(tmp_path, flat_teacher) -> None:
    folder(tmp_path / "v0", [(48, 60)] * 4)
    folder(tmp_path / "v1", [(48, 60)] * 4)
    (tmp_path / "gt0").mkdir()
    np.save(tmp_path / "gt0" / "depth.npy", np.full((4, 48, 60), 3.0, np.float32))  # the flat teacher says 1.0
    path = corpus(tmp_path, [{"clip_id": "v0", "uri": "v0", "gt_dir": "gt0"},
                             {"clip_id": "v1", "uri": "v1", "gt_dir": "gt1"}])  # gt1 has no depth
    out = tmp_path / "store"
    res = run_extract(cfg(path, out, scale_from="ground_truth"))
    assert res.stored == 1 and [c for c, _ in res.failed] == ["v1"]
    assert "FileNotFoundError" in res.failed[0][1] and "ground-truth depth missing" in res.failed[0][1]
    finalize_store(out)
    clip = StoreReader(out)["v0"]
    assert clip.scale_source == "ground_truth" and clip.metric_scale == pytest.approx(3.0)


def test_ground_truth_depth_with_too_few_frames_fails_that_clip_only(tmp_path, flat_teacher) -> None:
    """The corpus's depth.npy is untrusted input read in the shard writer: one that is shorter than its video
    fails that clip (recorded), it does not stop the writer and with it the whole job."""
    folder(tmp_path / "v0", [(48, 60)] * 4)
    folder(tmp_path / "v1", [(48, 60)] * 4)
    (tmp_path / "gt0").mkdir()
    np.save(tmp_path / "gt0" / "depth.npy", np.full((2, 48, 60), 3.0, np.float32))  # 2 frames, the video has 4
    path = corpus(tmp_path, [{"clip_id": "v0", "uri": "v0", "gt_dir": "gt0"}, {"clip_id": "v1", "uri": "v1"}])
    res = run_extract(cfg(path, tmp_path / "store", scale_from="ground_truth"))
    assert res.stored == 1 and [c for c, _ in res.failed] == ["v0"]
    assert "depth.npy" in res.failed[0][1] and "frames" in res.failed[0][1]
