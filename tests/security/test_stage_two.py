"""Issue #12 items 3, 4, 5, 6: stage two (and every reader) verifies what it reads."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from geovr.shared.safety import CorruptStoreError, IncompatibleStoreError, StoreError
from geovr.shared.stores import StoreReader, StoreWriter, finalize_store, verify_store
from geovr.shared.stores.sidecar import file_entries
from geovr.shared.stores.testing import make_clip, make_header
from geovr.train.config import DataConfig
from geovr.train.data import TrainData


def rehash(root: Path, name: str, fmt: str) -> list[str]:
    """Make a tampered shard hash-consistent again (sidecar + index.json), as a careful attacker would; returns
    what ``verify_store`` still finds (never a hash or size problem; structural ones such as a duplicate tar
    member remain)."""
    side = root / "shards" / f"{name}.json"
    d = json.loads(side.read_text())
    d["files"] = [vars(f) for f in file_entries(str(root / "shards"), name, fmt)]
    side.write_text(json.dumps(d))
    finalize_store(root)
    problems = verify_store(str(root))
    assert not [p for p in problems if "sha256" in p or "bytes, index.json says" in p], problems
    return problems


def reindex(tar: Path) -> None:
    """Rebuild a rewritten tar's offset index (``.idx.npy``), as the attacker's own tooling would."""
    from geovr.shared.stores.wds_index import INDEX_SUFFIX, build_wds_index

    try:
        data = build_wds_index(str(tar))
    except ValueError:  # e.g. a duplicated member: leave the old index, the tar is refused either way
        return
    tar.with_name(tar.name[: -len(".tar")] + INDEX_SUFFIX).write_bytes(data)


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def edit_tar(root: Path, change) -> list[str]:
    """``change(members: list[[name, bytes]])`` on ``r000-00000.tar`` in place, then rehash."""
    tar = root / "shards" / "r000-00000.tar"
    with tarfile.open(tar) as tf:
        members = [[m.name, tf.extractfile(m).read()] for m in tf]
    change(members)
    with tarfile.open(tar, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    reindex(tar)
    return rehash(root, "r000-00000", "wds")


def replace(suffix: str, fn):
    def change(members):
        for m in members:
            if m[0].endswith(suffix):
                m[1] = fn(m[1])
    return change


def npy_change(f):
    return lambda b: npy(f(np.load(io.BytesIO(b))))


def bomb_png(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _meta_schema_9(b: bytes) -> bytes:
    d = json.loads(b)
    d["schema_version"] = "9.0"
    return json.dumps(d).encode()


CASES = {  # item 4 (hash-consistent but wrong content) and item 5 (tracebacks instead of a store error)
    "int16 depth": (replace(".depth.npy", npy_change(lambda a: a.astype(np.int16))), "depth.*dtype int16"),
    "wrong feature width": (replace(".feat_l04.npy", npy_change(lambda a: np.concatenate([a, a], -1))),
                            "feat_l11 has 8 channels, other layers 16"),
    "NaN features": (replace(".feat_l04.npy", npy_change(lambda a: np.where(a > 0, np.nan, a).astype(a.dtype))),
                     "feat_l04.*NaN or Inf"),
    "Inf confidence": (replace(".depth_conf.npy", npy_change(lambda a: np.full_like(a, np.inf))),
                       "depth_conf.*NaN or Inf"),
    # the tar's own index cannot be rebuilt (scan_tar refuses it), so the old one no longer covers the tar:
    # refused when the shard opens, naming the shard
    "duplicate member": (lambda ms: ms.insert(2, [ms[1][0], ms[1][1]]), "appears twice|after the last indexed sample"),
    "schema 9.0": (replace(".meta.json", _meta_schema_9), "schema_version.*9.0"),
    "malformed meta JSON": (replace(".meta.json", lambda b: b"[1, 2]"), "metadata is a list"),
    "string dtype": (replace(".depth.npy", lambda b: npy(np.array(["a", "b"]))), "not a plain numeric dtype"),
    "oversized npy header": (replace(".depth.npy", lambda b: b"\x93NUMPY\x01\x00" + b"\xff\xff" + b" " * 70000),
                             "not a valid .npy"),
    "npy shape larger than payload": (replace(".depth.npy", lambda b: b[:60] + b"\0" * 8),
                                      "not a valid .npy|holds .* bytes"),
    "bad frame bytes": (replace(".f001.jpg", lambda b: b"\xff\xd8not a jpeg"), "frame 1 is not a readable image"),
    "PNG decompression bomb": (replace(".f000.jpg", lambda b: bomb_png(30000, 30000)), "frame 0"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_items04_05_wrong_content_is_a_named_store_error(store_copy, case) -> None:
    change, message = CASES[case]
    root = store_copy("wds")
    problems = edit_tar(root, change)
    if case == "duplicate member":  # structure, not content: `shards verify` already refuses it
        assert len(problems) == 1 and "a__00000.depth.npy' appears twice" in problems[0]
    else:
        assert problems == []
    with pytest.raises(StoreError, match=message) as info:
        StoreReader(root)["a/00000"]
    msg = str(info.value)
    assert "r000-00000" in msg  # names the shard and (content problems) the clip
    assert case == "duplicate member" or "a/00000" in msg or "a__00000" in msg
    assert StoreReader(root)["b/00000"].clip_id == "b/00000"  # the other clip stays readable


def test_item04_schema_9_is_incompatible_not_corrupt(store_copy) -> None:
    root = store_copy("wds")
    edit_tar(root, CASES["schema 9.0"][0])
    with pytest.raises(IncompatibleStoreError, match="upgrade geovr"):
        StoreReader(root)["a/00000"]


def test_item05_bomb_refused_before_decoding(store_copy) -> None:
    root = store_copy("wds")
    edit_tar(root, CASES["PNG decompression bomb"][0])
    tracemalloc.start()
    with pytest.raises(StoreError, match="frame 0"):
        StoreReader(root)["a/00000"]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20


def test_item06_zarr_shapes_checked_before_allocation(store_copy) -> None:
    root = store_copy("zarr")
    meta = root / "shards" / "r000-00000" / "depth" / "zarr.json"
    d = json.loads(meta.read_text())
    d["shape"] = [d["shape"][0], 20000, 20000]  # 2.4 GB of float16 for 3 frames, from a few bytes of JSON
    meta.write_text(json.dumps(d))
    rehash(root, "r000-00000", "zarr")
    tracemalloc.start()
    with pytest.raises(StoreError, match=r"depth.*per-frame shape \(20000, 20000\)"):
        StoreReader(root)["a/00000"]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20


# ----------------------------------------------------------------------------------- item 3: training


def _flip(root: Path) -> Path:
    tar = root / "shards" / "r000-00001.tar"
    data = bytearray(tar.read_bytes())
    data[700] ^= 0xFF
    tar.write_bytes(bytes(data))
    return tar


def test_item03_training_refuses_a_tampered_store_before_the_model_loads(store_copy, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GEOVR_CACHE", str(tmp_path / "cache"))
    root = store_copy("wds")
    tar = _flip(root)
    with pytest.raises(CorruptStoreError, match=r"r000-00001\.tar.*sha256.*training refused"):
        TrainData(DataConfig(stores=[str(root)], mix_clips_without_qa=True), seed=0)
    # lazy verification refuses on the first read of that shard instead
    data = TrainData(DataConfig(stores=[str(root)], mix_clips_without_qa=True, verify="lazy"), seed=0)
    with pytest.raises(CorruptStoreError, match=r"r000-00001\.tar"):
        [data.sample(p) for p in range(4)]
    # symlinked data is refused too
    tar.unlink()
    tar.symlink_to(tmp_path / "elsewhere.tar")
    with pytest.raises(StoreError, match="symlink"):
        TrainData(DataConfig(stores=[str(root)], mix_clips_without_qa=True), seed=0)


def test_item03_skip_mode_never_trains_on_a_bad_clip(store_copy, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GEOVR_CACHE", str(tmp_path / "cache"))
    root = store_copy("wds")
    _flip(root)
    data = TrainData(DataConfig(stores=[str(root)], mix_clips_without_qa=True, on_bad_clip="skip"), seed=0)
    assert list(data.bad) == ["b/00000"]
    assert "skipping bad clip 'b/00000'" in capsys.readouterr().err
    assert {data.item_at(p)[0] for p in range(8)} == {"a/00000", "b/00000"}
    assert all(data.sample(p).targets["depth"].shape[0] == 3 for p in range(8))  # only clip a is ever returned


def test_item03_nan_and_width_mismatch_skipped_or_stop(tmp_path, monkeypatch) -> None:
    """Content problems that hashes cannot see: NaN features (the run used to die at step 2 after
    optimizer steps) and a clip whose feature width differs from the run's."""
    monkeypatch.setenv("GEOVR_CACHE", str(tmp_path / "cache"))
    header = make_header("wds", "fp16")
    root = tmp_path / "s"
    with StoreWriter(root, header) as w:
        w.write_shard([make_clip("a/00000", header)])
        w.write_shard([make_clip("wide/00000", header, channels=16)])
        w.write_shard([make_clip("nan/00000", header, seed=3)])
    finalize_store(root)
    edit = replace(".feat_l04.npy", npy_change(lambda a: np.full_like(a, np.nan)))
    tar = root / "shards" / "r000-00002.tar"
    with tarfile.open(tar) as tf:
        members = [[m.name, tf.extractfile(m).read()] for m in tf]
    edit(members)
    with tarfile.open(tar, "w") as tf:
        for name, b in members:
            info = tarfile.TarInfo(name)
            info.size = len(b)
            tf.addfile(info, io.BytesIO(b))
    reindex(tar)
    rehash(root, "r000-00002", "wds")
    skip = TrainData(DataConfig(stores=[str(root)], mix_clips_without_qa=True, on_bad_clip="skip"), seed=0)
    width = skip.teacher_dim  # the run's width comes from its first good clip
    assert width in (8, 16)
    for p in range(12):
        s = skip.sample(p)
        assert all(np.isfinite(f).all() and f.shape[-1] == width for f in s.targets["features"].values())
    assert sorted(skip.bad) == ["nan/00000", "a/00000" if width == 16 else "wide/00000"][:: 1 if width == 8 else -1]
    stop = TrainData(DataConfig(stores=[str(root)], mix_clips_without_qa=True), seed=0)
    with pytest.raises(StoreError, match="nan/00000.*NaN|feature width"):
        [stop.sample(p) for p in range(12)]


def test_item03_hash_cache_avoids_rehashing(store_copy, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GEOVR_CACHE", str(tmp_path / "cache"))
    root = store_copy("zarr")
    r = StoreReader(root)
    assert r.verify_all_shards() == {}
    import geovr.shared.stores.reader as reader_mod

    calls = []
    real = reader_mod.sha256_file
    monkeypatch.setattr(reader_mod, "sha256_file", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert StoreReader(root).verify_all_shards() == {} and calls == []  # a restart only stats files
    victim = next(p for p in (root / "shards" / "r000-00000").rglob("*") if p.is_file() and p.name != "zarr.json")
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, new content: the stamp changes, rehashed
    bad = StoreReader(root).verify_all_shards()
    assert list(bad) == ["r000-00000"] and "sha256" in bad["r000-00000"] and calls


def test_item06_chunk_grid_bounds(tmp_path) -> None:
    """Shards may round the shape up to whole chunks (the writer does); chunks larger than the array may not."""
    import zarr

    from geovr.shared.stores.zarr_shard import ZarrShardReader

    g = zarr.open_group(zarr.storage.LocalStore(str(tmp_path / "g")), mode="w", zarr_format=3)
    g.create_array("ok", shape=(3,), chunks=(2,), shards=(4,), dtype="uint8")
    g.create_array("big", shape=(3,), chunks=(8,), dtype="uint8")
    reader = ZarrShardReader.__new__(ZarrShardReader)
    reader.url, reader.arrays = "g", {"ok": g["ok"], "big": g["big"]}
    reader.array_info("ok")
    with pytest.raises(CorruptStoreError, match="'big' chunks"):
        reader.array_info("big")
