"""Session-scoped fixtures shared across test files (small synthetic data, built once)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    """A 2-clip synthetic corpus (12 frames, 112x140) with exact ground truth."""
    from geovr.synth.config import SynthConfig
    from geovr.synth.corpus import render_corpus

    out = tmp_path_factory.mktemp("synth_corpus")
    render_corpus(out, SynthConfig(clips=2, seed=0, frames=12, height=112, width=140), progress=False)
    return out


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    """Environment for training subprocesses (tiny students cached per session or in $GEOVR_TEST_CACHE)."""
    cache = tmp_path_factory.mktemp("geovr_cache")
    return {**os.environ, "GEOVR_CACHE": str(os.environ.get("GEOVR_TEST_CACHE", cache)), "DS_ACCELERATOR": "cpu",
            "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _oracle_store(synth_corpus, tmp_path_factory, fmt="zarr", **student):
    from geovr.extract.runner import ExtractConfig, run_extract
    from geovr.shared.sampling import SamplingConfig
    from geovr.shared.stores import finalize_store

    out = tmp_path_factory.mktemp("train_store") / "store"
    run_extract(ExtractConfig(corpus=str(synth_corpus / "corpus.parquet"), out=str(out), teacher="oracle", format=fmt,
                              sampling=SamplingConfig(num_frames=4, longest_edge=84, **student), clips_per_shard=2,
                              workers=0, progress=False))
    finalize_store(out)
    qa = out.parent / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q0", "clip_id": "synth_0000", "conversations": [
        {"from": "human", "value": "<image>\nHow many chairs are in this room?"}, {"from": "gpt", "value": "2"}]}) + "\n")
    return out, qa


@pytest.fixture(scope="session")
def oracle_store(synth_corpus, tmp_path_factory):
    """An oracle-teacher store of the synthetic corpus (4 frames, 84 px) plus a one-row QA file; frames sized
    for a Qwen3-VL student (32-px merged patch)."""
    return _oracle_store(synth_corpus, tmp_path_factory)


@pytest.fixture(scope="session")
def oracle_store_q25(synth_corpus, tmp_path_factory):
    """As ``oracle_store``, frames sized for a Qwen2.5-VL student (28-px merged patch, per-frame budget)."""
    return _oracle_store(synth_corpus, tmp_path_factory, student_patch=28, student_budget="frame")


class CliResult:
    """What one in-process ``geovr`` call did."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.exit_code, self.stdout, self.stderr = code, out, err
        self.output = out + err

    def __repr__(self) -> str:
        return f"CliResult(exit_code={self.exit_code}, stdout={self.stdout[-1500:]!r}, stderr={self.stderr[-1500:]!r})"


def run_geovr(*args) -> CliResult:
    """``geovr ARGS`` in this process through the console script's ``main`` (exit-code mapping included)."""
    import contextlib
    import io

    from geovr.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def geovr_cli():
    """``run_geovr``: call the CLI in-process and get its exit code, stdout and stderr."""
    return run_geovr


def train_cli(env, store, qa, out, *overrides, nproc=1):
    """``geovr train`` of the tiny CPU recipe in a subprocess; returns its metrics.jsonl rows."""
    cmd = [sys.executable, "-m", "geovr", "train", "--config", "tiny_cpu", f"data.stores=[{store}]",
           f"data.instructions=[{qa}]", f"run.out_dir={out}", *overrides]
    if nproc > 1:
        cmd += ["--nproc", str(nproc), "--master-port", str(29600 + os.getpid() % 300)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


LEARN_STEPS = 100
"""Steps of the one shared training run (every loss term on); bounds in test_learning.py were measured on it."""


@pytest.fixture(scope="session")
def trained_run(env, oracle_store, tmp_path_factory):
    """One short DeepSpeed ZeRO-2 run (1 process, tiny Qwen3-VL, every loss term on, in-process data) shared by
    the learning, export and resume tests: ``(out_dir, metrics rows)``."""
    store, qa = oracle_store
    out = tmp_path_factory.mktemp("trained") / "run"
    metrics = train_cli(env, store, qa, out, f"run.max_steps={LEARN_STEPS}", f"run.save_every={LEARN_STEPS}",
                        "data.workers=0")
    return out, metrics


@pytest.fixture(scope="session")
def tiny_qwen3_processor():
    """The tiny students' Qwen3-VL processor (real Qwen BPE vocabulary, tiny chat template), built in memory once."""
    from geovr.train.student.tiny import _qwen3_processor, build_tokenizer

    return _qwen3_processor(build_tokenizer())
