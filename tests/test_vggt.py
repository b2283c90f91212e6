"""geovr's VGGT: shapes, checkpoint-compatible names, strict reload, memory-saving path."""

import numpy as np
import pytest
import torch

from geovr.extract.teachers.vggt import VGGT, VGGTConfig, build, load_vggt


def test_tiny_forward_shapes_and_features_on_the_patch_grid():
    teacher = build(config="tiny", device="cpu")
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
