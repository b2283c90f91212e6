"""The benchmark scripts still run and print their tables (smallest sizes; no timing is asserted:
performance claims live in the scripts' own output, see README "Performance")."""

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
