"""VSI-Bench prompts: the official ones (``vsibench_doc_to_text``; every YAML leaves pre_prompt empty)
and the GeoVR paper's (``eval_vsi.py``)."""

from __future__ import annotations

PRE_PROMPT = "These are frames of a video."
NA_POST_PROMPT = "Please answer the question using a single word or phrase."
MCA_POST_PROMPT = "Answer with the option's letter from the given choices directly."
PAPER_NA_POST_PROMPT = "Please answer the question ONLY using a single Arabic numeral."
PAPER_MCA_POST_PROMPT = "Answer with ONLY the option's letter directly."
PROMPT_STYLES = ("official", "geovr-paper")
"""``official``: pre-prompt, question, ``Options:`` block, post-prompt. ``geovr-paper``: question,
the options (no header), the paper's post-prompt; a row without options is numerical."""


def build_prompt(row: dict, style: str = "official") -> str:
    """The exact text shown to the model for one benchmark row (after the video)."""
    options = row.get("options")
    if style == "geovr-paper":
        if options is None or len(options) == 0:
            return row["question"] + "\n" + PAPER_NA_POST_PROMPT
        return row["question"] + "\n" + "\n".join(options) + "\n" + PAPER_MCA_POST_PROMPT
    if style != "official":
        raise ValueError(f"prompt style {style!r} not in {PROMPT_STYLES}")
    if options is not None and len(options) > 0:
        return "\n".join([PRE_PROMPT, row["question"], "Options:\n" + "\n".join(options), MCA_POST_PROMPT])
    return PRE_PROMPT + "\n" + row["question"] + "\n" + NA_POST_PROMPT
