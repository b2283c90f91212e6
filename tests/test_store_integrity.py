"""Corruption, crash leftovers, versioning and compatibility: each detected, named, nothing else touched."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from geovr.shared.stores import (
    CorruptStoreError,
    IncompatibleStoreError,
    NotFinalizedError,
    StoreError,
    StoreReader,
    StoreWriter,
    finalize_store,
    verify_store,
)
from geovr.shared.stores.testing import make_clip, make_header


def build(root: Path, fmt: str, shards: int = 2, prefix: str = "r000") -> list[str]:
    header = make_header(fmt, "fp16")
    w = StoreWriter(root, header, shard_prefix=prefix)
    ids = []
    for i in range(shards):
        cid = f"{prefix}v{i}/00000"
        w.write_shard([make_clip(cid, header, s=2, seed=i)])
        ids.append(cid)
    finalize_store(root)
    return ids


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def biggest_shard_file(root: Path) -> Path:
    return max((p for p in (root / "shards").rglob("*") if p.is_file() and p.suffix != ".json"),
               key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_clean_store_verifies(tmp_path, fmt) -> None:
    build(tmp_path, fmt)
    assert verify_store(str(tmp_path)) == []


@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_flipped_byte_and_truncation_detected(tmp_path, fmt) -> None:
    build(tmp_path, fmt)
    victim = biggest_shard_file(tmp_path)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    before = snapshot(tmp_path)
    problems = verify_store(str(tmp_path))
    assert len(problems) == 1 and str(victim) in problems[0] and "sha256" in problems[0]
    assert snapshot(tmp_path) == before  # verify touches nothing
    with pytest.raises(CorruptStoreError, match=str(victim.name)):
        StoreReader(tmp_path, verify=True)
    victim.write_bytes(bytes(data[: len(data) // 3]))
    problems = verify_store(str(tmp_path))
    assert len(problems) == 1 and str(victim) in problems[0] and "truncated" in problems[0]


def test_truncated_tar_read_without_verify(tmp_path) -> None:
    ids = build(tmp_path, "wds", shards=1)
    tar = tmp_path / "shards" / "r000-00000.tar"
    tar.write_bytes(tar.read_bytes()[:700])
    with pytest.raises(CorruptStoreError, match="r000-00000.tar"):
        StoreReader(tmp_path)[ids[0]]


@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_missing_and_extra_shards_detected(tmp_path, fmt) -> None:
    build(tmp_path, fmt)
    sh = tmp_path / "shards"
    if fmt == "wds":
        (sh / "r000-00001.tar").unlink()
        (sh / "r009-00000.tar").write_bytes(b"not ours")
    else:
        for p in sorted((sh / "r000-00001").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (sh / "r000-00001").rmdir()
        (sh / "r009-00000").mkdir()
        (sh / "r009-00000" / "zarr.json").write_text("{}")
    problems = verify_store(str(tmp_path))
    assert any("r000-00001" in p and "missing" in p for p in problems), problems
    assert any("r009-00000" in p and "unknown file" in p for p in problems), problems
    assert (sh / "r000-00000.json").exists()  # nothing deleted


def test_manifest_versions(tmp_path) -> None:
    build(tmp_path, "zarr", shards=1)
    index = tmp_path / "index.json"
    d = json.loads(index.read_text())
    d["format_version"] = "2.0"
    index.write_text(json.dumps(d))
    with pytest.raises(IncompatibleStoreError, match=r"index.json.*2\.0.*1\.1.*upgrade geovr"):
        StoreReader(tmp_path)
    assert any("2.0" in p for p in verify_store(str(tmp_path)))
    d["format_version"] = "1.7"
    d["future_field"] = {"x": 1}
    index.write_text(json.dumps(d))
    with pytest.warns(UserWarning) as rec:
        r = StoreReader(tmp_path)
    msgs = " ".join(str(w.message) for w in rec)
    assert "1.7" in msgs and "future_field" in msgs
    assert len(r) == 1


def test_not_finalized_and_expect(tmp_path) -> None:
    header = make_header("wds", "fp16")
    StoreWriter(tmp_path, header).write_shard([make_clip("a/00000", header)])
    with pytest.raises(NotFinalizedError, match="index.json"):
        StoreReader(tmp_path)
    finalize_store(tmp_path)
    StoreReader(tmp_path, expect=header)
    StoreReader(tmp_path, expect={"sampling": header.sampling, "teacher": header.teacher})
    with pytest.raises(IncompatibleStoreError, match=r"sampling\.stride: 2 != 4"):
        StoreReader(tmp_path, expect={"sampling": {"num_frames": 4, "stride": 4}})


def test_crash_leftovers_cleaned_and_not_committed(tmp_path) -> None:
    store, other = tmp_path / "store", tmp_path / "other"
    header = make_header("zarr", "fp16")
    w = StoreWriter(store, header, shard_prefix="r000")
    w.write_shard([make_clip("ok/00000", header)])
    sh = store / "shards"
    # interrupted writes of this prefix: a temp dir, and a renamed shard whose sidecar never landed
    (sh / ".tmp-r000-00001-123").mkdir()
    (sh / ".tmp-r000-00001-123" / "zarr.json").write_text("{}")
    w2 = StoreWriter(store, header, shard_prefix="r000")
    w2b = StoreWriter(other, header, shard_prefix="r000")
    orphan = w2b.write_shard([make_clip("lost/00000", header)])
    os.rename(other / "shards" / orphan.name, sh / "r000-00001")
    # another rank's in-flight temp file must survive this rank's cleanup
    (sh / ".tmp-r001-00000-9").write_bytes(b"busy")
    assert w2.done() == {"ok/00000": "ok"}
    assert not (sh / ".tmp-r000-00001-123").exists() and not (sh / "r000-00001").exists()
    assert (sh / ".tmp-r001-00000-9").exists()
    (sh / ".tmp-r001-00000-9").unlink()
    info = w2.write_shard([make_clip("next/00000", header)])
    assert info.name == "r000-00001"
    man = finalize_store(store)
    assert man.num_clips == 2
    assert StoreReader(store, verify=True).clip_ids == ["ok/00000", "next/00000"]


def test_duplicate_clips_across_ranks_refused(tmp_path) -> None:
    header = make_header("wds", "fp16")
    StoreWriter(tmp_path, header, shard_prefix="r000").write_shard([make_clip("same/00000", header)])
    StoreWriter(tmp_path, header, shard_prefix="r001").write_shard([make_clip("same/00000", header)])
    with pytest.raises(StoreError, match=r"same/00000.*r000-00000.*r001-00000"):
        finalize_store(tmp_path)
    assert not (tmp_path / "index.json").exists()
