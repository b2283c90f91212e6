"""WebDataset offset index: one ranged read per clip, hashed with the store, checked before use."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from geovr.shared.safety import CorruptStoreError, UnsafeContentError
from geovr.shared.stores import StoreReader, StoreWriter, finalize_store, verify_store, wds_shard
from geovr.shared.stores.testing import make_clip, make_header
from geovr.shared.stores.wds_shard import WdsShardReader

IDS = [f"scene{i:04d}/00000" for i in range(4)]


@pytest.fixture(scope="module")
def wds_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("wdsidx")
    header = make_header("wds", "fp16")
    w = StoreWriter(root, header)
    clips = [make_clip(cid, header, s=2 + i % 2, seed=i) for i, cid in enumerate(IDS)]
    w.write_shard(clips[:3])
    w.write_shard(clips[3:])
    finalize_store(root)
    return root, {c.clip_id: c for c in clips}


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_index_is_listed_hashed_and_used_with_one_ranged_read(wds_store, monkeypatch):
    root, clips = wds_store
    idx = root / "shards" / "r000-00000.idx.npy"
    assert idx.is_file()
    man = json.loads((root / "index.json").read_text())
    assert [f["path"] for f in man["shards"][0]["files"]] == ["r000-00000.tar", "r000-00000.idx.npy"]
    assert verify_store(str(root)) == []
    r = StoreReader(root)
    assert r.verify_all_shards() == {}  # once per shard: sha256 and the index rebuilt from the tar's headers
    calls = []
    real_cat = r.fs.cat_file
    monkeypatch.setattr(r.fs, "cat_file", lambda p, start=None, end=None, **k: calls.append((p, start, end))
                        or real_cat(p, start=start, end=end, **k))
    monkeypatch.setattr(wds_shard, "safe_tar_members", lambda *a, **k: pytest.fail("tar headers scanned"))
    got = r[IDS[1]]
    # open: the index and the tar's end-of-archive padding (one small read); then one ranged read per clip
    size = os.path.getsize(root / "shards" / "r000-00000.tar")
    assert [c[0].rsplit("/", 1)[1] for c in calls] == ["r000-00000.idx.npy", "r000-00000.tar", "r000-00000.tar"]
    assert calls[1][2] == size and 0 < size - calls[1][1] <= 10240
    assert calls[2][1] > 0 and calls[2][2] < size
    np.testing.assert_array_equal(got.depth, clips[IDS[1]].depth)
    assert got.frames == clips[IDS[1]].frames
    monkeypatch.undo()
    # the scan path (stores written before the index) reads the same bytes
    scan = WdsShardReader(str(root / "shards" / "r000-00000.tar"), r.fs)
    assert scan.ranges is None and scan.read_key("scene0001__00000")[2] == got.frames


def test_tampered_index_is_refused_before_use(wds_store, tmp_path):
    # verify_shards=False: the index checks themselves (a verifying reader refuses these by hash first)
    root = _copy(wds_store[0], tmp_path / "s")
    idx = root / "shards" / "r000-00000.idx.npy"
    good = np.load(idx)
    size = os.path.getsize(root / "shards" / "r000-00000.tar")
    a, b = good[0, :2].tolist(), good[1, :2].tolist()
    cases = {
        "outside": [0, size + 512],
        "unaligned": [a[0] + 1, a[1]],
        "neighbour": b,  # a real sample, but another clip's
        "spill": [a[0], b[1]],  # runs into the next sample
        "cut": [a[0], a[1] - 1024],  # ends inside a member
    }
    for name, rng in cases.items():
        bad = good.copy()
        bad[0, :2] = rng
        np.save(idx, bad)
        with pytest.raises(CorruptStoreError):
            StoreReader(root, verify_shards=False)["scene0000/00000"]
        assert any("idx.npy" in p for p in verify_store(str(root))), name
    bad = good.copy()
    bad[0, 2] = good[1, 2]  # meta.json of another sample: outside this sample's range
    np.save(idx, bad)
    with pytest.raises(CorruptStoreError, match="meta.json"):
        list(StoreReader(root, verify_shards=False).iter_meta())
    for bad in (good[:2], good[:, :2], good.astype(np.float64), np.array(["x"] * 12).reshape(3, 4)):  # shape, dtype
        np.save(idx, bad)
        with pytest.raises((CorruptStoreError, UnsafeContentError)):  # a string dtype is refused as unsafe
            StoreReader(root, verify_shards=False)["scene0001/00000"]
    with open(idx, "wb") as f:  # a pickle is never loaded
        np.save(f, np.array([{"a": 1}] * 12, dtype=object).reshape(3, 4), allow_pickle=True)
    with pytest.raises(Exception, match="pickle|object"):
        StoreReader(root, verify_shards=False)["scene0001/00000"]


def test_truncated_tar_is_caught_by_index_size(wds_store, tmp_path):
    root = _copy(wds_store[0], tmp_path / "t")
    tar = root / "shards" / "r000-00001.tar"
    tar.write_bytes(tar.read_bytes()[:2048])  # cut inside the sample's members
    with pytest.raises(CorruptStoreError, match="truncated"):
        StoreReader(root)["scene0003/00000"]


def test_metadata_only_read_uses_the_index(wds_store, monkeypatch):
    root, clips = wds_store
    r = StoreReader(root)
    monkeypatch.setattr(wds_shard, "safe_tar_members", lambda *a, **k: pytest.fail("tar headers scanned"))
    metas = list(r.iter_meta())
    assert [m["clip_id"] for m in metas] == IDS
    assert metas[2] == clips[IDS[2]].meta_dict()


def _block(name: str, data: bytes) -> bytes:
    """One tar member as raw bytes: its header block and its data padded to 512 bytes."""
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info.tobuf(tarfile.PAX_FORMAT) + data + b"\0" * (-len(data) % 512)


def _hidden_inside_range(tar, idx) -> None:
    """Rewrite the tar as: sample 0, two zero blocks, a second ``depth.npy`` of sample 0, the other samples;
    the index tiles the file (row 0 spans the zeros and the hidden member)."""
    data, rows = tar.read_bytes(), np.load(idx)
    hidden = b"\0" * 1024 + _block("scene0000__00000.depth.npy", b"\x93NUMPY forged")
    end0 = int(rows[0, 1])
    tar.write_bytes(data[:end0] + hidden + data[end0:])
    rows[0, 1] += len(hidden)
    rows[1:, :3] += len(hidden)
    np.save(idx, rows)


def _append_after_members(tar, idx) -> None:
    import tarfile

    with tarfile.open(tar, "a") as tf:  # overwrites the end-of-archive blocks, as `tar -r` does
        tf.addfile(*_info("scene0000__00000.depth.npy", b"forged depth"))


def _append_after_end_marker(tar, idx) -> None:
    tar.write_bytes(tar.read_bytes() + _block("scene0000__00000.depth.npy", b"forged depth") + b"\0" * 1024)


def _info(name: str, data: bytes):
    import io
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


@pytest.mark.parametrize("craft", [_append_after_members, _append_after_end_marker, _hidden_inside_range])
def test_duplicate_member_outside_the_indexed_ranges_is_refused_by_every_reader(wds_store, tmp_path, craft):
    """A duplicate member that an offset-indexed read would never see (appended after the indexed samples, or
    hidden behind end-of-archive zeros inside a range) is refused by the indexed reader, the sequential scan and
    ``verify`` alike, even when the attacker re-hashes the store so that every sha256 matches."""
    from tests.security.test_stage_two import rehash

    root = _copy(wds_store[0], tmp_path / "s")
    tar, idx = root / "shards" / "r000-00000.tar", root / "shards" / "r000-00000.idx.npy"
    craft(tar, idx)
    problems = rehash(root, "r000-00000", "wds")  # every hash matches ...
    pat = r"r000-00000\.tar.*(appears twice|not contiguous|non-zero byte|end at byte)"
    assert len(problems) == 1 and re.search(pat, problems[0])  # ... and verify still refuses the tar
    for cid in ("scene0000/00000", "scene0001/00000"):  # a verifying reader refuses the whole shard on first open
        with pytest.raises(CorruptStoreError, match=pat):
            StoreReader(root)[cid]
    # without hashing, the indexed open (index tiles the tar, zero padding) or the range read refuses it
    with pytest.raises(CorruptStoreError, match=pat):
        StoreReader(root, verify_shards=False)["scene0000/00000"]
    with pytest.raises(CorruptStoreError, match=pat):  # sequential: the scan path of index-less stores
        WdsShardReader(str(tar), StoreReader(root, verify_shards=False).fs)


def test_a_new_index_for_a_cached_tar_is_checked_against_the_tar(wds_store, tmp_path, monkeypatch):
    """The tar's hash is cached, then the publisher swaps two index rows and re-hashes: the tar is scanned again."""
    from tests.security.test_stage_two import rehash

    monkeypatch.setenv("GEOVR_CACHE", str(tmp_path / "cache"))
    root = _copy(wds_store[0], tmp_path / "s")
    assert StoreReader(root).verify_all_shards() == {}
    idx = root / "shards" / "r000-00000.idx.npy"
    rows = np.load(idx)
    np.save(idx, rows[[1, 0, 2]])
    assert len(rehash(root, "r000-00000", "wds")) == 1
    bad = StoreReader(root).verify_all_shards()
    assert list(bad) == ["r000-00000"] and "row 0 does not describe the tar's members" in bad["r000-00000"]
