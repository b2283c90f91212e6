"""`geovr eval vsibench` end to end with a tiny random Qwen3-VL on the synthetic benchmark; resumable."""

import json

from typer.testing import CliRunner

from geovr.cli import app
from geovr.evaluate.synth_qa import generate


def test_vsibench_runs_writes_report_and_resumes(synth_corpus, tmp_path, monkeypatch):
    import os

    import torch

    from geovr.train.student.tiny import build_tiny_student_dir

    folder = os.environ.get("GEOVR_TEST_CACHE", str(tmp_path)) + "/tiny-qwen3vl"
    fresh = not os.path.exists(folder)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    model = build_tiny_student_dir(folder)
    if fresh:  # building seeds its own weights but leaves the caller's random stream (a run's head init) alone
        assert torch.equal(torch.rand(3), expected)
    bench = tmp_path / "bench"
    generate(synth_corpus, bench)
    args = ["eval", "vsibench", "--bench", str(bench), "--model", str(model), "--frames", "4", "--batch-size", "2",
            "--out", str(tmp_path / "out")]
    res = CliRunner().invoke(app, [*args, "--limit", "3"])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    preds = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == 3
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["num_questions"] == 3 and report["config"]["num_frames"] == 4 and "overall" in res.output
    # a crash after 3 answers: the next run answers only the missing ones and keeps the old lines
    with open(tmp_path / "out" / "predictions.jsonl", "a") as f:
        f.write('{"id": 99, "predic')  # torn last line from a crash
    res = CliRunner().invoke(app, [*args, "--limit", "5"])
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert lines[:3] == preds
    ids = [json.loads(line)["id"] for line in lines]
    assert sorted(ids) == [0, 1, 2, 3, 4]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["num_questions"] == 5
