"""Every usage mistake ends in one line ``error: ...`` on stderr with the project's exit code, before any
model or DeepSpeed starts (codes: 2 bad usage, 3 environment, 4 store integrity; see geovr/cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import CliResult, run_geovr


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A minimal VSI-Bench-format folder (annotations only)."""
    root = tmp_path_factory.mktemp("bench")
    (root / "test.jsonl").write_text(json.dumps({"id": 0, "dataset": "synth", "scene_name": "s", "question": "q",
                                                 "question_type": "object_counting", "ground_truth": "2"}) + "\n")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    path.write_text(json.dumps({"clip_id": "a", "uri": "a.mp4"}) + "\n")
    return path


def _one_error_line(res, code: int, *needles: str) -> None:
    assert res.exit_code == code, res
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res
    for n in needles:
        assert n in res.stderr, (n, res)


CASES = {
    "extract: corpus missing": (["extract", "--corpus", "/nonexistent/c.parquet", "--out", "{tmp}/o", "--teacher",
                                 "oracle"], 2,
                                ["/nonexistent/c.parquet", "not found"]),
    "extract: weights file missing": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o", "--weights",
                                       "{tmp}/missing.pt"], 2, ["--weights", "missing.pt"]),
    "extract: hub id while offline": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o", "--weights",
                                       "nobody-geovr/not-a-model"], 3, ["nobody-geovr/not-a-model", "HF_HUB_OFFLINE"]),
    "extract: metric model hub id while offline": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o",
                                                    "--metric-depth", "nobody-geovr/depth", "--teacher", "oracle"], 3, ["--metric-depth"]),
    "extract: unknown teacher": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o", "--teacher", "vgt"], 2,
                                 ["'vgt'", "oracle, vggt"]),
    "extract: unknown format": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o", "--format", "parquet", "--teacher", "oracle"], 2,
                                ["--format 'parquet'", "zarr, wds"]),
    "extract: unknown preset": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o", "--preset", "tiny", "--teacher", "oracle"], 2,
                                ["--preset"]),
    "extract: unknown VGGT architecture": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o", "--vggt-config",
                                            "huge", "--random-init"], 2, ["'huge'"]),
    "extract: finalise a missing store": (["extract", "--finalize", "--out", "{tmp}/nostore"], 2, ["nostore"]),
    "extract: finalise an empty folder": (["extract", "--finalize", "--out", "{tmp}"], 2, ["no header.json"]),
    "extract: no --out": (["extract", "--corpus", "{corpus}"], 2, ["--out"]),
    "extract: VGGT without weights": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o"], 2,
                                      ["needs --weights", "--random-init"]),
    "extract: weights and random init": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o", "--weights",
                                          "{corpus}", "--random-init"], 2, ["exclude each other"]),
    "extract: unknown flag": (["extract", "--corpuss", "x"], 2, ["--corpuss"]),
    "extract: bad manifest": (["extract", "--corpus", "{bench}/test.jsonl", "--out", "{tmp}/o", "--plan"], 2,
                              ["lacks required column"]),
    "extract: bad sampling": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o", "--min-frames", "8",
                               "--max-frames", "4", "--teacher", "oracle"], 2, ["frame limits"]),
    "train: unknown recipe": (["train", "--config", "nonexistent_recipe"], 2, ["nonexistent_recipe", "tiny_cpu"]),
    "train: unknown key": (["train", "--config", "tiny_cpu", "run.max_stepz=3"], 2, ["max_stepz"]),
    "train: store missing": (["train", "--config", "tiny_cpu", "data.stores=[{tmp}/nostore]"], 2, ["nostore"]),
    "train: model folder missing": (["train", "--config", "tiny_cpu", "model.model={tmp}/no-such-model"], 2,
                                    ["model.model", "no-such-model"]),
    "train: model hub id while offline": (["train", "--config", "tiny_cpu", "model.model=nobody-geovr/not-a-model"],
                                          3, ["nobody-geovr/not-a-model", "HF_HUB_OFFLINE"]),
    "eval vsibench: no --model": (["eval", "vsibench", "--bench", "{bench}", "--out", "{tmp}/v"], 2, ["--model"]),
    "eval vsibench: model path missing": (["eval", "vsibench", "--bench", "{bench}", "--model", "/nonexistent/model",
                                           "--out", "{tmp}/v"], 2, ["/nonexistent/model"]),
    "eval vsibench: bench missing": (["eval", "vsibench", "--bench", "{tmp}/nobench", "--model", "x/y"], 2,
                                     ["nobench"]),
    "eval geometry: neither --pred nor --model": (["eval", "geometry", "--ref", "{tmp}"], 2, ["--pred", "--model"]),
    "eval synth-qa: not a synthetic corpus": (["eval", "synth-qa", "--corpus", "{tmp}", "--out", "{tmp}/q"], 2,
                                              ["geovr synth"]),
    "shards: not a store": (["shards", "info", "{tmp}/nostore"], 2, ["no such store"]),
    "extract: --out is a file": (["extract", "--corpus", "{corpus}", "--out", "{corpus}", "--teacher", "oracle"], 2,
                                 ["--out", "not a folder"]),
    "shards merge: input missing": (["shards", "merge", "{tmp}/m", "{tmp}/nostore"], 2, ["nostore", "no such store"]),
    "shards merge: out is a file": (["shards", "merge", "{corpus}", "{tmp}/nostore"], 2, ["not a folder"]),
    "shards show: --out folder missing": (["shards", "show", "{tmp}/nostore", "c", "--out", "{tmp}/no/x.png"], 2,
                                          ["--out", "does not exist"]),
    "shards show: zero width": (["shards", "show", "{tmp}/nostore", "c", "--width", "0"], 2, ["--width"]),
    "corpus from-instructions: --out is a file": (["corpus", "from-instructions", "{corpus}", "--video-root", "{tmp}",
                                                   "--out", "{corpus}"], 2, ["--out", "not a folder"]),
    "corpus import-scannet: scene missing": (["corpus", "import-scannet", "{tmp}/scene0000_00", "--out", "{tmp}/o"],
                                             2, ["scene0000_00", "no such scene folder"]),
    "corpus import-arkitscenes: every 0": (["corpus", "import-arkitscenes", "{tmp}", "--out", "{tmp}/o",
                                            "--every", "0"], 2, ["--every"]),
    "train: store not a list": (["train", "--config", "tiny_cpu", "data.stores={tmp}/nostore"], 2,
                                ["data.stores", "expected a list"]),
    "train: sampling not a mapping": (["train", "--config", "tiny_cpu", "data.sampling=5"], 2,
                                      ["data.sampling", "expected a mapping"]),
    "train: bad sampling values": (["train", "--config", "tiny_cpu", "data.sampling={{num_frames: -1}}"], 2,
                                   ["data.sampling", "frame limits"]),
    "train: out_dir is a file": (["train", "--config", "tiny_cpu", "run.out_dir={corpus}"], 2, ["run.out_dir"]),
    "train: negative workers": (["train", "--config", "tiny_cpu", "data.workers=-1"], 2, ["data.workers"]),
    "train: save_every 0": (["train", "--config", "tiny_cpu", "run.save_every=0"], 2, ["run.save_every"]),
    "train: negative lr": (["train", "--config", "tiny_cpu", "optim.lr=-1"], 2, ["optim.lr"]),
    "train: unknown ZeRO stage": (["train", "--config", "tiny_cpu", "deepspeed.zero_stage=5"], 2, ["zero_stage"]),
    "train: unknown precision": (["train", "--config", "tiny_cpu", "deepspeed.precision=fp8"], 2, ["'fp8'"]),
    "train: --nproc 0": (["train", "--config", "tiny_cpu", "--nproc", "0"], 2, ["--nproc"]),
    "eval vsibench: predictions of another format": (["eval", "vsibench", "--bench", "{bench}", "--predictions",
                                                      "{corpus}", "--out", "{tmp}/p"], 2, ["have no prediction"]),
    "eval synth-qa: --out is a file": (["eval", "synth-qa", "--corpus", "{synth}", "--out", "{corpus}"], 2,
                                       ["not a folder"]),
    "eval geometry: --model is not an export": (["eval", "geometry", "--ref", "{tmp}", "--model", "{tmp}"], 2,
                                                ["heads.json"]),
    "eval geometry: --out folder missing": (["eval", "geometry", "--ref", "{tmp}", "--pred", "{tmp}", "--out",
                                             "{tmp}/no/r.json"], 2, ["--out", "does not exist"]),
    "eval vsibench: annotations of another format": (["eval", "vsibench", "--bench", "{bench}", "--annotations",
                                                      "{corpus}", "--predictions", "{corpus}", "--out", "{tmp}/v"],
                                                     2, ["not a VSI-Bench question"]),
    "eval vsibench: --model folder without config.json": (["eval", "vsibench", "--bench", "{bench}", "--model",
                                                           "{tmp}", "--out", "{tmp}/v"], 2, ["config.json"]),
    "train: section given a value": (["train", "--config", "tiny_cpu", "run=null"], 2, ["run", "expected a mapping"]),
    "train: store list of lists": (["train", "--config", "tiny_cpu", "data.stores=[[{tmp}]]"], 2,
                                   ["data.stores[0]", "expected str"]),
    "train: empty model": (["train", "--config", "tiny_cpu", "model.model="], 2, ["model.model", "empty value"]),
    "synth: negative seed": (["synth", "--out", "{tmp}/s", "--seed", "-1"], 2, ["seed"]),
    "synth: a clip too large to render": (["synth", "--out", "{tmp}/s", "--frames", "100000", "--height", "4096",
                                           "--width", "4096"], 2, ["frames x height x width", "pixels per clip"]),
    "extract: jpeg quality above 100": (["extract", "--corpus", "{corpus}", "--out", "{tmp}/o", "--teacher", "oracle",
                                         "--jpeg-quality", "101"], 2, ["--jpeg-quality", "<= 100"]),
    "demo: zero training steps": (["demo", "--out", "{tmp}/d", "--train-steps", "0"], 2, ["--train-steps"]),
    "demo: --out is a file": (["demo", "--out", "{corpus}"], 2, ["not a folder"]),
    "shards: unknown protocol": (["shards", "publish", "{tmp}", "foo://bucket/x"], 2, ["foo://bucket/x"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mistake_is_one_error_line_with_its_exit_code(case, tmp_path, corpus, bench):
    args, code, needles = CASES[case]
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "corpus.parquet").write_bytes(b"")  # only its presence is checked before --out
    fill = {"tmp": str(tmp_path), "corpus": str(corpus), "bench": str(bench), "synth": str(tmp_path / "synth")}
    res = run_geovr(*(a.format(**fill) for a in args))
    _one_error_line(res, code, *needles)
    assert not (tmp_path / "v").exists() and not (tmp_path / "o").exists()  # nothing left behind


def test_instructions_that_are_a_json_array_are_a_usage_error(oracle_store, tmp_path):
    store, _ = oracle_store
    qa = tmp_path / "qa.json"
    qa.write_text('[{"clip_id": "synth_0000", "conversations": []}]\n')  # VLM-3R's array form: convert it first
    res = run_geovr("train", "--config", "tiny_cpu", f"data.stores=[{store}]", f"data.instructions=[{qa}]")
    _one_error_line(res, 2, "qa.json:1", "not an object")


def test_publish_to_s3_without_s3fs_names_the_extra(tmp_path):
    # a fresh process with s3fs unimportable, as on a machine without the [remote] extra (in this process fsspec
    # may already hold the s3 class from an earlier test)
    code = ("import sys; sys.modules['s3fs'] = None; from geovr.cli import main; "
            f"sys.exit(main(['shards', 'publish', {str(tmp_path)!r}, 's3://bucket/targets']))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    _one_error_line(CliResult(res.returncode, res.stdout, res.stderr), 3, "s3fs", 'pip install "geovr[remote]"')


def test_store_sampling_that_differs_from_the_recipe_is_refused_before_deepspeed(oracle_store, monkeypatch):
    import geovr.train.loop

    def never(*_):
        raise AssertionError("the training loop started")

    monkeypatch.setattr(geovr.train.loop, "train", never)
    store, qa = oracle_store
    res = run_geovr("train", "--config", "tiny_cpu", f"data.stores=[{store}]", f"data.instructions=[{qa}]",
                    "data.sampling={num_frames: 6, longest_edge: 84}")
    _one_error_line(res, 2, "synth_0000", "re-extract")


def test_console_script_prints_one_line_and_help_imports_no_numpy(tmp_path):
    res = subprocess.run([sys.executable, "-m", "geovr", "extract", "--corpus", "/nonexistent.parquet", "--out",
                          str(tmp_path / "o"), "--teacher", "oracle"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stderr == "error: /nonexistent.parquet: corpus manifest not found\n"
    code = ("import sys; from geovr.cli import main\n"
            "for argv in (['--help'], ['extract', '--help'], ['eval', 'vsibench', '--help'], ['--version']):\n"
            "    assert main(argv) == 0\n"
            "heavy = sorted(m for m in ('numpy', 'torch', 'transformers', 'deepspeed') if m in sys.modules)\n"
            "assert not heavy, heavy\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "geovr 0.1.0" in res.stdout


def test_teacher_registry_widths_match_the_real_model_configs():
    from geovr.extract.teachers import REGISTRY
    from geovr.extract.teachers.vggt.model import VGGTConfig

    for preset, dim in REGISTRY["vggt"].feature_dims.items():
        assert getattr(VGGTConfig, preset)().embed_dim == dim, preset  # the stored frame half is embed_dim wide
    assert REGISTRY["vggt"].layers == tuple(VGGTConfig.vggt_1b().dpt_layers)


def test_extract_flags_come_from_the_config_and_a_yaml_file_is_overridden_by_flags(tmp_path):
    import dataclasses

    from geovr.extract.config import ExtractConfig
    from geovr.shared.cliconfig import flags_of

    flags = {f.decls[0].split("/")[0] for f in flags_of(ExtractConfig)}
    assert {"--num-frames", "--fps", "--longest-edge", "--format", "--weights", "--pool", "--channels"} <= flags
    scalar = [f.name for f in dataclasses.fields(ExtractConfig) if f.name not in ("sampling", "teacher_kwargs", "layers")]
    assert {f"--{n.replace('_', '-')}" for n in scalar} <= flags  # a new scalar field is a new flag
    cfg = tmp_path / "extract.yaml"
    cfg.write_text("teacher: oracle\nformat: wds\nsampling: {num_frames: 6, longest_edge: 112}\n")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"clip_id": "a", "uri": "a.mp4"}\n')
    res = run_geovr("extract", "--config", cfg, "--corpus", corpus, "--out", tmp_path / "o", "--plan",
                    "--num-frames", "8")
    assert res.exit_code == 0, res
    res = run_geovr("extract", "--config", cfg, "--corpus", corpus, "--out", tmp_path / "o", "--format", "tar")
    assert res.exit_code == 2 and "--format 'tar'" in res.stderr  # the flag overrides the file's wds
