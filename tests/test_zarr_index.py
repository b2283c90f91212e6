"""Zarr clip index (``clip_index.npy``) and the reader's bounded cache of open shard handles (issue #15)."""

from __future__ import annotations

import os
import random
import shutil

import numpy as np
import pytest

from geovr.shared.safety import CorruptStoreError
from geovr.shared.stores import StoreReader, StoreWriter, finalize_store, verify_store
from geovr.shared.stores import reader as reader_mod
from geovr.shared.stores import writer as writer_mod
from geovr.shared.stores.testing import make_clip, make_header
from geovr.shared.stores.zarr_shard import INDEX_FILE, ZarrShardReader

PER_SHARD = 2
N_SHARDS = 5


def _build(root, fmt: str):
    header = make_header(fmt, "fp16")
    clips = [make_clip(f"scene{i:04d}/00000", header, s=2 + i % 2, seed=i) for i in range(PER_SHARD * N_SHARDS)]
    w = StoreWriter(root, header)
    for k in range(N_SHARDS):
        w.write_shard(clips[k * PER_SHARD : (k + 1) * PER_SHARD])
    finalize_store(root)
    return {c.clip_id: c for c in clips}


def _same(got, want) -> None:
    assert got.clip_id == want.clip_id and got.frames == want.frames
    np.testing.assert_array_equal(got.depth, want.depth)
    np.testing.assert_array_equal(got.pose_enc, want.pose_enc)
    assert sorted(got.features) == sorted(want.features)


@pytest.fixture(scope="module")
def zarr_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("zidx") / "store"
    return root, _build(root, "zarr")


@pytest.fixture(scope="module")
def wds_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("widx") / "store"
    return root, _build(root, "wds")


def test_index_is_hashed_and_open_makes_no_zarr_read(zarr_store, monkeypatch):
    root, clips = zarr_store
    assert (root / "shards" / "r000-00000" / INDEX_FILE).is_file() and verify_store(str(root)) == []
    r = StoreReader(root)
    r.verify_all_shards()
    import zarr.core.sync

    calls, real = [], zarr.core.sync.sync
    monkeypatch.setattr(zarr.core.sync, "sync", lambda *a, **k: calls.append(a) or real(*a, **k))
    shard = r._shard("r000-00001")
    assert shard.indexed and len(shard) == PER_SHARD and calls == []  # no hand-off to zarr's event loop
    # the index path and the full group open (older shards) give the same clips
    full = ZarrShardReader(str(root / "shards" / "r000-00001"), True)
    assert not full.indexed
    for row in range(PER_SHARD):
        m1, a1, f1 = shard.read(row)
        m2, a2, f2 = full.read(row)
        assert m1 == m2 and f1 == f2 and sorted(a1) == sorted(a2)
        assert all(np.array_equal(a1[k], a2[k]) for k in a1)
    for cid, want in clips.items():
        _same(r[cid], want)


def test_older_shards_without_index_still_read(tmp_path, monkeypatch):
    real = writer_mod.write_zarr_shard

    def older(path, *a, **k):
        written = real(path, *a, **k)  # (file, bytes, sha256) of each file, for the sidecar
        os.remove(os.path.join(path, INDEX_FILE))  # as written before the index existed
        return [w for w in written if w[0] != INDEX_FILE]

    monkeypatch.setattr(writer_mod, "write_zarr_shard", older)
    clips = _build(tmp_path / "old", "zarr")
    monkeypatch.undo()
    r = StoreReader(tmp_path / "old")
    for cid, want in clips.items():
        _same(r[cid], want)
    assert not any(s.indexed for s in r._shards.values())


@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_more_shards_than_the_cache_read_correctly_and_eviction_is_bounded(fmt, zarr_store, wds_store, monkeypatch):
    root, clips = zarr_store if fmt == "zarr" else wds_store
    loads = []
    real = reader_mod.HashCache.for_store
    monkeypatch.setattr(reader_mod.HashCache, "for_store", lambda *a: loads.append(a) or real(*a))
    r = StoreReader(root)
    r.max_open_shards = 2
    order = list(clips) * 2
    random.Random(0).shuffle(order)
    for cid in order:
        _same(r[cid], clips[cid])
        assert len(r._shards) <= 2 and set(r._shard_bytes) == set(r._shards)
    assert len(loads) == 1  # one hash cache per reader, not one per shard opened
    # least recently used goes first
    r._shard("r000-00000")
    r._shard("r000-00001")
    r._shard("r000-00000")
    r._shard("r000-00002")
    assert list(r._shards) == ["r000-00000", "r000-00002"]
    # the memory bound: handles report their size; a budget below one handle keeps just the newest
    assert all(0 < b < 200_000 for b in r._shard_bytes.values())
    r.max_open_shards, r.max_open_bytes = 100, 1
    r._shard("r000-00003")
    assert list(r._shards) == ["r000-00003"]


def _tamper_index(root, fn) -> None:
    path = root / "shards" / "r000-00000" / INDEX_FILE
    idx = np.load(path)
    fn(idx)
    with open(path, "wb") as f:
        np.save(f, idx)


@pytest.mark.parametrize("how,match", [
    ("swap", "stored record is for clip"),
    ("outside", "not a range"),
    ("frames", "clip_offsets give 3 frames"),
    ("shift", "do not run from"),
])
def test_tampered_index_is_refused(zarr_store, tmp_path, how, match):
    src, clips = zarr_store
    root = tmp_path / "t"
    shutil.copytree(src, root)

    def swap(idx):
        idx[[0, 1]] = idx[[1, 0]]

    def outside(idx):
        idx[0, 1] = 1 << 40

    def frames(idx):
        idx[0, 3] += 1

    def shift(idx):  # same length, other frames: the frame_offsets read with the clip disagree
        idx[0, 2:4] += 1

    _tamper_index(root, {"swap": swap, "outside": outside, "frames": frames, "shift": shift}[how])
    cid = "scene0000/00000"
    with pytest.raises(CorruptStoreError, match="sha256"):  # a verifying reader refuses by hash first
        StoreReader(root)[cid]
    assert any(INDEX_FILE in p for p in verify_store(str(root)))
    with pytest.raises(CorruptStoreError, match=match):  # and the index checks hold without hashes
        StoreReader(root, verify_shards=False)[cid]


def test_clip_index_spans_hold_each_record_also_in_non_ascii_json():
    import json

    from geovr.shared.stores.zarr_shard import SPAN_ATTRS, clip_index

    metas = [{"clip_id": "a/00000", "note": "Zürich ✓"}, {"clip_id": "b/00000", "v": [1, 2]}]
    attrs = {"geovr_shard": 1, "clips": metas, "frame_arrays": ["depth"], "clip_arrays": []}
    co, fo = np.array([0, 2, 5]), np.array([0, 10, 20, 30, 40, 50])
    for ascii_only in (True, False):
        raw = json.dumps({"attributes": attrs, "zarr_format": 3}, indent=2, ensure_ascii=ascii_only).encode()
        idx = clip_index(raw, co, fo)
        assert idx.shape == (2 + len(SPAN_ATTRS), 6)
        assert [json.loads(raw[a:b]) for a, b in idx[:, :2]] == [*metas, 1, ["depth"], []]
        assert idx[:2, 2:].tolist() == [[0, 2, 0, 20], [2, 5, 20, 50]]


def test_rehashed_index_that_does_not_describe_the_group_is_refused(zarr_store, tmp_path):
    """An index rewritten with its hash updated in index.json (a store crafted by its sender): row 0 names frames
    [1, 3) (half of clip 0, half of clip 1, byte ranges consistent with frame_offsets), which zarr and older
    readers never give for that clip. verify_shard / shards verify rebuild the index from the group and refuse it."""
    import hashlib
    import json

    import zarr

    src, _clips = zarr_store
    root = tmp_path / "t"
    shutil.copytree(src, root)
    fo = zarr.open_array(str(root / "shards" / "r000-00000" / "frame_offsets"), mode="r")[:]

    def mix(idx):
        idx[0, 2:] = [1, 3, fo[1], fo[3]]

    _tamper_index(root, mix)
    data = (root / "shards" / "r000-00000" / INDEX_FILE).read_bytes()
    man = json.loads((root / "index.json").read_text())
    for f in man["shards"][0]["files"]:
        if f["path"].endswith(INDEX_FILE):
            f["sha256"], f["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
    (root / "index.json").write_text(json.dumps(man))
    assert any(INDEX_FILE in p and "does not describe" in p for p in verify_store(str(root)))
    assert "does not describe" in StoreReader(root).verify_all_shards().get("r000-00000", "")
    with pytest.raises(CorruptStoreError, match="does not describe"):
        StoreReader(root)["scene0000/00000"]


def test_index_read_is_bounded_by_the_file_not_by_the_manifest_sample_count(zarr_store, tmp_path):
    """A huge ``samples`` in index.json sizes no read buffer (``f.read(n)`` allocates ``n`` up front): the small
    index is read as it is and refused for its shape."""
    import json

    src, _clips = zarr_store
    root = tmp_path / "t"
    shutil.copytree(src, root)
    d = json.loads((root / "index.json").read_text())
    d["shards"][0]["samples"] = 1 << 45
    (root / "index.json").write_text(json.dumps(d))
    with pytest.raises(CorruptStoreError, match=r"must be an integer \[35184372088835, 6\] array"):
        StoreReader(root, verify_shards=False)._shard("r000-00000")
