"""The official VSI-Bench prompts (``vsibench_doc_to_text``; every YAML leaves pre_prompt empty)."""

from __future__ import annotations

PRE_PROMPT = "These are frames of a video."
NA_POST_PROMPT = "Please answer the question using a single word or phrase."
MCA_POST_PROMPT = "Answer with the option's letter from the given choices directly."


def build_prompt(row: dict) -> str:
    """The exact text shown to the model for one benchmark row (after the video)."""
    options = row.get("options")
    if options is not None and len(options) > 0:
        return "\n".join([PRE_PROMPT, row["question"], "Options:\n" + "\n".join(options), MCA_POST_PROMPT])
    return PRE_PROMPT + "\n" + row["question"] + "\n" + NA_POST_PROMPT
