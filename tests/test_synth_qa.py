"""Synthetic spatial QA: answers agree with the ground truth; the benchmark path scores them."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from geovr.cli import app
from geovr.evaluate.scorer import MCA_TYPES
from geovr.evaluate.synth_qa import DATASET, generate
from geovr.synth.scene import load_scene


@pytest.fixture(scope="module")
def bench(synth_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_bench")
    generate(synth_corpus, out, seed=0)
    return out


def _rows(bench):
    return [json.loads(line) for line in (bench / "test.jsonl").read_text().splitlines()]


def test_answers_match_ground_truth(bench, synth_corpus):
    rows = _rows(bench)
    assert {"object_counting", "object_size_estimation", "room_size_estimation"} <= {r["question_type"] for r in rows}
    for r in rows:
        scene = load_scene(synth_corpus / "gt" / r["scene_name"])
        visible = [o for o, f in zip(scene.objects, scene.first_visible_frame, strict=True) if f is not None]
        if r["question_type"] == "object_counting":
            cls = r["question"].split("How many ")[1].split("(s)")[0]
            assert int(r["ground_truth"]) == sum(o.cls == cls for o in visible)
        elif r["question_type"] == "room_size_estimation":
            assert float(r["ground_truth"]) == pytest.approx(scene.room.floor_area_m2, abs=0.05)
        elif r["question_type"] == "object_size_estimation":
            cls = r["question"].split("height) of the ")[1].split(",")[0]
            (obj,) = [o for o in visible if o.cls == cls]
            assert int(r["ground_truth"]) == round(max(obj.size) * 100)
        elif r["question_type"] in MCA_TYPES:
            letters = [o.split(".")[0] for o in r["options"]]
            assert r["ground_truth"] in letters and len(set(letters)) == len(letters)
        if r["question_type"] == "obj_appearance_order":
            answer = next(o for o in r["options"] if o.startswith(r["ground_truth"] + "."))
            names = answer.split(". ", 1)[1].split(", ")
            firsts = [next(scene.first_visible_frame[o.index] for o in visible if o.cls == n) for n in names]
            assert firsts == sorted(firsts)
    assert all((bench / DATASET / f"{r['scene_name']}.mp4").is_file() for r in rows)


def test_relative_direction_matches_geometry(bench, synth_corpus):
    rows = [r for r in _rows(bench) if r["question_type"] == "object_rel_direction_easy"]
    assert rows
    for r in rows:
        scene = load_scene(synth_corpus / "gt" / r["scene_name"])
        q = r["question"]
        a, b, c = q.split("standing by the ")[1].split(" and")[0], q.split("facing the ")[1].split(",")[0], \
            q.split("is the ")[1].split(" to my")[0]
        pos = {o.cls: np.asarray(o.center[:2]) for o in scene.objects}
        fwd, vec = pos[b] - pos[a], pos[c] - pos[a]
        side = "left" if fwd[0] * vec[1] - fwd[1] * vec[0] > 0 else "right"  # z up: counter-clockwise = left
        answer = next(o for o in r["options"] if o.startswith(r["ground_truth"] + "."))
        assert answer.endswith(side)


def test_predictions_mode_scores_perfect_and_wrong_answers(bench, tmp_path):
    rows = _rows(bench)
    perfect = tmp_path / "perfect.jsonl"
    perfect.write_text("".join(json.dumps({"id": r["id"], "prediction": r["ground_truth"]}) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["eval", "vsibench", "--bench", str(bench), "--predictions", str(perfect),
                                   "--out", str(tmp_path / "o1")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "o1" / "report.json").read_text())
    assert report["scores"]["overall"] == pytest.approx(100.0)
    assert "overall" in res.output and report["versions"]["transformers"]
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text("".join(json.dumps({"id": r["id"], "prediction": "Z"}) + "\n" for r in rows))
    res = CliRunner().invoke(app, ["eval", "vsibench", "--bench", str(bench), "--predictions", str(wrong),
                                   "--out", str(tmp_path / "o2")])
    assert json.loads((tmp_path / "o2" / "report.json").read_text())["scores"]["overall"] == 0.0


def test_missing_predictions_and_debiased_without_column_are_refused(bench, tmp_path):
    partial = tmp_path / "partial.jsonl"
    partial.write_text(json.dumps({"id": 0, "prediction": "A"}) + "\n")
    res = CliRunner().invoke(app, ["eval", "vsibench", "--bench", str(bench), "--predictions", str(partial)])
    assert res.exit_code == 2 and "have no prediction" in res.output  # a usage mistake: one error line
    from geovr.evaluate.vsibench import VSIBenchConfig, load_rows

    assert len(load_rows(VSIBenchConfig(bench_dir=str(bench), split="debiased"))) == len(_rows(bench))
    plain = tmp_path / "nopruned.jsonl"
    plain.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "pruned"}) + "\n" for r in _rows(bench)))
    with pytest.raises(ValueError, match="pruned"):
        load_rows(VSIBenchConfig(bench_dir=str(bench), annotations=str(plain), split="debiased"))


def test_train_and_test_questions_are_disjoint_and_cover_every_scene(bench):
    from geovr.evaluate.prompts import build_prompt

    test = _rows(bench)
    train = [json.loads(line) for line in (bench / "train_conversations.jsonl").read_text().splitlines()]
    asked = {(r["scene_name"], "<image>\n" + build_prompt(r)) for r in test}
    trained = {(row["clip_id"], row["conversations"][0]["value"]) for row in train}
    assert test and train and not asked & trained  # no question (with its options) is both trained on and scored
    assert {r["scene_name"] for r in test} == {row["clip_id"] for row in train}  # every scene in both halves
