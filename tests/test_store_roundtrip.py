"""Round trips through both store formats: write -> finalize -> read gives identical arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geovr.shared.features import decode_features, encode_features
from geovr.shared.schema import ClipTargets
from geovr.shared.stores import ClipFailure, StoreReader, StoreWriter, finalize_store
from geovr.shared.stores.testing import make_clip, make_header


def assert_same(a: ClipTargets, b: ClipTargets) -> None:
    assert a.clip_id == b.clip_id
    assert a.frames == b.frames
    for name in ("frame_indices", "timestamps", "pose_enc", "extrinsics", "intrinsics", "depth", "depth_conf"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert sorted(a.features) == sorted(b.features)
    for layer in a.features:
        assert a.features[layer].dtype == b.features[layer].dtype
        np.testing.assert_array_equal(a.features[layer], b.features[layer])
    assert sorted(a.feature_scales) == sorted(b.feature_scales)
    for layer in a.feature_scales:
        np.testing.assert_array_equal(a.feature_scales[layer], b.feature_scales[layer])
    assert a.meta_dict() == b.meta_dict()


clip_shapes = st.tuples(
    st.integers(1, 4),  # S of first clip
    st.integers(1, 4),  # S of second clip
    st.sampled_from([(14, 14), (28, 42), (16, 8)]),
    st.sampled_from([(1, 1), (2, 3)]),
    st.integers(1, 5),  # channels
    st.sampled_from(["bf16", "fp16", "fp32", "int8"]),
    st.sampled_from(["fp16", "fp32"]),
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(clip_shapes)
def test_both_formats_round_trip_identically(tmp_path_factory, params) -> None:
    s1, s2, hw, grid, ch, fdt, ddt = params
    readers = {}
    for fmt in ("zarr", "wds"):
        root = tmp_path_factory.mktemp(fmt)
        header = make_header(fmt, fdt, depth_dtype=ddt)
        clips = [
            make_clip("scene_a/00000", header, s=s1, hw=hw, grid=grid, channels=ch, seed=1),
            make_clip("scene_b/00001", header, s=s2, hw=hw, grid=grid, channels=ch, seed=2),
        ]
        w = StoreWriter(root, header, shard_prefix="r000")
        w.write_shard(clips[:1])
        w.write_shard(clips[1:], [ClipFailure("scene_c/00002", "c.mp4", "decode error")])
        man = finalize_store(root)
        assert man.num_clips == 2 and man.num_failed == 1 and len(man.shards) == 2
        r = StoreReader(root, verify=True)
        assert r.clip_ids == ["scene_a/00000", "scene_b/00001"]
        assert r.failures == {"scene_c/00002": "decode error"}
        for c in clips:
            assert_same(c, r[c.clip_id])
        readers[fmt] = r
    for cid in readers["zarr"].clip_ids:
        assert_same(readers["zarr"][cid], readers["wds"][cid])


def test_iteration_and_missing_clip(tmp_path) -> None:
    header = make_header("zarr", "fp16")
    clips = [make_clip(f"v{i}/00000", header, s=2, seed=i) for i in range(3)]
    w = StoreWriter(tmp_path, header, shard_prefix="r001")
    w.write_shard(clips, [ClipFailure("bad/00000", "bad.mp4", "corrupt video")])
    finalize_store(tmp_path)
    r = StoreReader(tmp_path)
    assert len(r) == 3 and "v1/00000" in r
    for a, b in zip(clips, r, strict=True):
        assert_same(a, b)
    with pytest.raises(KeyError, match="corrupt video"):
        r["bad/00000"]


@pytest.mark.parametrize("dtype", ["bf16", "fp16", "fp32", "int8"])
def test_feature_codecs(dtype: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32) * np.array([1, 10, 0.01, 100, 0], np.float32)
    enc, scales = encode_features(x, dtype)
    y = decode_features(enc, dtype, scales)
    assert y.dtype == np.float32 and y.shape == x.shape
    tol = {"fp32": 0, "fp16": 1e-3, "bf16": 8e-3, "int8": 1 / 127}[dtype]
    amax = np.abs(x).max(axis=(0, 1, 2))
    err = np.abs(y - x).max(axis=(0, 1, 2))
    assert np.all(err <= tol * np.maximum(amax, 1e-30) + 1e-7)
    assert (scales is not None) == (dtype == "int8")


def test_bf16_bits_match_torch() -> None:
    torch = pytest.importorskip("torch")
    x = np.array([1.0, -2.5, 3.14159, 1e-20, 65504.0, np.inf, -0.0, 1.00390625, 1.01171875], np.float32)
    bits, _ = encode_features(x, "bf16")
    ref = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(bits, ref)
    back = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(back, decode_features(bits, "bf16"))


def test_writer_refuses_bad_input(tmp_path) -> None:
    header = make_header("zarr", "fp16")
    w = StoreWriter(tmp_path, header)
    a = make_clip("a/00000", header, hw=(28, 42))
    b = make_clip("b/00000", header, hw=(14, 14))
    with pytest.raises(ValueError, match="b/00000.*per-frame shapes differ"):
        w.write_shard([a, b])
    bad = make_clip("c/00000", header)
    bad.features[4] = bad.features[4].astype(np.float32)
    with pytest.raises(ValueError, match="c/00000.*dtype float32"):
        w.write_shard([bad])
    with pytest.raises(ValueError, match="repeated"):
        w.write_shard([a, a])
    # a shard of differently-sized clips is fine in WebDataset
    wh = make_header("wds", "fp16")
    StoreWriter(tmp_path / "w", wh).write_shard([make_clip("a/00000", wh, hw=(28, 42)), make_clip("b/0", wh, hw=(14, 14))])


def test_header_mismatch_names_fields(tmp_path) -> None:
    StoreWriter(tmp_path, make_header("zarr", "fp16"))
    with pytest.raises(Exception, match=r"features\.dtype: 'fp16' != 'bf16'"):
        StoreWriter(tmp_path, make_header("zarr", "bf16"))
    # provenance differences are not a mismatch
    h = make_header("zarr", "fp16")
    StoreWriter(tmp_path, type(h)(**{**h.__dict__, "created_by": {"geovr": "other"}}))


def test_zarr_shard_files_are_zarrs_own_and_hashed_as_written(tmp_path) -> None:
    """The shard is encoded in a MemoryStore and written by us: the same files, byte for byte, as zarr's
    LocalStore writes (plus the clip index), and the returned sizes/sha256 are those of the files on disk."""
    import hashlib
    import os

    import zarr
    from zarr.core.sync import sync

    from geovr.shared.stores.clipcodec import clip_to_parts
    from geovr.shared.stores.zarr_shard import INDEX_FILE, _group_arrays, _write_group, write_zarr_shard

    header = make_header("zarr", dtype="int8")
    clips = [make_clip(f"c{i}", header, seed=i) for i in range(3)]
    parts = [clip_to_parts(c, header) for c in clips]
    args = ([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts], [c.frames for c in clips])
    written = write_zarr_shard(str(tmp_path / "ours"), *args)
    sync(_write_group(zarr.storage.LocalStore(str(tmp_path / "zarrs")), *_group_arrays(*args)))  # zarr's own files

    def tree(root):
        return {os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), "rb").read()
                for d, _, fs in os.walk(root) for f in fs}

    ours, zarrs = tree(tmp_path / "ours"), tree(tmp_path / "zarrs")
    assert INDEX_FILE in ours and len(zarrs) > 10
    assert {k: v for k, v in ours.items() if k != INDEX_FILE} == zarrs
    assert [k for k, _, _ in written] == sorted(ours)
    assert all(size == len(ours[k]) and digest == hashlib.sha256(ours[k]).hexdigest() for k, size, digest in written)
