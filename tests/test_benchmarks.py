"""The benchmark scripts still run and print their tables (smallest sizes; no timing is asserted:
performance claims live in the scripts' own output, see README "Performance")."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"

CASES = {
    "storage.py": ([], "compact-pca"),
    "loader.py": (["--clips", "2", "--frames", "2", "--clips-per-shard", "1", "--workers", "1"], "x_gpu_need"),
    "extract_overhead.py": (["--clips", "2", "--frames", "4", "--repeat", "1", "--teacher-config", "tiny",
                             "--workers", "0"], "ratio_vs_teacher"),
    "video_read.py": (["--seconds", "2", "--gop", "10", "--repeat", "1"], "speedup"),
    "cached_vs_online.py": (["--div", "32", "--frames", "2", "--steps", "1"], "FLOP-ideal online/cached (this config)"),
    "flops.py": ([], "FLOP-ideal online/cached"),
    "scale.py": (["--sizes", "20", "60", "--clips-per-shard", "10", "--samples", "10", "--warmup", "2", "--rounds", "1"],
                 "per-sample overhead"),
}


SLOW = {"cached_vs_online.py"}
"""Runs a VGGT, a Depth Anything and a student step (about 25 s on 2 cores): in the slow set (.ci/run runs it)."""


@pytest.mark.parametrize("script", [pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in sorted(CASES)])
def test_benchmark_script_runs(script, env):
    args, expect = CASES[script]
    res = subprocess.run([sys.executable, str(BENCH / script), *args], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert expect in res.stdout, res.stdout[-2000:]


def test_gpu_check_dry_run_builds_every_model_on_meta(env):
    res = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--dry-run", "--frames", "2"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("student", "vggt", "metric", "every model built on the meta device", "FLOP-ideal online/cached"):
        assert name in res.stdout, res.stdout[-2000:]


SMOKE_ROWS = ("extract tiny VGGT bf16, 2 frames", "student step cached (tiny Qwen3-VL, ZeRO-2, 2 fr dup)",
              "student step online (+tiny VGGT +tiny DA)")


def test_gpu_check_smoke_runs_the_gpu_measuring_code_on_cpu(env):
    """``--smoke`` runs gpu_run itself (the code the GPU runs once) with tiny models: VGGT and Depth Anything built
    from small configs, a Qwen3-VL student from the paper recipe, DeepSpeed ZeRO-2 bf16 on gloo, cached and online
    steps; every row is measured and the ratio line prints."""
    res = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--smoke"], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert "DeepSpeed" in out and "ZeRO-2, bf16, gloo" in out, out[-2000:]
    table = out[out.index("what "):].splitlines()
    assert table[0].split() == ["what", "s", "frames/s", "peak_GB"]
    for name in SMOKE_ROWS:
        row = next(line for line in table if line.startswith(name))
        cells = row[len(name):].split()
        assert float(cells[0]) > 0 and cells[-1] == "n/a", row  # seconds measured; no peak memory on the CPU
        if name.startswith("extract"):
            assert float(cells[1]) == pytest.approx(2 / float(cells[0]), rel=0.01)  # frames/s
    ratio = re.search(r"online/cached step time: (\d+\.\d\d)x measured vs (\d+\.\d\d)x FLOP-ideal", out)
    assert ratio and float(ratio[1]) > 0 and float(ratio[2]) > 1, out[-2000:]


def test_gpu_check_missing_package_needs_wheels(env, tmp_path):
    fake = tmp_path / "python"  # an interpreter that lacks deepspeed: its package check reports it missing
    fake.write_text(f'#!/bin/bash\n[[ "$*" == *find_spec* ]] && echo deepspeed && exit 0\nexec {sys.executable} "$@"\n')
    fake.chmod(0o755)
    res = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--dry-run"], env={**env, "PYTHON": str(fake)},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "error: python package 'deepspeed' is missing" in res.stderr
    res = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--frames", "1", "--wheels", str(tmp_path)],
                         env={**env, "PYTHON": str(fake)}, capture_output=True, text=True, timeout=120)
    assert "installing deepspeed from" in res.stderr  # offline install from the folder was attempted
    assert res.returncode == 2 and "error: --frames" in res.stderr  # then the script ran (usage error: fast)
    res = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--smoke", "--dry-run"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr


def test_gpu_wheels_usage_errors_before_any_download(tmp_path):
    """The wheels-folder script (it downloads, so CI only checks its usage errors: exit 2, one line)."""
    for args in ([], ["a", "b"], ["--bogus", "x"], ["--python-version"]):
        res = subprocess.run(["bash", str(BENCH / "gpu_wheels.sh"), *args], capture_output=True, text=True,
                             timeout=30, cwd=tmp_path)
        assert res.returncode == 2 and res.stderr.startswith("error: "), (args, res.stderr)
        assert res.stderr.count("\n") == 1 and not list(tmp_path.iterdir())
