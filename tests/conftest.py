"""Session-scoped fixtures shared across test files (small synthetic data, built once)."""

from __future__ import annotations

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
