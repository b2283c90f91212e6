"""geovr's VGGT: shapes, checkpoint-compatible names, strict reload, memory-saving path."""

import numpy as np
import pytest
import torch

from geovr.extract.teachers.vggt import VGGT, VGGTConfig, build, load_vggt


def test_tiny_forward_shapes_and_features_on_the_patch_grid():
    teacher = build(config="tiny", device="cpu", random_init=True)
    out = teacher(torch.rand(3, 3, 56, 70), (0, 3))
    assert out.pose_enc.shape == (3, 9) and out.extrinsics.shape == (3, 3, 4) and out.intrinsics.shape == (3, 3, 3)
    assert out.depth.shape == (3, 56, 70) and (out.depth > 0).all() and (out.depth_conf >= 1).all()
    assert {k: tuple(v.shape) for k, v in out.features.items()} == {0: (3, 4, 5, 64), 3: (3, 4, 5, 64)}
    assert all(torch.isfinite(t).all() for t in (out.pose_enc, out.extrinsics, out.intrinsics, out.depth))
    assert teacher.info.name == "vggt" and "random" in teacher.info.version


def test_1b_config_matches_the_official_checkpoint_layout():
    with torch.device("meta"):
        sd = VGGT(VGGTConfig.vggt_1b()).state_dict()
    millions = {p: sum(v.numel() for k, v in sd.items() if k.startswith(p)) / 1e6 for p in
                ("aggregator.patch_embed.", "aggregator.frame_blocks.", "aggregator.global_blocks.", "camera_head.",
                 "depth_head.")}
    # per-prefix parameter counts of the official VGGT-1B (reference/models.md 1.7)
    for prefix, official in {"aggregator.patch_embed.": 304.4, "aggregator.frame_blocks.": 302.4,
                             "aggregator.global_blocks.": 302.4, "camera_head.": 216.0, "depth_head.": 32.6}.items():
        assert millions[prefix] == pytest.approx(official, abs=0.25), prefix
    shapes = {"aggregator.camera_token": (1, 2, 1, 1024), "aggregator.register_token": (1, 2, 4, 1024),
              "aggregator.patch_embed.pos_embed": (1, 1370, 1024), "aggregator.patch_embed.cls_token": (1, 1, 1024),
              "aggregator.patch_embed.register_tokens": (1, 4, 1024), "aggregator.patch_embed.mask_token": (1, 1024),
              "aggregator.patch_embed.patch_embed.proj.weight": (1024, 3, 14, 14),
              "camera_head.empty_pose_tokens": (1, 1, 9)}
    for k, shape in shapes.items():
        assert tuple(sd[k].shape) == shape, k
    for k in ("aggregator.frame_blocks.23.attn.q_norm.weight", "aggregator.global_blocks.0.ls1.gamma",
              "camera_head.poseLN_modulation.1.weight", "camera_head.trunk.3.mlp.fc2.bias",
              "camera_head.pose_branch.fc1.weight", "depth_head.resize_layers.3.weight",
              "depth_head.scratch.refinenet1.resConfUnit1.conv1.weight", "depth_head.scratch.output_conv2.2.weight"):
        assert k in sd, k
    assert "depth_head.resize_layers.2.weight" not in sd  # Identity, as the official head
    assert "depth_head.scratch.refinenet4.resConfUnit1.conv1.weight" not in sd


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_saved_checkpoint_reloads_strictly_with_identical_outputs(tmp_path, suffix):
    cfg = VGGTConfig.tiny()
    torch.manual_seed(1)
    model = VGGT(cfg).eval()
    sd = model.state_dict()
    sd_extra = {**sd, "point_head.norm.weight": torch.ones(64), "track_head.tracker.x": torch.zeros(2)}
    path = tmp_path / f"model{suffix}"
    if suffix == ".pt":
        torch.save(sd_extra, path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd_extra.items()}, path)
    loaded, sha = load_vggt(path, cfg)
    assert len(sha) == 64
    x = torch.rand(1, 2, 3, 42, 56)
    with torch.no_grad():
        a, b = model(x, (1,)), loaded.eval()(x, (1,))
    np.testing.assert_array_equal(a["depth"].numpy(), b["depth"].numpy())
    np.testing.assert_array_equal(a["features"][1].numpy(), b["features"][1].numpy())


def test_bad_checkpoints_are_refused_naming_the_file(tmp_path):
    cfg = VGGTConfig.tiny()
    sd = VGGT(cfg).state_dict()
    bad = dict(sd)
    bad["aggregator.camera_token"] = torch.zeros(1, 2, 1, 7)
    del bad["camera_head.embed_pose.weight"]
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"bad\.pt.*missing \['camera_head\.embed_pose\.weight'\].*wrong shapes"):
        load_vggt(tmp_path / "bad.pt", cfg)
    with pytest.raises(FileNotFoundError):
        load_vggt(tmp_path / "nope.pt", cfg)


def test_frame_chunking_does_not_change_the_result():
    torch.manual_seed(0)
    model = VGGT(VGGTConfig.tiny()).eval()
    x = torch.rand(1, 5, 3, 42, 56)
    with torch.no_grad():
        a, b = model(x, frames_chunk=8), model(x, frames_chunk=2)
    np.testing.assert_allclose(a["depth"].numpy(), b["depth"].numpy(), rtol=1e-5)


def test_no_weights_refuses_unless_random_init_is_explicit():
    with pytest.raises(ValueError, match="random_init"):
        build(config="tiny", device="cpu")
    teacher = build(config="tiny", device="cpu", random_init=True)
    assert teacher.info.random_init and teacher.info.num_layers == 4


@pytest.mark.parametrize("dtype,pca", [("bf16", None), ("fp16", None), ("fp32", None), ("int8", None), ("bf16", 8)])
def test_device_side_reduction_stores_what_the_host_path_stored(dtype, pca):
    """Channel half + 2x2 pool + cast on the teacher's device give the same stored arrays as the numpy path."""
    from dataclasses import replace

    from geovr.extract.targets import build_targets
    from geovr.shared.features import FeatureSpec
    from geovr.shared.manifest import StoreHeader
    from geovr.shared.schema import ResizeSpec, VideoRef

    teacher = build(config="tiny", device="cpu", random_init=True)
    spec = FeatureSpec(layers=(0, 3), channels="frame", pool=2, dtype=dtype, pca_dims=pca)
    header = StoreHeader(format="zarr", teacher=teacher.info, features=spec)
    x = torch.rand(3, 3, 70, 98)  # 5x7 patch grid: the odd row/column is dropped before pooling
    full, reduced = teacher(x, spec.layers), teacher(x, spec.layers, spec=spec)
    assert reduced.features_spec == spec and full.features_spec is None
    assert reduced.features[0].shape == (3, 2, 3, 32)  # tiny: embed_dim 32 = the frame half of 64
    args = dict(clip_id="c", video=VideoRef(uri="v.mp4", sha256="0" * 64, fps=2.0, num_frames=3),
                frame_indices=np.arange(3), timestamps=np.arange(3.0), frames=np.zeros((3, 70, 98, 3), np.uint8),
                resize=ResizeSpec(src_hw=(70, 98), crop_box=(0, 0, 70, 98), out_hw=(70, 98)), header=header,
                metric_scale=1.0, scale_source="ground_truth")
    a, b = build_targets(out=full, **args), build_targets(out=reduced, **args)
    for layer in spec.layers:
        assert a.features[layer].dtype == b.features[layer].dtype
        np.testing.assert_array_equal(a.features[layer], b.features[layer])
    with pytest.raises(ValueError, match="reduced"):
        build_targets(out=reduced, **{**args, "header": replace(header, features=replace(spec, pool=1))})
