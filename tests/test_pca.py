"""PCA-reduced feature targets (``compact-pca`` preset): codec, store round trip, decoding."""

import numpy as np
import pytest

from geovr.extract.runner import ExtractConfig, run_extract
from geovr.shared.features import pca_decode, pca_encode
from geovr.shared.sampling import SamplingConfig
from geovr.shared.stores import StoreReader, finalize_store, verify_store


def _cos(a, b):
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def test_pca_keeps_a_low_rank_signal_and_orders_directions_by_variance():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(2, 5, 6, 3)) * [5.0, 2.0, 0.5]) @ np.linalg.qr(rng.normal(size=(32, 32)))[0][:3] + 1.5
    codes, mean, basis = pca_encode(x.astype(np.float32), 3)
    assert codes.shape == (2, 5, 6, 3) and mean.shape == (32,) and basis.shape == (3, 32) and basis.dtype == np.float16
    np.testing.assert_allclose(basis.astype(np.float32) @ basis.astype(np.float32).T, np.eye(3), atol=2e-3)
    assert np.all(np.diff(codes.reshape(-1, 3).var(0)) < 0)  # explained variance decreasing
    np.testing.assert_allclose(pca_decode(codes, mean, basis), x, atol=1e-2)  # rank 3: reconstructed up to fp16 basis
    few, _, b = pca_encode(x[:1, :1, :2].astype(np.float32), 3)  # 2 tokens < k: extra directions are zero-variance
    assert few.shape == (1, 1, 2, 3) and np.allclose(few[..., 2], 0, atol=1e-4)
    with pytest.raises(ValueError, match="k <= C"):
        pca_encode(x, 33)
    with pytest.raises(ValueError, match="do not fit"):
        pca_decode(codes, mean, basis[:2])


@pytest.fixture(scope="module")
def stores(synth_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("pca")
    out = {}
    for name, kw in [("paper_zarr", dict(preset="paper", format="zarr")),
                     ("pca_zarr", dict(preset="compact-pca", pca_dims=8, format="zarr")),
                     ("pca_wds", dict(preset="compact-pca", pca_dims=8, format="wds"))]:
        run_extract(ExtractConfig(corpus=str(synth_corpus / "corpus.parquet"), out=str(root / name), teacher="oracle",
                                  sampling=SamplingConfig(num_frames=4, longest_edge=112), workers=0, progress=False,
                                  **kw))
        finalize_store(root / name)
        out[name] = root / name
    return out


def test_pca_store_round_trips_in_both_formats_and_decodes_close_to_the_full_features(stores):
    full = StoreReader(stores["paper_zarr"])
    z, w = StoreReader(stores["pca_zarr"], verify=True), StoreReader(stores["pca_wds"], verify=True)
    assert z.header.features.pca_dims == 8 and z.header.features.dtype == "int8" and z.header.depth_downsample == 2
    for cid in full.clip_ids:
        cz, cw = z[cid], w[cid]
        assert all(a.shape[-1] == 8 and a.dtype == np.int8 for a in cz.features.values())
        for layer in cz.features:
            np.testing.assert_array_equal(cz.features[layer], cw.features[layer])
            np.testing.assert_array_equal(cz.feature_pca_basis[layer], cw.feature_pca_basis[layer])
        ref, dec = full[cid].decoded_features("bf16"), cz.decoded_features("int8")
        for layer, x in ref.items():
            assert dec[layer].shape == x.shape == (4, 4, 4, 64)  # 128x128 student frames -> 112x112 teacher input
            assert _cos(dec[layer], x).mean() > 0.99  # oracle features: 64 tokens x 64 channels, top 8 kept
    assert verify_store(stores["pca_wds"]) == []


def test_training_data_decodes_pca_targets_to_the_teacher_width(stores, tmp_path):
    from geovr.train.config import DataConfig
    from geovr.train.data import TrainData

    data = TrainData(DataConfig(stores=[str(stores["pca_zarr"])], mix_clips_without_qa=True), seed=0)
    assert data.teacher_dim == 64
    feats = data.sample(0).targets["features"]
    assert all(f.shape == (4, 4, 4, 64) and f.dtype == np.float32 for f in feats.values())


def test_pca_features_decode_with_plain_zarr_as_documented(stores):
    import pyarrow.parquet as pq
    import zarr

    store = str(stores["pca_zarr"])
    row = next(r for r in pq.read_table(f"{store}/clips.parquet").to_pylist() if r["clip_id"] == "synth_0001")
    g = zarr.open_group(f"{store}/shards/{row['shard']}", mode="r")
    off = g["clip_offsets"][:]
    a, b = int(off[row["row"]]), int(off[row["row"] + 1])
    codes = g["feat_l04"][a:b].astype(np.float32) * g["feat_l04_scale"][row["row"]]  # int8 -> float
    x = codes @ g["feat_l04_pca_basis"][row["row"]].astype(np.float32) + g["feat_l04_pca_mean"][row["row"]]
    expected = StoreReader(store)["synth_0001"].decoded_features("int8")[4]
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)
