"""The sampling contract: student frames at the processor's own size, teacher input by mode, source ranges,
and stage two's metadata-only check."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from geovr.shared.geometry import crop_resize_intrinsics
from geovr.shared.sampling import (
    SamplingConfig,
    SamplingMismatch,
    check_clip_matches,
    check_student_patch,
    plan_sampling,
    student_size,
    student_tokens_per_frame,
    teacher_resize,
)

PAPER = SamplingConfig()


# ------------------------------------------------------------------ pure functions


def test_paper_budget_gives_300_tokens_per_frame_on_640x480():
    # scripts/train.sh: video_max_pixels = 32 * 300 * 32 * 32; 640x480 = 20 x 15 merged 32-px tokens exactly
    plan = plan_sampling(600, 30.0, (480, 640), PAPER)
    assert len(plan.indices) == 32 and plan.resize.out_hw == (480, 640)
    assert student_tokens_per_frame(plan.resize.out_hw, PAPER) == 300
    assert student_size((1440, 1920), 32, PAPER) == (480, 640)  # beta = 3
    assert student_size((968, 1296), 32, PAPER) == (448, 640)  # 280 tokens
    assert student_size((1440, 1920), 16, PAPER) == (672, 896)  # the budget is per video: fewer frames, more pixels
    # the teacher gets exactly those frames, longest edge 504, 378 / 28 = 13.5 rounds half-to-even to 14
    assert plan.teacher.out_hw == (392, 504) and plan.teacher.crop_box == (0, 0, 480, 640)


def test_student_size_equals_the_official_processors_smart_resize():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as qwen2_smart_resize
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize as qwen3_smart_resize

    cfg = SamplingConfig()
    q25 = SamplingConfig(student_patch=28, student_budget="frame", student_tokens=300, student_min_tokens=4)
    for hw in [(480, 640), (1440, 1920), (968, 1296), (720, 1280), (1080, 1920), (360, 480), (112, 140),
               (1920, 1080), (250, 251), (40, 2000)]:
        for frames in (4, 8, 16, 32):
            want = qwen3_smart_resize(frames, hw[0], hw[1], temporal_factor=2, factor=32,
                                      min_pixels=cfg.video_min_pixels, max_pixels=cfg.video_max_pixels)
            assert student_size(hw, frames, cfg) == want, (hw, frames)
            assert student_size(hw, frames, q25) == qwen2_smart_resize(
                hw[0], hw[1], factor=28, min_pixels=4 * 28 * 28, max_pixels=300 * 28 * 28), (hw, frames)


def test_teacher_modes_sizes_and_boxes():
    land, port = (480, 640), (640, 480)
    assert teacher_resize(land, SamplingConfig(teacher_mode="stretch")).out_hw == (392, 504)
    cc = teacher_resize(land, SamplingConfig(teacher_mode="center_crop"))
    assert cc.out_hw == (392, 504) and cc.crop_box == (0, 11, 480, 617)  # same size, aspect kept by a crop
    vc = teacher_resize(land, SamplingConfig(teacher_mode="vggt_crop"))
    assert vc.out_hw == (392, 518) and vc.crop_box == (0, 0, 480, 640)  # 480 * 518 / 640 = 388.5 -> 392
    assert teacher_resize(port, SamplingConfig(teacher_mode="stretch")).out_hw == (504, 392)
    vp = teacher_resize(port, SamplingConfig(teacher_mode="vggt_crop"))
    # width 518, height round(640 * 518 / 480 / 14) * 14 = 686, rows 84..602 of the resized frame kept
    assert vp.out_hw == (518, 518)
    assert vp.crop_box == pytest.approx((84 * 640 / 686, 0, 518 * 640 / 686, 480))


def test_vggt_crop_pixels_equal_resize_then_crop():
    from PIL import Image

    from geovr.shared.video import crop_resize

    yy, xx = np.meshgrid(np.arange(160), np.arange(96), indexing="ij")
    smooth = np.stack([128 + 100 * np.sin(yy / 9.0), 128 + 100 * np.cos(xx / 7.0), (yy + xx) % 256], -1)
    frames = smooth.astype(np.uint8)[None]
    spec = teacher_resize((160, 96), SamplingConfig(teacher_mode="vggt_crop", longest_edge=56, multiple=14))
    nh = 98  # round(160 * 56 / 96 / 14) * 14
    full = np.asarray(Image.fromarray(frames[0]).resize((56, nh), Image.BICUBIC)).astype(int)
    ref = full[(nh - 56) // 2:(nh - 56) // 2 + 56]  # VGGT demo: resize, then centre rows
    got = crop_resize(frames, spec)[0].astype(int)
    assert got.shape == ref.shape == (56, 56, 3)
    assert np.abs(got - ref).max() <= 1  # same sampling positions; PIL rounds its fixed-point kernels per call
    stretch = crop_resize(frames, teacher_resize((160, 96), SamplingConfig(longest_edge=56, multiple=14)))
    assert stretch.shape[1:3] == (56, 28) and np.abs(stretch[0, :, :, 0].astype(int) - 128).max() > 50


# ------------------------------------------------------------------ the student processor gets the stored size


def test_tiny_qwen3vl_processor_takes_stored_frames_without_a_second_resize(tmp_path_factory):
    from transformers import AutoProcessor

    from geovr.train.student.tiny import build_tiny_student_dir

    root = os.environ.get("GEOVR_TEST_CACHE") or str(tmp_path_factory.mktemp("tiny"))
    proc = AutoProcessor.from_pretrained(build_tiny_student_dir(f"{root}/tiny-qwen3vl", "qwen3_vl"))
    vp = proc.video_processor
    assert vp.patch_size * vp.merge_size == PAPER.student_patch
    h, w = student_size((480, 640), 4, PAPER)
    video = np.repeat(np.random.default_rng(0).integers(0, 256, (4, h, w, 3), dtype=np.uint8), 2, axis=0)
    out = vp(videos=[video], do_resize=False, do_sample_frames=False, return_tensors="pt")
    t, gh, gw = out["video_grid_thw"][0].tolist()
    assert (t, gh * vp.patch_size, gw * vp.patch_size) == (4, h, w)  # duplicated: one temporal group per frame
    assert gh * gw // vp.merge_size**2 == 300  # the paper's tokens per frame reach the LLM
    resized = vp(videos=[video], do_sample_frames=False, return_tensors="pt")["video_grid_thw"][0].tolist()
    assert resized != [t, gh, gw]  # the tiny processor's own budget would have resized them again
    with pytest.raises(SamplingMismatch, match="32-px merged patch.*merges to 28"):
        check_student_patch(PAPER.to_dict(), 28)


# ------------------------------------------------------------------ intrinsics and depth under each mode


@pytest.fixture(scope="module")
def portrait_corpus(tmp_path_factory):
    from geovr.synth.config import SynthConfig
    from geovr.synth.corpus import render_corpus

    out = tmp_path_factory.mktemp("portrait")
    render_corpus(out, SynthConfig(clips=1, seed=1, frames=8, height=160, width=96), progress=False)
    return out


@pytest.mark.parametrize("mode", ["stretch", "center_crop", "vggt_crop"])
def test_oracle_intrinsics_and_depth_reproject_to_the_source_under_each_mode(portrait_corpus, tmp_path, mode):
    from geovr.extract.runner import ExtractConfig, run_extract
    from geovr.shared.stores import StoreReader, finalize_store

    cfg = SamplingConfig(num_frames=4, teacher_mode=mode, longest_edge=56, multiple=14 if mode == "vggt_crop" else 28)
    res = run_extract(ExtractConfig(corpus=str(portrait_corpus / "corpus.parquet"), out=str(tmp_path / "s"),
                                    teacher="oracle", sampling=cfg, workers=0, progress=False))
    assert res.stored == 1, res.failed
    finalize_store(tmp_path / "s")
    clip = next(iter(StoreReader(tmp_path / "s")))
    assert clip.resize.out_hw == student_size((160, 96), 4, cfg) == (192, 128)  # the budget's floor upsizes
    assert clip.teacher_mode == mode and clip.teacher_input == teacher_resize((192, 128), cfg)
    h, w = clip.teacher_input.out_hw
    gt = portrait_corpus / "gt" / clip.clip_id
    k_src = np.load(gt / "intrinsics.npy")[clip.frame_indices]
    d_src = np.load(gt / "depth.npy")[clip.frame_indices]
    top, left, ch, cw = (float(x) for x in clip.teacher_view.crop_box)
    v, u = np.meshgrid(np.arange(h) + 0.0, np.arange(w) + 0.0, indexing="ij")
    for i in range(clip.num_frames):
        d = clip.depth[i].astype(np.float64)
        ok = d > 0
        # teacher pixel + stored depth -> camera point (stored K) -> source pixel (ground-truth K)
        x = np.linalg.inv(clip.intrinsics[i].astype(np.float64)) @ np.stack([u[ok] * d[ok], v[ok] * d[ok], d[ok]])
        p = k_src[i] @ x
        us, vs = p[0] / p[2], p[1] / p[2]
        # ... is where the teacher-input pixel centre came from (pixel-edge map of the chained resize)
        np.testing.assert_allclose(vs, top + (v[ok] + 0.5) * ch / h - 0.5, atol=2e-2)
        np.testing.assert_allclose(us, left + (u[ok] + 0.5) * cw / w - 0.5, atol=2e-2)
        # and the ground-truth depth there is the stored depth (either side of a pixel edge the map lands on)
        match = np.zeros(vs.shape, bool)
        for e in (-1e-3, 1e-3):
            gt_d = d_src[i][np.floor(vs + 0.5 + e).astype(int), np.floor(us + 0.5 + e).astype(int)]
            match |= np.abs(gt_d - d[ok]) <= 2e-3 * d[ok] + 1e-3
        assert match.mean() > 0.995
    # a wrong convention (intrinsics for the stored student frames) does not re-project
    wrong = crop_resize_intrinsics(k_src[0], clip.resize.crop_box, clip.resize.out_hw)
    assert not np.allclose(wrong, clip.intrinsics[0], rtol=1e-3)


# ------------------------------------------------------------------ sub-clip ranges and the metadata-only check


def _image_folder_corpus(root, n=320, hw=(64, 96)):
    from PIL import Image

    frames = root / "clip"
    frames.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (hw[0], hw[1], 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(np.roll(base, i, axis=1)).save(frames / f"{i:04d}.png", compress_level=0)
    gt = root / "gt"
    gt.mkdir()
    np.save(gt / "extrinsics.npy", np.broadcast_to(np.eye(3, 4), (n, 3, 4)).copy())
    k = np.array([[60.0, 0, hw[1] / 2 - 0.5], [0, 60.0, hw[0] / 2 - 0.5], [0, 0, 1]])
    np.save(gt / "intrinsics.npy", np.broadcast_to(k, (n, 3, 3)).copy())
    np.save(gt / "depth.npy", np.full((n, *hw), 2.0, np.float32))
    (root / "corpus.jsonl").write_text(json.dumps({"clip_id": "sub", "uri": "clip", "start_frame": 300,
                                                   "end_frame": 316, "gt_dir": "gt"}) + "\n")
    return root / "corpus.jsonl"


SUB = SamplingConfig(num_frames=4, longest_edge=56)


@pytest.fixture(scope="module", params=["zarr", "wds"])
def subclip_store(request, tmp_path_factory):
    from geovr.extract.runner import ExtractConfig, run_extract
    from geovr.shared.stores import finalize_store

    root = tmp_path_factory.mktemp(f"sub_{request.param}")
    corpus = _image_folder_corpus(root / "corpus")
    run_extract(ExtractConfig(corpus=str(corpus), out=str(root / "store"), teacher="oracle", format=request.param,
                              sampling=SUB, workers=0, progress=False))
    finalize_store(root / "store")
    return root / "store"


def _check(stores, sampling):
    from geovr.shared.stores import StoreReader
    from geovr.train.config import DataConfig
    from geovr.train.data import TrainData

    data = TrainData.__new__(TrainData)
    data.readers = [StoreReader(s) for s in stores]
    data._check_sampling(DataConfig(stores=[str(s) for s in stores], sampling=sampling))


def test_subclip_with_start_frame_300_passes_and_is_checked_from_metadata_only(subclip_store, monkeypatch):
    from geovr.shared.stores import StoreReader, clipcodec, wds_shard, zarr_shard

    meta = next(StoreReader(subclip_store).iter_meta())
    assert (meta["start_frame"], meta["end_frame"]) == (300, 316)
    assert meta["frame_indices"] == [302, 306, 310, 314]
    assert meta["resize"]["out_hw"] == [128, 160]  # 64x96 is below the budget's floor: the processor upsizes
    assert meta["teacher_input"]["mode"] == "stretch" and meta["teacher_input"]["out_hw"] == [56, 56]

    def no_arrays(*a, **k):
        raise AssertionError("the sampling check read arrays")

    monkeypatch.setattr(zarr_shard.ZarrShardReader, "read", no_arrays)
    monkeypatch.setattr(wds_shard.WdsShardReader, "read_key", no_arrays)
    monkeypatch.setattr(clipcodec, "clip_from_parts", no_arrays)
    _check([subclip_store], SUB.to_dict())  # passes: the check re-plans [300, 316), not [0, 320)
    check_clip_matches(meta, SUB)
    with pytest.raises(SamplingMismatch, match="differ from this run's sampling"):
        check_clip_matches(meta, SUB, start=0, end=None)  # the old behaviour: the whole source
    with pytest.raises(SamplingMismatch, match="stored student frames are 128x160 but this run's budget"):
        _check([subclip_store], {**SUB.to_dict(), "student_min_tokens": 4})
    with pytest.raises(SamplingMismatch, match=r"teacher input \(stretch 56x56\) differs.*center_crop"):
        _check([subclip_store], {**SUB.to_dict(), "teacher_mode": "center_crop"})
    with pytest.raises(SamplingMismatch, match="merged patch"):
        _check([subclip_store], {**SUB.to_dict(), "student_patch": 28})


def test_metadata_check_survives_unreadable_arrays(subclip_store, tmp_path):
    import shutil

    from geovr.shared.stores import StoreReader

    copy = tmp_path / "store"
    shutil.copytree(subclip_store, copy)
    fmt = StoreReader(copy).header.format
    if fmt == "zarr":  # every array chunk replaced by garbage; the group attributes stay
        for p in (copy / "shards").rglob("c/*"):
            if p.is_file():
                p.write_bytes(b"\x00garbage")
    else:  # every .npy member's bytes overwritten in place; headers and .meta.json stay
        from geovr.shared.stores.wds_shard import WdsShardReader

        tar = next((copy / "shards").glob("*.tar"))
        import fsspec

        r = WdsShardReader(str(tar), fsspec.filesystem("file"))
        raw = bytearray(tar.read_bytes())
        for fields in r.index.values():
            for name, (off, size) in fields.items():
                if name.endswith(".npy"):
                    raw[off:off + size] = b"\xff" * size
        tar.write_bytes(bytes(raw))
    reader = StoreReader(copy)
    with pytest.raises(Exception):  # noqa: B017 - any decode error: the arrays really are unreadable
        reader[reader.clip_ids[0]]
    _check([copy], SUB.to_dict())


def test_schema_1_stores_are_refused_with_a_clear_message():
    from geovr.shared.manifest import Manifest, StoreHeader
    from geovr.shared.safety import IncompatibleStoreError
    from geovr.shared.schema import TeacherInfo

    header = {**StoreHeader(format="zarr", teacher=TeacherInfo("oracle", "t")).to_dict(), "schema_version": "1.0"}
    doc = {"format": "geovr-targets", "format_version": "1.0", "header": header, "targets": [], "shards": [],
           "num_clips": 0, "num_failed": 0}
    with pytest.raises(IncompatibleStoreError, match="schema_version: written with old major version 1.0.*re-extract"):
        Manifest.from_dict(doc)


def test_extract_flags_reach_the_contract_and_the_plan_sizes_student_frames(synth_corpus):
    from typer.testing import CliRunner

    from geovr.cli import app

    base = ["extract", "--corpus", str(synth_corpus / "corpus.parquet"), "--out", "unused", "--plan",
            "--teacher", "oracle", "--num-frames", "4"]
    res = CliRunner().invoke(app, base)
    assert res.exit_code == 0, res.output
    # 112x140 sources, 4 frames: below the paper budget's floor, the processor rounds up to 128x128
    assert "student frames 128x128 (16 tokens/frame), teacher input 504x504 (stretch)" in res.output
    res = CliRunner().invoke(app, [*base, "--teacher-mode", "vggt_crop", "--student-patch", "28",
                                   "--student-budget", "frame", "--student-tokens", "10"])
    assert res.exit_code == 0, res.output
    assert "student frames 56x84 (6 tokens/frame), teacher input 350x518 (vggt_crop)" in res.output
    bad = CliRunner().invoke(app, [*base, "--teacher-mode", "bogus"])
    assert bad.exit_code == 2 and "teacher_mode" in bad.output


def test_linspace_rule_picks_the_qwen3vl_processors_frames():
    from transformers import Qwen3VLVideoProcessor
    from transformers.video_utils import VideoMetadata

    vp = Qwen3VLVideoProcessor(min_frames=4, max_frames=32, fps=2)
    cfg = SamplingConfig(index_rule="linspace", even=False)
    for total, fps in [(300, 30.0), (901, 29.97), (47, 24.0), (5000, 30.0), (64, 2.0)]:
        want = vp.sample_frames(VideoMetadata(total_num_frames=total, fps=fps))
        np.testing.assert_array_equal(plan_sampling(total, fps, (480, 640), cfg).indices, want)
    sub = plan_sampling(1000, 30.0, (480, 640), cfg, start=300, end=600)  # a sub-clip: the same rule on its range
    np.testing.assert_array_equal(sub.indices, 300 + vp.sample_frames(VideoMetadata(total_num_frames=300, fps=30.0)))
