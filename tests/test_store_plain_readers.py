"""The manifests/README.md recipe: a lab without geovr reads a clip with plain zarr / webdataset."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
import zarr
from PIL import Image

from geovr.shared.stores import StoreReader, StoreWriter, finalize_store
from geovr.shared.stores.testing import make_clip, make_header


def make_store(root, fmt: str, dtype: str):
    header = make_header(fmt, dtype)
    w = StoreWriter(root, header)
    w.write_shard([make_clip("scene0000/00000", header, s=2, seed=3), make_clip("scene0001/00000", header, s=3, seed=4)])
    finalize_store(root)
    return StoreReader(root)["scene0001/00000"]


@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_plain_zarr_recipe(tmp_path, dtype) -> None:
    expected = make_store(tmp_path, "zarr", dtype)
    store = str(tmp_path)
    # --- recipe (as in manifests/README.md) ---
    with open(f"{store}/index.json") as f:
        index = json.load(f)
    rows = pq.read_table(f"{store}/clips.parquet").to_pylist()
    row = next(r for r in rows if r["clip_id"] == "scene0001/00000" and r["status"] == "ok")
    g = zarr.open_group(f"{store}/shards/{row['shard']}", mode="r")
    off = g["clip_offsets"][:]
    a, b = int(off[row["row"]]), int(off[row["row"] + 1])
    depth = g["depth"][a:b]
    extrinsics = g["extrinsics"][a:b]
    feat = g["feat_l04"][a:b]
    meta = g.attrs["clips"][row["row"]]
    fo = g["frame_offsets"][a:b + 1]
    blob = g["frames"][int(fo[0]):int(fo[-1])].tobytes()
    jpegs = [blob[int(x - fo[0]):int(y - fo[0])] for x, y in zip(fo[:-1], fo[1:], strict=True)]
    # --- checks ---
    assert index["header"]["format"] == "zarr"
    np.testing.assert_array_equal(depth, expected.depth)
    np.testing.assert_array_equal(extrinsics, expected.extrinsics)
    np.testing.assert_array_equal(feat, expected.features[4])
    assert meta["clip_id"] == "scene0001/00000" and jpegs == expected.frames
    if dtype == "bf16":
        torch = pytest.importorskip("torch")
        as_torch = torch.from_numpy(feat.view(np.int16)).view(torch.bfloat16).float().numpy()
        np.testing.assert_array_equal(as_torch, (feat.astype(np.uint32) << 16).view(np.float32))
    else:
        np.testing.assert_array_equal(g["feat_l04_scale"][row["row"]], expected.feature_scales[4])


def test_plain_webdataset_recipe(tmp_path) -> None:
    expected = make_store(tmp_path, "wds", "fp16")
    store = str(tmp_path)
    rows = pq.read_table(f"{store}/clips.parquet").to_pylist()
    row = next(r for r in rows if r["clip_id"] == "scene0001/00000" and r["status"] == "ok")
    # --- recipe ---
    key = row["clip_id"].replace("/", "__")
    ds = wds.WebDataset(f"{store}/shards/{row['shard']}.tar", shardshuffle=False).decode("rgb8")
    sample = next(s for s in ds if s["__key__"] == key)
    depth, meta = sample["depth.npy"], sample["meta.json"]
    first_frame = sample["f000.jpg"]
    # --- checks ---
    np.testing.assert_array_equal(depth, expected.depth)
    np.testing.assert_array_equal(sample["feat_l11.npy"], expected.features[11])
    assert meta["clip_id"] == "scene0001/00000"
    ref = np.asarray(Image.open(io.BytesIO(expected.frames[0])).convert("RGB"))
    np.testing.assert_array_equal(first_frame, ref)
    assert sorted(k for k in sample if k.startswith("f0")) == ["f000.jpg", "f001.jpg", "f002.jpg"]
    keys = [s["__key__"] for s in wds.WebDataset(f"{store}/shards/{row['shard']}.tar", shardshuffle=False)]
    assert keys == ["scene0000__00000", "scene0001__00000"]
