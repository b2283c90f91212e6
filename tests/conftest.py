"""Session-scoped fixtures shared across test files (small synthetic data, built once)."""

from __future__ import annotations

import json
import os

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


def _oracle_store(synth_corpus, tmp_path_factory, **student):
    from geovr.extract.runner import ExtractConfig, run_extract
    from geovr.shared.sampling import SamplingConfig
    from geovr.shared.stores import finalize_store

    out = tmp_path_factory.mktemp("train_store") / "store"
    run_extract(ExtractConfig(corpus=str(synth_corpus / "corpus.parquet"), out=str(out), teacher="oracle",
                              sampling=SamplingConfig(num_frames=4, longest_edge=84, **student), clips_per_shard=2,
                              workers=0, progress=False))
    finalize_store(out)
    qa = out.parent / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q0", "clip_id": "synth_0000", "conversations": [
        {"from": "human", "value": "<video>\nHow many chairs are in this room?"}, {"from": "gpt", "value": "2"}]}) + "\n")
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
