"""Remote stores over a real S3 protocol: a moto S3 server on the loopback interface, s3fs clients.

Publish a tiny store (both formats), verify it remotely, pull it back, and read it for training
(``TrainData`` over ``s3://``) — the same code paths a lab's object store uses.
"""

from __future__ import annotations

import pytest

moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (dev extra)")
pytest.importorskip("s3fs", reason="needs s3fs (dev extra)")

BUCKET = "geovr-test"
IDS = ["scene0000/00000", "scene0001/00000", "scene0002/00000"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """``(endpoint, local_stores)``: one loopback S3 server per module, s3fs pointed at it."""
    import boto3
    import fsspec

    from geovr.shared.stores import StoreWriter, finalize_store
    from geovr.shared.stores.testing import make_clip, make_header

    mp = pytest.MonkeyPatch()
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        mp.setenv(k, v)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    old = fsspec.config.conf.get("s3")
    fsspec.config.conf["s3"] = {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    stores = {}
    for fmt in ("zarr", "wds"):
        root = tmp_path_factory.mktemp(f"s3src_{fmt}")
        header = make_header(fmt, "fp16", layers=(4,))
        StoreWriter(root, header).write_shard([make_clip(c, header, s=2, seed=i) for i, c in enumerate(IDS)])
        finalize_store(root)
        stores[fmt] = root
    yield endpoint, stores
    fsspec.config.conf.pop("s3", None)
    if old is not None:
        fsspec.config.conf["s3"] = old
    server.stop()
    mp.undo()


@pytest.mark.parametrize("fmt", ["zarr", "wds"])
def test_publish_verify_pull_and_train_reads_over_s3(s3, fmt, tmp_path):
    import numpy as np

    from geovr.shared.shards.transfer import transfer_store
    from geovr.shared.stores import StoreReader, verify_store
    from geovr.train.config import DataConfig
    from geovr.train.data import TrainData

    _endpoint, stores = s3
    url = f"s3://{BUCKET}/{fmt}"
    sent = transfer_store(str(stores[fmt]), url)
    assert "index.json" in sent.copied and sent.bytes_copied > 0
    assert verify_store(url) == []
    local = StoreReader(stores[fmt])
    remote = StoreReader(url, verify=True)
    assert remote.clip_ids == IDS and not remote.is_local
    for cid in IDS:
        a, b = local[cid], remote[cid]
        np.testing.assert_array_equal(a.depth, b.depth)
        assert a.frames == b.frames
    data = TrainData(DataConfig(stores=[url], mix_clips_without_qa=True), seed=0)
    assert sorted(data.item_at(p)[0] for p in range(len(IDS))) == IDS
    sample = data.sample(0)
    assert sample.targets["depth"].dtype == np.float32 and len(sample.frames) == 2
    if fmt == "wds":  # pull (the same transfer code; zarr's many small files only cost time here)
        pulled = transfer_store(url, str(tmp_path / "pulled"))
        assert "shards/r000-00000.idx.npy" in pulled.copied
        assert verify_store(str(tmp_path / "pulled")) == []
        again = transfer_store(url, str(tmp_path / "pulled"))  # resumable: hashed files are skipped
        assert "shards/r000-00000.tar" in again.skipped


def test_tampered_remote_object_is_refused(s3):
    import s3fs

    from geovr.shared.safety import CorruptStoreError
    from geovr.shared.shards.transfer import transfer_store
    from geovr.shared.stores import StoreReader, verify_store

    _endpoint, stores = s3
    url = f"s3://{BUCKET}/tampered"
    transfer_store(str(stores["wds"]), url)
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    tar = f"{BUCKET}/tampered/shards/r000-00000.tar"
    data = bytearray(fs.cat_file(tar))
    data[700] ^= 0xFF
    fs.pipe_file(tar, bytes(data))
    s3fs.S3FileSystem.clear_instance_cache()
    assert any("r000-00000.tar" in p for p in verify_store(url))
    with pytest.raises(CorruptStoreError):
        StoreReader(url, verify=True)


def test_remote_hash_cache_skips_unchanged_objects_and_misses_changed_ones(s3, tmp_path, monkeypatch):
    """s3:// shards verified once are not rehashed by the next reader (stamp: size, strong ETag, Last-Modified,
    VersionId from a fresh HEAD); an object rewritten in place with the same size misses and is refused."""
    import json

    import s3fs

    import geovr.shared.stores.reader as reader_mod
    from geovr.shared.shards.transfer import transfer_store
    from geovr.shared.stores import StoreReader

    monkeypatch.setenv("GEOVR_CACHE", str(tmp_path / "cache"))
    _endpoint, stores = s3
    url = f"s3://{BUCKET}/cached"
    transfer_store(str(stores["wds"]), url)
    assert StoreReader(url).verify_all_shards() == {}
    (entries,) = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "verified").glob("*.json")]
    assert {k.rsplit("/", 1)[1] for k in entries} == {"r000-00000.tar", "r000-00000.idx.npy"}
    assert all(e[1].strip('"') for e in entries.values())  # keyed by the server's ETag
    hashed = []
    monkeypatch.setattr(reader_mod, "sha256_file", lambda *a, **k: hashed.append(a[0]) or ("0" * 64, 0))
    real = reader_mod.verify_tar_index
    monkeypatch.setattr(reader_mod, "verify_tar_index", lambda *a, **k: hashed.append(a[1]) or real(*a, **k))
    again = StoreReader(url)
    assert again.verify_all_shards() == {} and hashed == []  # a restart only asks for the objects' stamps
    assert again[IDS[0]].clip_id == IDS[0]
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    tar = f"{BUCKET}/cached/shards/r000-00000.tar"
    data = bytearray(fs.cat_file(tar))
    data[700] ^= 0xFF  # same size, new content: a new ETag, so the cached entry misses
    fs.pipe_file(tar, bytes(data))
    bad = StoreReader(url).verify_all_shards()
    assert hashed == [f"{BUCKET}/cached/shards/r000-00000.tar"]
    assert list(bad) == ["r000-00000"] and "sha256" in bad["r000-00000"]


def test_objects_without_a_strong_etag_are_never_cached(tmp_path, monkeypatch):
    from geovr.shared.stores.hashcache import HashCache

    monkeypatch.setenv("GEOVR_CACHE", str(tmp_path / "cache"))

    class FakeFs:
        protocol, storage_options = "https", {}

        def __init__(self, info):
            self._info = info

        def info(self, path):
            return self._info

    for info in ({"size": 3}, {"size": 3, "ETag": 'W/"abc"'}):  # no validator; a weak one
        cache = HashCache.for_store("host/store", FakeFs(info), is_local=False)
        stamp = cache.stamp(cache.fs, "host/store/x.tar")
        cache.add("host/store/x.tar", stamp, "f" * 64)
        assert not cache.hit("host/store/x.tar", stamp, "f" * 64) and cache.entries == {}
    strong = HashCache.for_store("host/store", FakeFs({"size": 3, "ETag": '"abc"'}), is_local=False)
    stamp = strong.stamp(strong.fs, "host/store/x.tar")
    strong.add("host/store/x.tar", stamp, "f" * 64)
    assert strong.hit("host/store/x.tar", stamp, "f" * 64)
    assert not strong.hit("host/store/x.tar", [3, '"abd"', "", ""], "f" * 64)  # another ETag misses
