"""``geovr corpus from-instructions``: paper-style instruction files -> manifest -> store -> stage two joins every row."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from geovr.cli import app
from geovr.corpora.ids import check_ids, normalize_relpath, range_clip_id, video_clip_id

CONV = [{"from": "human", "value": "<image>\nThese are frames of a video.\nHow many chairs?"},
        {"from": "gpt", "value": "2"}]


def test_ids_come_from_the_relative_path_not_the_stem():
    a, b = video_clip_id("scannet/scene0000_00.mp4"), video_clip_id("arkitscenes/scene0000_00.mp4")
    assert a != b and a.startswith("scannet-scene0000_00-") and b.startswith("arkitscenes-scene0000_00-")
    assert video_clip_id("./scannet//scene0000_00.mp4") == a  # normalised first: one video, one id
    assert video_clip_id("scannet/scene0000_00.mkv") != a  # another file
    assert video_clip_id("Scannet/Scene0000_00.mp4") != a  # case-sensitive paths differ in the hash
    assert "." not in range_clip_id(a, 3, None) and range_clip_id(a, 3, 9) != range_clip_id(a, 3, None)
    check_ids([a, b, range_clip_id(a, 3, 9)])
    with pytest.raises(ValueError, match="collide"):
        check_ids([a, a])
    with pytest.raises(ValueError, match="form"):
        check_ids(["sc/x.y"])
    for bad in ("/abs/v.mp4", "../v.mp4", "a/../../v.mp4", ""):
        with pytest.raises(ValueError):
            normalize_relpath(bad)


@pytest.fixture(scope="module")
def paper_data(synth_corpus, tmp_path_factory):
    """VSI-590K-style JSONL + VLM-3R-style JSON over two videos whose stems collide, plus missing videos."""
    root = tmp_path_factory.mktemp("paper_data")
    videos, gt = root / "VSI-590K", root / "gt"
    for ds, clip in (("scannet", "synth_0000"), ("arkitscenes", "synth_0001")):
        (videos / ds).mkdir(parents=True)
        shutil.copy(synth_corpus / "videos" / f"{clip}.mp4", videos / ds / "scene0000_00.mp4")
        shutil.copytree(synth_corpus / "gt" / clip, gt / ds / "scene0000_00")
    vsi = [
        {"id": 0, "video": "scannet/scene0000_00.mp4", "conversations": CONV},
        {"id": 1, "video": "scannet/scene0000_00.mp4", "conversations": CONV},  # same video, another question
        {"id": 2, "video": "arkitscenes/scene0000_00.mp4", "conversations": CONV},  # same stem, other dataset
        {"id": 3, "video": "scannet/scene0711_00.mp4", "conversations": CONV},  # missing
        {"id": 4, "image": "coco/1.jpg", "conversations": CONV},  # image row: skipped like the paper's loader
        {"id": 5, "video": "scannet/scene0000_00.mp4", "start_frame": 2, "end_frame": 10, "conversations": CONV},
        {"id": 6, "video": "scannet/scene0000_00.mp4", "start_time": 0.25, "end_time": 1.25, "conversations": CONV},
        {"id": 7, "video": "scannet/scene0000_00.mp4", "start_frame": 0, "end_frame": 99, "conversations": CONV},
        {"id": 8, "video": "scannet/scene0000_00.mp4", "start_frame": 40, "conversations": CONV},  # past the end
        {"id": 9, "video": "scannet/scene0000_00.mp4", "num_frames": 16, "conversations": CONV},
    ]
    (root / "vsi_590k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in vsi))
    vlm3r = [{"id": "v0", "data_source": "arkitscenes", "scene_name": "scene0000_00", "conversations": CONV},
             {"id": "v1", "data_source": "scannetpp", "scene_name": "0a5c013435", "conversations": CONV}]  # missing
    (root / "vlm3r_vsi_205k.json").write_text(json.dumps(vlm3r, indent=1))  # a pretty-printed JSON array
    return root


@pytest.fixture(scope="module")
def built(paper_data):
    out = paper_data / "corpus"
    res = CliRunner().invoke(app, ["corpus", "from-instructions", str(paper_data / "vsi_590k.jsonl"),
                                   str(paper_data / "vlm3r_vsi_205k.json"), "--video-root", str(paper_data / "VSI-590K"),
                                   "--gt-root", str(paper_data / "gt"), "--out", str(out), "--workers", "1"])
    return res, out


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_manifest_has_one_row_per_unique_clip_with_stable_ids(built, paper_data):
    res, out = built
    assert res.exit_code == 1, res.output  # done, but videos were left out
    rows = _jsonl(out / "corpus.jsonl")
    sc, ak = video_clip_id("scannet/scene0000_00.mp4"), video_clip_id("arkitscenes/scene0000_00.mp4")
    by_id = {r["clip_id"]: r for r in rows}
    # whole videos (rows 0, 1, 7, 9 share scannet; 2 and v0 share arkitscenes), frame 2-10 range, 0.25-1.25 s
    assert set(by_id) == {sc, ak, range_clip_id(sc, 2, 10)} and len(rows) == 3
    assert (by_id[sc]["qa_rows"], by_id[ak]["qa_rows"], by_id[range_clip_id(sc, 2, 10)]["qa_rows"]) == (4, 2, 2)
    assert by_id[sc]["start_frame"] == 0 and by_id[sc]["end_frame"] is None and by_id[sc]["num_frames"] == 12
    assert by_id[sc]["gt_dir"] and (out / by_id[sc]["gt_dir"] / "depth.npy").is_file()
    assert (out / by_id[ak]["uri"]).resolve() == (paper_data / "VSI-590K/arkitscenes/scene0000_00.mp4").resolve()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 12 and summary["rows_without_video"] == 1 and summary["unique_videos"] == 4
    assert summary["duration_s"] == pytest.approx(1.5 + 1.5 + 1.0)  # 12 + 12 + 8 frames at 8 fps
    assert summary["count_requests"] == 1 and summary["count_differs"] == 1  # 16 asked, 4 cached (2 fps x 1.5 s)
    assert "KB/frame" in res.output and "total duration 4.0 s" in res.output  # the --plan estimate
    # stable: another run, files in the other order, gives the same ids
    out2 = paper_data / "corpus2"
    res2 = CliRunner().invoke(app, ["corpus", "from-instructions", str(paper_data / "vlm3r_vsi_205k.json"),
                                    str(paper_data / "vsi_590k.jsonl"), "--video-root", str(paper_data / "VSI-590K"),
                                    "--out", str(out2), "--workers", "1"])
    assert res2.exit_code == 1 and {r["clip_id"] for r in _jsonl(out2 / "corpus.jsonl")} == set(by_id)


def test_missing_videos_are_listed_and_left_out(built):
    res, out = built
    assert "LEFT OUT 2 videos" in res.output and "scannet/scene0711_00.mp4: missing (1 rows)" in res.output
    assert "scannetppv2/0a5c013435.mp4" in res.output  # VLM-3R's scannetpp -> scannetppv2 folder
    tsv = (out / "missing_videos.tsv").read_text()
    assert "missing\tscannet/scene0711_00.mp4\t1" in tsv and "missing\tscannetppv2/0a5c013435.mp4\t1" in tsv
    assert "bad row: frame range starts at 40, the video has 12 frames" in tsv
    written = [r["id"] for f in ("vsi_590k", "vlm3r_vsi_205k") for r in _jsonl(out / "instructions" / f"{f}.jsonl")]
    assert written == [0, 1, 2, 5, 6, 7, 9, "v0"]


def test_rewritten_instructions_join_an_extracted_store_exactly(built, paper_data):
    from geovr.extract.runner import ExtractConfig, run_extract
    from geovr.shared.sampling import SamplingConfig
    from geovr.shared.stores import StoreReader, finalize_store
    from geovr.train.config import DataConfig
    from geovr.train.data import TrainData

    _, out = built
    store = paper_data / "store"
    result = run_extract(ExtractConfig(corpus=str(out / "corpus.jsonl"), out=str(store), teacher="oracle",
                                       sampling=SamplingConfig(num_frames=4, longest_edge=84), clips_per_shard=4,
                                       workers=0, progress=False))
    assert result.stored == 3 and not result.failed
    finalize_store(store)
    inst = [str(out / "instructions" / f) for f in ("vsi_590k.jsonl", "vlm3r_vsi_205k.jsonl")]
    data = TrainData(DataConfig(stores=[str(store)], instructions=inst, geometry_only=False), seed=0)
    assert len(data) == 8  # every written row joined, none missing
    reader = StoreReader(store)
    for f in inst:
        for row in _jsonl(Path(f)):
            clip = reader[row["clip_id"]]
            video = row.get("video") or f"{row['data_source']}/{row['scene_name']}.mp4"
            assert clip.video.uri.endswith(normalize_relpath(video))  # the clip is of the row's own video
            if row.get("start_frame") == 2:
                assert clip.frame_indices.min() >= 2 and clip.frame_indices.max() < 10


def test_bad_instruction_file_is_one_line_usage_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"video": "a.mp4", "conversations": []}\n')
    (tmp_path / "v").mkdir()
    res = CliRunner().invoke(app, ["corpus", "from-instructions", str(bad), "--video-root", str(tmp_path / "v"),
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "error:" in res.output and "row 1 has no 'conversations'" in res.output
    assert not (tmp_path / "o").exists()


def test_ground_truth_with_another_frame_count_is_not_attached(paper_data, tmp_path):
    import numpy as np

    from geovr.corpora.from_instructions import CorpusFromInstructions, run

    gt = tmp_path / "gt" / "scannet" / "scene0000_00"
    shutil.copytree(paper_data / "gt" / "scannet" / "scene0000_00", gt)
    np.save(gt / "depth.npy", np.load(gt / "depth.npy")[:-1])  # 11 frames for a 12-frame video: not its frames
    inst = tmp_path / "q.jsonl"
    inst.write_text(json.dumps({"video": "scannet/scene0000_00.mp4", "conversations": CONV}) + "\n")
    rep = run(CorpusFromInstructions([inst], paper_data / "VSI-590K", tmp_path / "out", gt_root=tmp_path / "gt",
                                     workers=1))
    assert rep.gt_attached == 0 and len(rep.gt_mismatch) == 1 and "11 ground-truth frames" in rep.gt_mismatch[0]
    assert _jsonl(rep.manifest)[0]["gt_dir"] is None
