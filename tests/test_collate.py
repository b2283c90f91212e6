"""The processors see the true time of each (pre-sampled, possibly duplicated) frame."""

import os

import numpy as np
import pytest
from transformers import AutoConfig, AutoProcessor

from geovr.train.student.adapters import adapter_for
from geovr.train.student.collate import StudentSample, prepare_sample
from geovr.train.student.tiny import build_tiny_student_dir


def _processor(family, name, tmp_path_factory):
    root = os.environ.get("GEOVR_TEST_CACHE") or str(tmp_path_factory.mktemp("tiny"))
    path = build_tiny_student_dir(f"{root}/{name}", family)
    return adapter_for(AutoProcessor.from_pretrained(path), AutoConfig.from_pretrained(path))


def _sample(times):
    frames = [np.full((64, 64, 3), 40 * i, np.uint8) for i in range(len(times))]
    return StudentSample(frames=frames, fps=2.0, timestamps=np.asarray(times))


def test_qwen3vl_prompt_carries_each_frames_own_time(tmp_path_factory):
    proc = _processor("qwen3_vl", "tiny-qwen3vl", tmp_path_factory)
    s = prepare_sample(proc, _sample([3.0, 3.5, 4.0, 4.5]), frame_mode="duplicate")
    text = proc.processor.tokenizer.decode(s["inputs"]["input_ids"][0])
    stamps = [f"<{t:.1f} seconds>" for t in (3.0, 3.5, 4.0, 4.5)]
    assert all(st in text for st in stamps) and text.index(stamps[0]) < text.index(stamps[-1])
    paired = proc.processor.tokenizer.decode(prepare_sample(proc, _sample([3.0, 3.5, 4.0, 4.5]), frame_mode="pair")
                                   ["inputs"]["input_ids"][0])
    assert "<3.2 seconds>" in paired and "<4.2 seconds>" in paired  # a pair's mean time (3.25 s, 4.25 s)


@pytest.mark.parametrize("mode, seconds", [("duplicate", 0.5), ("pair", 1.0)])
def test_qwen25vl_temporal_grid_spans_the_real_time(tmp_path_factory, mode, seconds):
    proc = _processor("qwen2_5_vl", "tiny-qwen25vl", tmp_path_factory)
    s = prepare_sample(proc, _sample([0.0, 0.5, 1.0, 1.5]), frame_mode=mode)
    assert s["inputs"]["second_per_grid_ts"] == pytest.approx([seconds])
